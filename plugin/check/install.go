package check

import (
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
)

// Install is what the command read about the install. A field's Err says why it could not be
// read; the check then fails with that reason rather than guessing.
type Install struct {
	Mode kube.NodePolicy

	// Policy mode: the MutatingAdmissionPolicyBinding of the node policy (nil: not found).
	Binding    *admissionregistrationv1.MutatingAdmissionPolicyBinding
	BindingErr error
	// RecordsValidation says whether the ValidatingAdmissionPolicy that refuses forged node
	// records, and its binding, exist.
	RecordsValidation    bool
	RecordsValidationErr error

	// Webhook is the MutatingWebhookConfiguration names.WebhookConfigurationName (nil: not found).
	Webhook    *admissionregistrationv1.MutatingWebhookConfiguration
	WebhookErr error
	// Served is the certificate the webhook's Service presented, checked against the caBundle.
	Served *Served
	// Endpoints are those of the Service the webhook configuration calls.
	Endpoints *kube.ServiceEndpoints

	Settings kube.Settings

	// OptedIn and UsageNodes count the opted-in nodes and those among them on the usage policy.
	OptedIn, UsageNodes int
	// Usage is NodeMetrics as read; StaleUsageNodes names the usage-policy nodes without a sample
	// newer than the settings' metricsMaxAge.
	Usage           kube.Usage
	StaleUsageNodes []string

	Permissions []kube.Permission
	Autoscaler  kube.Autoscaler

	Now time.Time
}

// certificate ages that the monitoring component's alerts use too: both certificate sources renew
// with about four months left, so 60 days means renewal has been failing; 7 days is urgent.
const (
	certRenewalFailing = 60 * 24 * time.Hour
	certExpiringSoon   = 7 * 24 * time.Hour
)

// InstallResults checks the install.
func InstallResults(in Install) []Result {
	out := []Result{modeResult(in)}
	mode := in.Mode.Mode
	if mode == kube.ModePolicy || mode == kube.ModeBoth {
		out = append(out, bindingResult(in))
	}
	if mode == kube.ModeWebhook || mode == kube.ModeBoth {
		out = append(out, webhookConfigResult(in))
	}
	if mode == kube.ModePolicy || mode == kube.ModeWebhook || mode == kube.ModeBoth {
		out = append(out, recordsValidationResult(in))
	}
	if in.Endpoints != nil {
		out = append(out, endpointsResult(in))
	}
	if in.Served != nil {
		out = append(out, in.Served.result(in.Now))
	}
	out = append(out, settingsResult(in))
	if in.Mode.Mode == kube.ModePolicy && in.OptedIn > 0 {
		out = append(out, confirmationResult(in))
	}
	return append(out, metricsResult(in), permissionsResult(in), autoscalerResult(in))
}

const installCmd = "kubectl overcommit install --mode policy|webhook | kubectl apply -f -"

func modeResult(in Install) Result {
	r := ok(SectionInstall, "mode", "")
	switch in.Mode.Mode {
	case kube.ModePolicy:
		r.Message = "policy mode: the MutatingAdmissionPolicy " + names.NodePolicyName + " runs the node policy inside kube-apiserver"
	case kube.ModeWebhook:
		r.Message = "webhook mode: the webhook " + names.NodeWebhookName + " of MutatingWebhookConfiguration " + names.WebhookConfigurationName + " runs the node policy"
	case kube.ModeBoth:
		r.Message = in.Mode.Notice
		return r.with(Fail, "delete the mode you do not want: kubectl delete mutatingadmissionpolicy "+names.NodePolicyName+
			", or remove the webhook "+names.NodeWebhookName+" (kubectl overcommit install --mode policy prints a configuration without it)")
	case kube.ModeNone:
		r.Message = in.Mode.Notice
		return r.with(Fail, "install overcommit: "+installCmd)
	default:
		r.Message = in.Mode.Notice
		return r.with(Fail, "run check with a user that may get mutatingadmissionpolicies and mutatingwebhookconfigurations")
	}
	return r
}

func bindingResult(in Install) Result {
	r := ok(SectionInstall, "policy-binding", "")
	b := in.Binding
	switch {
	case in.BindingErr != nil:
		r.Message = fmt.Sprintf("cannot read the MutatingAdmissionPolicyBinding %s: %v", names.NodePolicyName, in.BindingErr)
		return r.with(Fail, "run check with a user that may get mutatingadmissionpolicybindings")
	case b == nil:
		r.Message = "the MutatingAdmissionPolicy " + names.NodePolicyName + " has no MutatingAdmissionPolicyBinding " + names.NodePolicyName + ": the policy applies to nothing"
		return r.with(Fail, "re-apply the install: "+installCmd)
	case b.Spec.PolicyName != names.NodePolicyName:
		r.Message = fmt.Sprintf("the MutatingAdmissionPolicyBinding %s binds policy %q, not %s", names.NodePolicyName, b.Spec.PolicyName, names.NodePolicyName)
		return r.with(Fail, "re-apply the install: "+installCmd)
	case b.Spec.ParamRef == nil || b.Spec.ParamRef.Name != names.SettingsConfigMap || b.Spec.ParamRef.Namespace != names.Namespace:
		r.Message = fmt.Sprintf("the MutatingAdmissionPolicyBinding %s does not take its params from the settings ConfigMap %s/%s", names.NodePolicyName, names.Namespace, names.SettingsConfigMap)
		return r.with(Fail, "re-apply the install: "+installCmd)
	}
	r.Message = fmt.Sprintf("MutatingAdmissionPolicyBinding %s binds the policy with the settings ConfigMap %s/%s as params", names.NodePolicyName, names.Namespace, names.SettingsConfigMap)
	return r
}

func recordsValidationResult(in Install) Result {
	r := ok(SectionInstall, "records-validation", "")
	switch {
	case in.RecordsValidationErr != nil:
		r.Message = fmt.Sprintf("cannot read the ValidatingAdmissionPolicy that guards the node records: %v", in.RecordsValidationErr)
		return r.with(Warn, "run check with a user that may get validatingadmissionpolicies and their bindings")
	case !in.RecordsValidation:
		r.Message = "the ValidatingAdmissionPolicy overcommit-node-records or its binding is missing: anyone who may patch nodes can forge the records that raise allocatable"
		return r.with(Fail, "re-apply the install: "+installCmd)
	}
	r.Message = "ValidatingAdmissionPolicy overcommit-node-records refuses node records written outside the node policy"
	return r
}

func webhookConfigResult(in Install) Result {
	r := ok(SectionInstall, "webhook-configuration", "")
	reapply := "re-apply the install: " + installCmd
	if in.WebhookErr != nil {
		r.Message = fmt.Sprintf("cannot read MutatingWebhookConfiguration %s: %v", names.WebhookConfigurationName, in.WebhookErr)
		return r.with(Fail, "run check with a user that may get mutatingwebhookconfigurations")
	}
	w := nodeWebhook(in.Webhook)
	if w == nil {
		r.Message = "MutatingWebhookConfiguration " + names.WebhookConfigurationName + " has no webhook " + names.NodeWebhookName
		return r.with(Fail, reapply)
	}
	var problems []string
	if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore {
		problems = append(problems, "its failurePolicy is not Ignore, so a webhook outage blocks every kubelet status write of opted-in nodes")
	}
	if !coversNodeStatus(w.Rules) {
		problems = append(problems, "its rules do not include UPDATE of nodes/status, so kubelet writes are not rewritten")
	}
	if sel := w.ObjectSelector; sel == nil || sel.MatchLabels[names.EnabledLabel] != names.EnabledValue {
		problems = append(problems, "its objectSelector does not select "+names.EnabledLabel+"="+names.EnabledValue)
	}
	if len(w.ClientConfig.CABundle) == 0 {
		problems = append(problems, "its caBundle is empty, so the apiserver cannot verify the webhook (is cert-manager's cainjector running?)")
	}
	if len(problems) > 0 {
		r.Message = "webhook " + names.NodeWebhookName + ": " + strings.Join(problems, "; ")
		return r.with(Fail, reapply)
	}
	r.Message = "webhook " + names.NodeWebhookName + " rewrites UPDATEs of nodes/status of opted-in nodes, failurePolicy Ignore, with a caBundle"
	return r
}

// nodeWebhook is the node webhook of the configuration, or nil.
func nodeWebhook(mwc *admissionregistrationv1.MutatingWebhookConfiguration) *admissionregistrationv1.MutatingWebhook {
	if mwc == nil {
		return nil
	}
	for i := range mwc.Webhooks {
		if mwc.Webhooks[i].Name == names.NodeWebhookName {
			return &mwc.Webhooks[i]
		}
	}
	return nil
}

func coversNodeStatus(rules []admissionregistrationv1.RuleWithOperations) bool {
	for _, r := range rules {
		update := slices.ContainsFunc(r.Operations, func(o admissionregistrationv1.OperationType) bool {
			return o == admissionregistrationv1.Update || o == admissionregistrationv1.OperationAll
		})
		if update && (slices.Contains(r.Resources, "nodes/status") || slices.Contains(r.Resources, "*/*") || slices.Contains(r.Resources, "nodes/*")) {
			return true
		}
	}
	return false
}

func endpointsResult(in Install) Result {
	e := in.Endpoints
	r := ok(SectionInstall, "webhook-endpoints", "")
	svc := "Service " + e.Namespace + "/" + e.Name
	fix := "kubectl -n " + e.Namespace + " get deploy,pods,endpointslices -l app.kubernetes.io/name=overcommit-webhook; the pods' events and logs say why they are not ready"
	switch {
	case e.Err != nil:
		r.Message = fmt.Sprintf("cannot read the endpoints of %s: %v", svc, e.Err)
		return r.with(Fail, "run check with a user that may get services and list endpointslices in "+e.Namespace)
	case e.Missing:
		r.Message = svc + ", which the webhook configuration calls, does not exist"
		return r.with(Fail, "re-apply the install: "+installCmd)
	case e.ExternalName != "":
		r.Message = fmt.Sprintf("%s points outside the cluster (ExternalName %s): no endpoints to count; the certificate check reaches it", svc, e.ExternalName)
		return r
	case e.Ready == 0:
		r.Message = fmt.Sprintf("%s has no ready endpoint (%d not ready): the apiserver cannot call the webhook", svc, e.NotReady)
		return r.with(Fail, fix)
	case e.Ready == 1 && in.Mode.Mode == kube.ModeWebhook:
		r.Message = fmt.Sprintf("%s has 1 ready endpoint: in webhook mode, losing it during a kubelet restart stores the raw allocatable", svc)
		return r.with(Warn, "run at least two replicas (the install's Deployment has two and a PodDisruptionBudget)")
	}
	r.Message = fmt.Sprintf("%s has %d ready endpoints", svc, e.Ready)
	if e.NotReady > 0 {
		r.Message += fmt.Sprintf(" (%d not ready)", e.NotReady)
	}
	return r
}

func settingsResult(in Install) Result {
	s := in.Settings
	r := ok(SectionInstall, "settings", "")
	ref := names.Namespace + "/" + names.SettingsConfigMap
	switch {
	case s.Missing:
		r.Message = "settings ConfigMap " + ref + " not found: the node policy leaves opted-in nodes unchanged"
		return r.with(Fail, "re-apply the install: "+installCmd)
	case s.Source != kube.SettingsFromConfigMap:
		r.Message = s.Notice
		return r.with(Fail, "fix the ConfigMap: kubectl -n "+names.Namespace+" edit configmap "+names.SettingsConfigMap+" (kubectl overcommit install prints a valid one)")
	}
	r.Message = fmt.Sprintf("settings ConfigMap %s is valid: cpu x%s (max x%s), memory x%s (max x%s), metrics trusted for %s",
		ref, s.CPU.Default, s.CPU.Max, s.Memory.Default, s.Memory.Max, s.MaxMetricsAge)
	return r
}

// confirmationResult: in policy mode the webhook's publisher vouches for the published usage
// targets and requests records by a timestamp in the settings ConfigMap; the CEL stops trusting
// them once it is older than metricsMaxAge.
func confirmationResult(in Install) Result {
	s := in.Settings.Settings
	r := ok(SectionInstall, "published-records", "")
	fix := "the webhook publishes them (--publish-usage-targets): kubectl -n " + names.Namespace + " logs deploy/overcommit-webhook says why it does not"
	switch at := s.TargetsConfirmedAt; {
	case at.IsZero():
		r.Message = "the webhook has never confirmed the published usage targets and requests: usage-policy nodes get no overcommit, and the pressure guard holds at raw"
		return r.with(Fail, fix)
	case in.Now.Sub(at) > s.MaxMetricsAge:
		r.Message = fmt.Sprintf("the webhook last confirmed the published usage targets and requests %s ago (trusted for %s): usage-policy nodes get no overcommit",
			in.Now.Sub(at).Round(time.Second), s.MaxMetricsAge)
		return r.with(Fail, fix)
	}
	r.Message = fmt.Sprintf("the webhook confirmed the published usage targets and requests %s ago (trusted for %s)", in.Now.Sub(s.TargetsConfirmedAt).Round(time.Second), s.MaxMetricsAge)
	return r
}

func metricsResult(in Install) Result {
	r := ok(SectionInstall, "metrics-api", "")
	switch {
	case in.UsageNodes == 0 && in.Usage.Unavailable != "":
		r.Message = "no opted-in node uses the usage policy, so metrics.k8s.io is not needed (" + in.Usage.Unavailable + ")"
	case in.UsageNodes == 0:
		r.Message = "no opted-in node uses the usage policy; metrics.k8s.io is available"
	case in.Usage.Unavailable != "":
		r.Message = fmt.Sprintf("%s on the usage policy, but %s: they get no overcommit", plural(in.UsageNodes, "node"), in.Usage.Unavailable)
		return r.with(Fail, "install metrics-server (or another metrics.k8s.io provider) and check: kubectl get apiservice v1beta1.metrics.k8s.io")
	case len(in.StaleUsageNodes) > 0:
		r.Message = fmt.Sprintf("metrics.k8s.io has no sample newer than %s for %d of %s on the usage policy (%s): they get no overcommit",
			in.Settings.MaxMetricsAge, len(in.StaleUsageNodes), plural(in.UsageNodes, "node"), output.NodeList(in.StaleUsageNodes))
		return r.with(Warn, "kubectl top node shows which nodes metrics-server cannot scrape; its log says why")
	default:
		r.Message = fmt.Sprintf("metrics.k8s.io serves a fresh sample for every node on the usage policy (%d)", in.UsageNodes)
	}
	return r
}

func permissionsResult(in Install) Result {
	r := ok(SectionInstall, "permissions", "")
	var missing, unsure []string
	status := OK
	for _, p := range in.Permissions {
		switch {
		case p.Err != nil:
			unsure = append(unsure, fmt.Sprintf("%s (%v)", p, p.Err))
			status = worse(status, Warn)
		case !p.Allowed:
			missing = append(missing, fmt.Sprintf("%s (%s)", p, p.For))
			if p.Required {
				status = worse(status, Fail)
			} else {
				status = worse(status, Warn)
			}
		}
	}
	if status == OK {
		r.Message = fmt.Sprintf("you may do everything the plugin does (%d permissions checked)", len(in.Permissions))
		return r
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing: "+strings.Join(missing, "; "))
	}
	if len(unsure) > 0 {
		parts = append(parts, "could not check: "+strings.Join(unsure, "; "))
	}
	r.Message = strings.Join(parts, "; ")
	return r.with(status, "ask your cluster admin for the missing permissions (kubectl auth can-i --list shows yours)")
}

func worse(a, b Status) Status {
	rank := map[Status]int{OK: 0, Warn: 1, Fail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func autoscalerResult(in Install) Result {
	r := ok(SectionInstall, "autoscaler", "")
	a := in.Autoscaler
	switch {
	case a.Err != nil:
		r.Message = fmt.Sprintf("cannot tell whether a cluster autoscaler runs: %v", a.Err)
		return r.with(Warn, "run check with a user that may get configmaps and list deployments in kube-system")
	case a.Found == "":
		r.Message = "no cluster autoscaler found (no ConfigMap kube-system/cluster-autoscaler-status, no cluster-autoscaler Deployment in kube-system): its view of the nodes is not checked"
	default:
		r.Message = "cluster autoscaler found (" + a.Found + "): the nodes below are checked as it judges them"
	}
	return r
}
