package admission

import (
	"errors"
	"fmt"
	"io"

	jsoniter "github.com/json-iterator/go"
)

// The review decoder reads an AdmissionReview in one pass with a streaming iterator: it keeps
// the request's identity and the raw object, and skips oldObject and options without building
// them. encoding/json would validate the whole body, decode it, and validate the object again;
// on a 30 KB node review that was most of the webhook's time.

var iterPool = jsoniter.ConfigCompatibleWithStandardLibrary

// decodeReview parses an AdmissionReview envelope.
func decodeReview(data []byte) (*review, error) {
	it := iterPool.BorrowIterator(data)
	defer iterPool.ReturnIterator(it)
	if it.WhatIsNext() != jsoniter.ObjectValue {
		return nil, errors.New("not a JSON object")
	}
	var rev review
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		switch field {
		case "apiVersion":
			rev.APIVersion = readString(it)
		case "kind":
			rev.Kind = readString(it)
		case "request":
			if it.ReadNil() {
				return true
			}
			rev.Request = &Request{}
			decodeRequest(it, rev.Request)
		default:
			it.Skip()
		}
		return it.Error == nil
	})
	if it.Error != nil {
		return nil, it.Error
	}
	// Only white space may follow: the iterator reports a clean end of input as io.EOF.
	if next := it.WhatIsNext(); next != jsoniter.InvalidValue || !errors.Is(it.Error, io.EOF) {
		return nil, errors.New("unexpected data after the AdmissionReview")
	}
	return &rev, nil
}

func decodeRequest(it *jsoniter.Iterator, r *Request) {
	it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		switch field {
		case "uid":
			r.UID = typesUID(readString(it))
		case "kind":
			it.ReadVal(&r.Kind)
		case "resource":
			it.ReadVal(&r.Resource)
		case "subResource":
			r.SubResource = readString(it)
		case "name":
			r.Name = readString(it)
		case "namespace":
			r.Namespace = readString(it)
		case "operation":
			r.Operation = operation(readString(it))
		case "userInfo":
			if it.ReadNil() {
				return true
			}
			it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
				if field == "username" {
					r.UserInfo.Username = readString(it)
				} else {
					it.Skip()
				}
				return it.Error == nil
			})
		case "object":
			if it.WhatIsNext() == jsoniter.NilValue {
				it.Skip()
				return true
			}
			r.Object = it.SkipAndReturnBytes()
		case "dryRun":
			if it.ReadNil() {
				return true
			}
			b := it.ReadBool()
			r.DryRun = &b
		default:
			it.Skip()
		}
		return it.Error == nil
	})
}

// readString reads a string or null; anything else is an error.
func readString(it *jsoniter.Iterator) string {
	switch it.WhatIsNext() {
	case jsoniter.StringValue:
		return it.ReadString()
	case jsoniter.NilValue:
		it.Skip()
		return ""
	default:
		it.ReportError("read string", fmt.Sprintf("expected a string, got %v", it.WhatIsNext()))
		return ""
	}
}
