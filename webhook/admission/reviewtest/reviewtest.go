// Package reviewtest sends AdmissionReviews through a webhook in tests as the apiserver does:
// it builds the review, posts it as application/json, decodes and checks the answer, and
// applies the returned JSON patch with the library and version the apiserver's mutating
// dispatcher applies it with (gopkg.in/evanphx/json-patch.v4), so a patch that would not apply
// fails the test instead of rejecting the object in a cluster.
package reviewtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
)

// UID is the uid of a review built by Encode without one.
const UID types.UID = "705ab4f5-6393-11e8-b7cc-42010a800002"

// Object is obj encoded as a request's object or oldObject.
func Object(t testing.TB, obj any) runtime.RawExtension {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("encoding the review's object: %v", err)
	}
	return runtime.RawExtension{Raw: raw}
}

// Encode wraps req in an admission.k8s.io/v1 AdmissionReview; a request without a uid gets UID.
func Encode(t testing.TB, req admissionv1.AdmissionRequest) []byte {
	t.Helper()
	if req.UID == "" {
		req.UID = UID
	}
	b, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Request:  &req,
	})
	if err != nil {
		t.Fatalf("encoding the review: %v", err)
	}
	return b
}

// Post serves body to h as the apiserver posts a review to path and returns the recorded
// answer unchecked. It takes no testing.TB so that benchmarks can call it in their loop.
func Post(h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Send posts body to h at path and returns the decoded response, failing t unless the answer
// is an HTTP 200 AdmissionReview for the uid body carries.
func Send(t testing.TB, h http.Handler, path string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	var sent struct {
		Request struct {
			UID types.UID `json:"uid"`
		} `json:"request"`
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatalf("reading the uid of the review sent: %v", err)
	}
	return Decode(t, Post(h, path, body), sent.Request.UID)
}

// Decode returns the response in a recorded answer, failing t unless it is an HTTP 200
// admission.k8s.io/v1 AdmissionReview answering uid.
func Decode(t testing.TB, rec *httptest.ResponseRecorder, uid types.UID) *admissionv1.AdmissionResponse {
	t.Helper()
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", rec.Code, rec.Body.String())
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("decoding the answer: %v\n%s", err, rec.Body.String())
	}
	if out.APIVersion != admissionv1.SchemeGroupVersion.String() || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("malformed answer: %s", rec.Body.String())
	}
	if out.Response.UID != uid {
		t.Fatalf("answer uid = %q, want %q", out.Response.UID, uid)
	}
	return out.Response
}

// Apply applies resp's JSON patch to raw, the object exactly as sent, and returns the result;
// without a patch it returns raw.
func Apply(t testing.TB, raw []byte, resp *admissionv1.AdmissionResponse) []byte {
	t.Helper()
	if len(resp.Patch) == 0 {
		return raw
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type = %v, want JSONPatch", resp.PatchType)
	}
	p, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("decoding patch %s: %v", resp.Patch, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("patch %s does not apply to %s: %v", resp.Patch, raw, err)
	}
	return out
}
