// Package recordsvalidation builds the ValidatingAdmissionPolicy that keeps a node's records
// (names.RawAnnotation, names.AppliedAnnotation, names.UsageTargetAnnotation,
// names.RequestsAnnotation) in the hands of whoever is meant to write them, so that a record forged by someone who may only edit node
// metadata can never raise a node's allocatable.
//
// Why it is needed: the node policy (the webhook in webhook mode, the MutatingAdmissionPolicy in
// policy mode) takes the raw record as its base when the incoming allocatable equals the applied
// record. Anyone allowed to patch nodes (not nodes/status) could otherwise write a raw record of
// 1,000,000 cores and an applied record equal to the stored allocatable, and the next status write
// by anyone but the kubelet (kwok, node-problem-detector, a controller, `kubectl overcommit
// enable`) would store 1,000,000 cores times the ratio. Removing both records is as bad: the
// policy then starts from the incoming allocatable, which is its own earlier output, and
// multiplies it again on every such round.
//
// The records are only ever written legitimately on nodes/status (by the node policy, in the
// status write it mutates; `kubectl overcommit disable` removes them there too), and the usage
// target and the requests record only by the webhook's ServiceAccount (a forged requests record
// would let the pressure guard hold a node under pressure above what its pods request). So on the
// nodes resource itself the policy refuses any UPDATE that sets, changes or removes raw or
// applied, whoever sends it, and any CREATE or UPDATE that sets, changes or removes the usage
// target or the requests record unless the webhook's ServiceAccount sends it. It runs inside kube-apiserver with failurePolicy Fail: nothing can be unreachable.
//
// Not covered, on purpose: CREATE of a node with raw and applied (the node policy writes them in
// the same request, after which this policy sees them, and a node's creator sets its allocatable
// anyway), and nodes/status, whose writers (the kubelet, controllers) may set any allocatable
// directly; a record they forge gives them nothing they do not already have.
package recordsvalidation

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// Name names the ValidatingAdmissionPolicy and its binding.
const Name = "overcommit-node-records"

// WebhookServiceAccount is the webhook's ServiceAccount, deploy/base/serviceaccount.yaml, the
// only writer of names.UsageTargetAnnotation and names.RequestsAnnotation.
const WebhookServiceAccount = "overcommit-webhook"

// WebhookUser is the username the apiserver gives WebhookServiceAccount.
const WebhookUser = "system:serviceaccount:" + names.Namespace + ":" + WebhookServiceAccount

// Published are the records only the webhook's ServiceAccount writes (in policy mode).
var Published = []string{names.UsageTargetAnnotation, names.RequestsAnnotation}

// Messages of the refusals; tests match them.
var (
	RecordsMessage = fmt.Sprintf("%s and %s are written only by overcommit's node policy, on writes of nodes/status: "+
		"a write of the node itself may not set, change or remove them (to opt a node out, use `kubectl overcommit disable`)",
		names.RawAnnotation, names.AppliedAnnotation)
	// UsageTargetMessage refuses a write of the webhook's published records (Published).
	UsageTargetMessage = fmt.Sprintf("%s and %s are written only by overcommit-webhook (%s): other writers may not set, change or remove them",
		names.UsageTargetAnnotation, names.RequestsAnnotation, WebhookUser)
)

// unchanged is true when key is absent from both annotation maps, or present in both with the
// same value.
func unchanged(key string) string {
	k := strconv.Quote(key)
	return fmt.Sprintf(`((%[1]s in variables.ann) == (%[1]s in variables.oldAnn) && (!(%[1]s in variables.ann) || variables.ann[%[1]s] == variables.oldAnn[%[1]s]))`, k)
}

// carries is true when obj (object or oldObject) has one of keys.
func carries(obj string, keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = strconv.Quote(k)
	}
	return fmt.Sprintf(`(%[1]s != null && has(%[1]s.metadata.annotations) && [%[2]s].exists(k, k in %[1]s.metadata.annotations))`,
		obj, strings.Join(q, ", "))
}

// Policy returns the ValidatingAdmissionPolicy.
func Policy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	forbidden := metav1.StatusReasonForbidden
	guarded := append([]string{names.RawAnnotation, names.AppliedAnnotation}, Published...)
	published := make([]string, len(Published))
	for i, key := range Published {
		published[i] = unchanged(key)
	}
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: Name, Labels: map[string]string{"app.kubernetes.io/name": Name}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				// "nodes" matches the node itself, not nodes/status, where the records belong.
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"nodes"}},
				}}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{
				// Said again, in case a rule for a subresource is ever added above. The
				// request of the resource itself has no subResource key at all.
				{Name: "main-resource", Expression: `!has(request.subResource) || request.subResource == ""`},
				// Most node writes carry no record at all: skip them at once.
				{Name: "carries-records", Expression: carries("object", guarded) + " || " + carries("oldObject", guarded)},
			},
			Variables: []admissionregistrationv1.Variable{
				{Name: "ann", Expression: `has(object.metadata.annotations) ? object.metadata.annotations : {}`},
				{Name: "oldAnn", Expression: `oldObject != null && has(oldObject.metadata.annotations) ? oldObject.metadata.annotations : {}`},
			},
			Validations: []admissionregistrationv1.Validation{
				{
					Expression: fmt.Sprintf(`request.operation != "UPDATE" || (%s && %s)`,
						unchanged(names.RawAnnotation), unchanged(names.AppliedAnnotation)),
					Message: RecordsMessage,
					Reason:  &forbidden,
				},
				{
					Expression: fmt.Sprintf(`request.userInfo.username == %s || (%s)`,
						strconv.Quote(WebhookUser), strings.Join(published, " && ")),
					Message: UsageTargetMessage,
					Reason:  &forbidden,
				},
			},
			// An evaluation error refuses the write: the records are safety data, and only
			// writes of node metadata that carry them reach this policy.
			FailurePolicy: &fail,
		},
	}
}

// Binding applies Policy to every node, denying what it refuses.
func Binding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: Name, Labels: map[string]string{"app.kubernetes.io/name": Name}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        Name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
}
