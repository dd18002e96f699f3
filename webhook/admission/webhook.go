// Package admission is the wire layer of overcommit's webhooks: it reads AdmissionReview requests
// from HTTP, hands them to a Handler and writes the response. It knows nothing of nodes or pods;
// handlers know nothing of HTTP.
package admission

import (
	"context"
	"encoding/json"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Handler decides on one admission request.
type Handler interface {
	Handle(ctx context.Context, req *Request) Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) Response

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, req *Request) Response { return f(ctx, req) }

// Request is the part of an admission.k8s.io/v1 AdmissionRequest that overcommit reads. Options
// are not decoded: no handler needs them.
type Request struct {
	UID         types.UID                   `json:"uid"`
	Kind        metav1.GroupVersionKind     `json:"kind"`
	Resource    metav1.GroupVersionResource `json:"resource"`
	SubResource string                      `json:"subResource,omitempty"`
	Name        string                      `json:"name,omitempty"`
	Namespace   string                      `json:"namespace,omitempty"`
	Operation   admissionv1.Operation       `json:"operation"`
	UserInfo    authenticationv1.UserInfo   `json:"userInfo"`
	Object      json.RawMessage             `json:"object,omitempty"`
	// OldObject is the stored object on UPDATE (nil otherwise); the node policy compares its
	// allocatable with the incoming one.
	OldObject json.RawMessage `json:"oldObject,omitempty"`
	DryRun    *bool           `json:"dryRun,omitempty"`
}

// IsDryRun reports whether the request will not be persisted.
func (r *Request) IsDryRun() bool { return r.DryRun != nil && *r.DryRun }

// Outcomes label the requests-total metric.
const (
	OutcomePatched    = "patched"
	OutcomeAllowed    = "allowed"
	OutcomeDenied     = "denied"
	OutcomeError      = "error" // an internal problem; the request was answered as the handler chose
	OutcomeBadRequest = "bad_request"
	// OutcomeOverloaded: refused (HTTP 503) because request bodies in flight held all the
	// buffer budget and none of them was stalled.
	OutcomeOverloaded = "overloaded"
	// OutcomeTimeout: the body did not arrive within the deadline, or a stalled body was cut
	// off to make room for another review (HTTP 408).
	OutcomeTimeout = "timeout"
	OutcomePanic   = "panic"
)

// Response is a handler's decision.
type Response struct {
	Allowed bool
	// Patch is a JSON patch (RFC 6902) document, or nil.
	Patch []byte
	// Warnings are shown to the client that made the request.
	Warnings []string
	// Status explains a denial.
	Status *metav1.Status
	// Outcome overrides the outcome recorded in metrics (OutcomeError for a fail-open answer).
	Outcome string
}

// Allowed admits the request unchanged.
func Allowed(warnings ...string) Response {
	return Response{Allowed: true, Warnings: warnings}
}

// Patched admits the request with a JSON patch; an empty patch admits it unchanged.
func Patched(patch []byte, warnings ...string) Response {
	if len(patch) == 0 || string(patch) == "[]" {
		return Allowed(warnings...)
	}
	return Response{Allowed: true, Patch: patch, Warnings: warnings}
}

// Denied rejects the request with a message and an HTTP-style code (403 when zero).
func Denied(code int32, message string) Response {
	if code == 0 {
		code = 403
	}
	return Response{Status: &metav1.Status{Status: metav1.StatusFailure, Code: code, Message: message,
		Reason: metav1.StatusReasonForbidden}}
}

func (r Response) outcome() string {
	switch {
	case r.Outcome != "":
		return r.Outcome
	case !r.Allowed:
		return OutcomeDenied
	case len(r.Patch) > 0:
		return OutcomePatched
	default:
		return OutcomeAllowed
	}
}

func typesUID(s string) types.UID { return types.UID(s) }

func operation(s string) admissionv1.Operation { return admissionv1.Operation(s) }
