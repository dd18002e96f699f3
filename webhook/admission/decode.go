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
			rev.APIVersion = stringOrNull(s)
		case "kind":
			rev.Kind = stringOrNull(s)
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
			r.UID = typesUID(stringOrNull(s))
		case "kind":
			s.Object(func(key []byte) {
				switch string(key) {
				case "group":
					r.Kind.Group = stringOrNull(s)
				case "version":
					r.Kind.Version = stringOrNull(s)
				case "kind":
					r.Kind.Kind = stringOrNull(s)
				default:
					s.Skip()
				}
			})
		case "resource":
			s.Object(func(key []byte) {
				switch string(key) {
				case "group":
					r.Resource.Group = stringOrNull(s)
				case "version":
					r.Resource.Version = stringOrNull(s)
				case "resource":
					r.Resource.Resource = stringOrNull(s)
				default:
					s.Skip()
				}
			})
		case "subResource":
			r.SubResource = stringOrNull(s)
		case "name":
			r.Name = stringOrNull(s)
		case "namespace":
			r.Namespace = stringOrNull(s)
		case "operation":
			r.Operation = operation(stringOrNull(s))
		case "userInfo":
			s.Object(func(key []byte) {
				if string(key) == "username" {
					r.UserInfo.Username = stringOrNull(s)
				} else {
					s.Skip()
				}
			})
		case "object":
			if s.Null() {
				return
			}
			r.Object = s.Raw()
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

func stringOrNull(s *jsonscan.Scanner) string {
	if s.Null() {
		return ""
	}
	return s.String()
}
