package reviewtest

import (
	"fmt"
	"net/http"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
)

// recorder is a testing.TB that records a Fatalf instead of ending the test, so that the
// harness's own checks can be shown to fail.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// fatal runs fn as a test would and returns the message it failed with ("" if none).
func fatal(t *testing.T, fn func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() { defer close(done); fn(r) }()
	<-done
	return r.fatal
}

// answer is a handler writing body with code, whatever it is sent.
func answer(code int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	})
}

func TestHarnessFailsOnBadAnswers(t *testing.T) {
	review := Encode(t, admissionv1.AdmissionRequest{Name: "n"})
	patch := admissionv1.PatchTypeJSONPatch
	tests := []struct {
		name string
		fn   func(testing.TB)
		want string
	}{
		{name: "well-formed", fn: func(tb testing.TB) {
			Send(tb, answer(200, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"`+string(UID)+`","allowed":true}}`), "/x", review)
		}},
		{name: "HTTP error", fn: func(tb testing.TB) { Send(tb, answer(400, "bad"), "/x", review) }, want: "HTTP 400: bad"},
		{name: "other uid", fn: func(tb testing.TB) {
			Send(tb, answer(200, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}`), "/x", review)
		}, want: `answer uid = "u", want "` + string(UID) + `"`},
		{name: "v1beta1 envelope", fn: func(tb testing.TB) {
			Send(tb, answer(200, `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","response":{"uid":"u"}}`), "/x", review)
		}, want: `malformed answer: {"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","response":{"uid":"u"}}`},
		{name: "patch that does not apply", fn: func(tb testing.TB) {
			Apply(tb, []byte(`{"a":{}}`), &admissionv1.AdmissionResponse{PatchType: &patch, Patch: []byte(`[{"op":"remove","path":"/b"}]`)})
		}, want: `patch [{"op":"remove","path":"/b"}] does not apply to {"a":{}}: error in remove for path: '/b': Unable to remove nonexistent key: b: missing value`},
		{name: "patch without its type", fn: func(tb testing.TB) {
			Apply(tb, []byte(`{}`), &admissionv1.AdmissionResponse{Patch: []byte(`[]`)})
		}, want: "patch type = <nil>, want JSONPatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, fatal(t, tt.fn)); diff != "" {
				t.Errorf("failure (-want +got):\n%s", diff)
			}
		})
	}
}

// TestApplyPatchesAsTheAPIServer: a replace of a missing member adds it, as the apiserver's
// json-patch v4 does (v5 refuses it), so a test passes or fails as the cluster would.
func TestApplyPatchesAsTheAPIServer(t *testing.T) {
	patch := admissionv1.PatchTypeJSONPatch
	got := Apply(t, []byte(`{"a":{}}`), &admissionv1.AdmissionResponse{PatchType: &patch, Patch: []byte(`[{"op":"add","path":"/a/b","value":1},{"op":"replace","path":"/c","value":2}]`)})
	if diff := cmp.Diff(`{"a":{"b":1},"c":2}`, string(got)); diff != "" {
		t.Errorf("patched (-want +got):\n%s", diff)
	}
}
