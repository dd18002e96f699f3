// Package nodepolicy builds the MutatingAdmissionPolicy of policy mode: shared/policy's node
// policy written in CEL, evaluated inside kube-apiserver, so that no process outside it is on the
// path of a node's status write. Its expressions are generated here from the same constants
// (patterns, bounds, annotation names) that shared/policy uses; a differential e2e test proves the
// two store the same result for thousands of random nodes.
//
// CEL in Kubernetes has no JSON decoder, no quantity multiplication and errors on int overflow,
// so: records are read with the patterns of policy/records.go, amounts are integers (millicores,
// bytes) bounded by policy.MaxAmount, and a ratio multiplication is split in parts that stay in
// int64. Where Go leaves a resource unchanged the CEL does too.
package nodepolicy

import (
	"fmt"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// Policy returns the MutatingAdmissionPolicy.
func Policy() *admissionregistrationv1.MutatingAdmissionPolicy {
	ignore := admissionregistrationv1.Ignore
	never := admissionregistrationv1.NeverReinvocationPolicy
	rule := func(op admissionregistrationv1.OperationType, resource string) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{op},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{resource}},
		}}
	}
	var vars []admissionregistrationv1.Variable
	for _, v := range variables() {
		vars = append(vars, admissionregistrationv1.Variable{Name: v.name, Expression: v.expr})
	}
	return &admissionregistrationv1.MutatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: names.NodePolicyName, Labels: map[string]string{"app.kubernetes.io/name": "overcommit-nodes"}},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			ParamKind: &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			MatchConstraints: &admissionregistrationv1.MatchResources{
				// A rule for nodes does not cover nodes/status, where the kubelet reports.
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{
					rule(admissionregistrationv1.Create, "nodes"),
					rule(admissionregistrationv1.Update, "nodes/status"),
				},
				ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{names.EnabledLabel: names.EnabledValue}},
			},
			Variables: vars,
			Mutations: []admissionregistrationv1.Mutation{{
				PatchType: admissionregistrationv1.PatchTypeJSONPatch,
				JSONPatch: &admissionregistrationv1.JSONPatch{Expression: patchExpression()},
			}},
			// An evaluation error (or missing settings) stores the write as sent: never block a
			// node's status write.
			FailurePolicy:      &ignore,
			ReinvocationPolicy: never,
		},
	}
}

// Binding returns the binding that applies Policy with the settings ConfigMap as its params. A
// missing ConfigMap is a misconfiguration: Deny hands it to the policy's failurePolicy (Ignore),
// so nodes are stored as their writers send them, as the webhook does without its settings.
func Binding() *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	deny := admissionregistrationv1.DenyAction
	return &admissionregistrationv1.MutatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: names.NodePolicyName, Labels: map[string]string{"app.kubernetes.io/name": "overcommit-nodes"}},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{
			PolicyName: names.NodePolicyName,
			ParamRef: &admissionregistrationv1.ParamRef{
				Name: names.SettingsConfigMap, Namespace: names.Namespace,
				ParameterNotFoundAction: &deny,
			},
		},
	}
}

type variable struct{ name, expr string }

// v refers to an earlier variable.
func v(name string) string { return "variables." + name }

// lit is a CEL string literal; raw, so that regular expressions keep their backslashes.
func lit(s string) string {
	if strings.Contains(s, "'") {
		panic("CEL literal with a quote: " + s)
	}
	return "r'" + s + "'"
}

const million = "1000000"

// ratioOf parses a ratio string as policy.ParseRatio does: millionths, or -1. The length is
// checked before the pattern runs, as in Go: an annotation may be long, a ratio never is.
func ratioOf(e string) string {
	return fmt.Sprintf(`(size(%[1]s) <= %[4]d && %[1]s.matches(%[2]s) ? int(%[1]s.find('^[0-9]+')) * %[3]s + (%[1]s.contains('.') ? int((%[1]s.find('[.][0-9]+$').substring(1) + '000000').substring(0, 6)) : 0) : -1)`,
		e, lit(policy.RatioPattern), million, policy.MaxRatioLength)
}

// amountOf is policy's amount: millicores or bytes when exact and within [0, MaxAmount], else -1.
func amountOf(name corev1.ResourceName, e string) string {
	q := "quantity(" + e + ")"
	if name == corev1.ResourceMemory {
		// isInteger is false for a whole number held as a big decimal (32Pi is), so the
		// fallback builds a candidate as for cpu, 16 below the float value (which may be off
		// by a few bytes above 2^53), and accepts it only if it compares equal.
		base := fmt.Sprintf(`(int(%s.asApproximateFloat()) - 16)`, q)
		cand := fmt.Sprintf(`(%[1]s + int(%[2]s.sub(%[1]s).asApproximateFloat() + 0.5))`, base, q)
		return fmt.Sprintf(`(!isQuantity(%[1]s) ? -1 : %[2]s.isLessThan(quantity('0')) || %[2]s.isGreaterThan(quantity('%[3]d')) ? -1 : %[2]s.isInteger() ? %[2]s.asInteger() : %[2]s.compareTo(quantity(string(%[4]s))) == 0 ? %[4]s : -1)`,
			e, q, policy.MaxAmount, cand)
	}
	// Whole cores are exact. Otherwise a candidate millicore count is built from the float
	// value (exact enough below MaxAmount: the fraction is taken from a quantity near 1) and
	// accepted only if it compares equal to the quantity.
	base := fmt.Sprintf(`(int(%s.asApproximateFloat()) - 1)`, q)
	cand := fmt.Sprintf(`(%[1]s * 1000 + int(%[2]s.sub(%[1]s).asApproximateFloat() * 1000.0 + 0.5))`, base, q)
	return fmt.Sprintf(`(!isQuantity(%[1]s) ? -1 : %[2]s.isLessThan(quantity('0')) || %[2]s.isGreaterThan(quantity('%[3]dm')) ? -1 : %[2]s.isInteger() ? %[2]s.asInteger() * 1000 : %[2]s.compareTo(quantity(string(%[4]s) + 'm')) == 0 ? %[4]s : -1)`,
		e, q, policy.MaxAmount, cand)
}

// same compares two quantity strings as policy's sameResources does ("" is absent).
func same(a, b string) string {
	return fmt.Sprintf(`((%[1]s == '' && %[2]s == '') || (%[1]s != '' && %[2]s != '' && quantity(%[1]s).compareTo(quantity(%[2]s)) == 0))`, a, b)
}

// entry reads one quantity string of a status list variable ("" when absent).
func entry(list string, name corev1.ResourceName) string {
	return fmt.Sprintf(`('%[2]s' in %[1]s ? string(%[1]s['%[2]s']) : '')`, list, name)
}

// recordEntry extracts one value from a matched record list ("" when absent).
func recordEntry(list string, name corev1.ResourceName) string {
	pattern, prefix := policy.RecordCPUPattern, `"cpu":"`
	if name == corev1.ResourceMemory {
		pattern, prefix = policy.RecordMemoryPattern, `"memory":"`
	}
	tok := fmt.Sprintf(`%s.find(%s)`, list, lit(pattern))
	return fmt.Sprintf(`(%[1]s == '' ? '' : %[1]s.substring(%[2]d, size(%[1]s) - 1))`, tok, len(prefix))
}

// recordList writes a record list as policy's appendRecordList does.
func recordList(cpu, mem string) string {
	return fmt.Sprintf(`'{' + (%[1]s != '' ? '"cpu":"' + %[1]s + '"' : '') + (%[1]s != '' && %[2]s != '' ? ',' : '') + (%[2]s != '' ? '"memory":"' + %[2]s + '"' : '') + '}'`, cpu, mem)
}

func ann(key string) string { return fmt.Sprintf(`%s[%s]`, v("ann"), strconv.Quote(key)) }
func hasAnn(key string) string {
	return fmt.Sprintf(`%s in %s`, strconv.Quote(key), v("ann"))
}

// mulFloor is floor(a * r / 10^6) for a <= MaxAmount and r <= MaxRatio, split so that no
// product leaves int64: a*(r div 10^6) + (a div 10^6)*(r mod 10^6) + (a mod 10^6)*(r mod 10^6) div 10^6.
func mulFloor(a, r string) string {
	return fmt.Sprintf(`(%[1]s * (%[2]s / %[3]s) + (%[1]s / %[3]s) * (%[2]s %% %[3]s) + ((%[1]s %% %[3]s) * (%[2]s %% %[3]s)) / %[3]s)`, a, r, million)
}

// ratioString prints millionths as policy.Ratio.String does.
func ratioString(r string) string {
	return fmt.Sprintf(`string(%[1]s / %[2]s) + (%[1]s %% %[2]s == 0 ? '' : '.' + string(%[2]s + %[1]s %% %[2]s).substring(1).find('^[0-9]*[1-9]'))`, r, million)
}

// SettingsValidation returns the ValidatingAdmissionPolicy that refuses an edit leaving the
// settings ConfigMap incomplete or invalid, with the checks of policy.SettingsFromData: readers
// would otherwise fall back to the defaults, which is rarely what the person editing meant.
func SettingsValidation() *admissionregistrationv1.ValidatingAdmissionPolicy {
	fail := admissionregistrationv1.Fail
	var vars []admissionregistrationv1.Variable
	for _, v := range settingsVariables(`has(object.data) ? object.data : {}`) {
		vars = append(vars, admissionregistrationv1.Variable{Name: v.name, Expression: v.expr})
	}
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: settingsValidationName, Labels: map[string]string{"app.kubernetes.io/name": "overcommit-settings"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
				}}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name: "the-settings-configmap",
				Expression: fmt.Sprintf(`object.metadata.namespace == %q && object.metadata.name == %q`,
					names.Namespace, names.SettingsConfigMap),
			}},
			Variables: vars,
			Validations: []admissionregistrationv1.Validation{{
				Expression: v("settingsValid"),
				Message: fmt.Sprintf("%s/%s needs every key (%s, %s, %s, %s, %s, %s): ratios as plain decimals such as 1.5, "+
					"each maximum from 1 to %s, each default from 1 to its maximum, %s whole seconds from 1 to 99999",
					names.Namespace, names.SettingsConfigMap, policy.KeyDefaultCPURatio, policy.KeyMaxCPURatio,
					policy.KeyDefaultMemoryRatio, policy.KeyMaxMemoryRatio, policy.KeyUsageMargin, policy.KeyMetricsMaxAgeSeconds,
					policy.MaxRatio, policy.KeyMetricsMaxAgeSeconds),
			}},
			FailurePolicy: &fail,
		},
	}
}

// SettingsValidationBinding denies what SettingsValidation refuses.
func SettingsValidationBinding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: settingsValidationName, Labels: map[string]string{"app.kubernetes.io/name": "overcommit-settings"}},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        settingsValidationName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
}

const settingsValidationName = "overcommit-settings"
