package admission

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestAppendReviewMatchesEncodingJSON: the answer is written by hand and must be what
// encoding/json writes for the same AdmissionReview.
func TestAppendReviewMatchesEncodingJSON(t *testing.T) {
	for name, resp := range map[string]Response{
		"allowed":  Allowed(),
		"warnings": Allowed(`overcommit: "quoted" <odd> warning`, "second"),
		"patched":  Patched([]byte(`[{"op":"add","path":"/a","value":"b"}]`), "w"),
		"denied":   Denied(403, "overcommit: pod web/x not admitted: template \"mesh\": clash"),
	} {
		uid := types.UID("7c1d7b46-5c0e-4fd4-9a6e-4bd1b2c5e0aa")
		want := admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
			Response: &admissionv1.AdmissionResponse{UID: uid, Allowed: resp.Allowed, Result: resp.Status, Warnings: resp.Warnings},
		}
		if len(resp.Patch) > 0 {
			pt := admissionv1.PatchTypeJSONPatch
			want.Response.Patch, want.Response.PatchType = resp.Patch, &pt
		}
		wantJSON, err := json.Marshal(&want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendReview(nil, uid, resp)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(wantJSON)+"\n", string(got)); diff != "" {
			t.Errorf("%s (-encoding/json +appendReview):\n%s", name, diff)
		}
	}
}
