package admission

import (
	"github.com/overcommit-dev/overcommit/webhook/jsonscan"
)

// decodeReview reads an AdmissionReview in one pass: the request's identity and the raw object
// (a sub-slice of data, not a copy), skipping oldObject and options without building them.
// encoding/json would validate the whole body, decode it, and validate the object again; on a
// 30 KB node review that was most of the webhook's time.
func decodeReview(data []byte) (*review, error) {
	s := jsonscan.New(data)
	if s.Peek() != '{' {
		return nil, jsonscan.ErrNotObject
	}
	var rev review
	s.Object(func(key []byte) {
		switch string(key) {
		case "apiVersion":
			rev.APIVersion = s.StringOrNull()
		case "kind":
			rev.Kind = s.StringOrNull()
		case "request":
			if s.Null() {
				return
			}
			rev.Request = &Request{}
			decodeRequest(s, rev.Request)
		default:
			s.Skip()
		}
	})
	if err := s.End(); err != nil {
		return nil, err
	}
	return &rev, nil
}

func decodeRequest(s *jsonscan.Scanner, r *Request) {
	s.Object(func(key []byte) {
		switch string(key) {
		case "uid":
			r.UID = typesUID(s.StringOrNull())
		case "kind":
			decodeGroupVersion(s, "kind", &r.Kind.Group, &r.Kind.Version, &r.Kind.Kind)
		case "resource":
			decodeGroupVersion(s, "resource", &r.Resource.Group, &r.Resource.Version, &r.Resource.Resource)
		case "subResource":
			r.SubResource = s.StringOrNull()
		case "name":
			r.Name = s.StringOrNull()
		case "namespace":
			r.Namespace = s.StringOrNull()
		case "operation":
			r.Operation = operation(s.StringOrNull())
		case "userInfo":
			s.Object(func(key []byte) {
				if string(key) == "username" {
					r.UserInfo.Username = s.StringOrNull()
				} else {
					s.Skip()
				}
			})
		case "object":
			if s.Null() {
				return
			}
			r.Object = s.Raw()
		case "oldObject":
			if s.Null() {
				return
			}
			r.OldObject = s.Raw()
		case "dryRun":
			if s.Null() {
				return
			}
			b := s.Bool()
			r.DryRun = &b
		default:
			s.Skip()
		}
	})
}

// decodeGroupVersion reads a GroupVersionKind or a GroupVersionResource: group, version and
// the member named last.
func decodeGroupVersion(s *jsonscan.Scanner, last string, group, version, name *string) {
	s.Object(func(key []byte) {
		switch string(key) {
		case "group":
			*group = s.StringOrNull()
		case "version":
			*version = s.StringOrNull()
		case last:
			*name = s.StringOrNull()
		default:
			s.Skip()
		}
	})
}
