package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/overcommit-dev/overcommit/deploy/recordsvalidation"
	"github.com/overcommit-dev/overcommit/hack/cluster"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

// objects decodes a rendered stream: built-in kinds typed, others (cert-manager) unstructured.
func objects(t *testing.T, data []byte) []runtime.Object {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []runtime.Object
	for {
		var raw runtime.RawExtension
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decoding rendered manifests: %v", err)
		}
		if len(bytes.TrimSpace(raw.Raw)) == 0 {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(raw.Raw, nil, nil)
		if runtime.IsNotRegisteredError(err) {
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(raw.Raw); err != nil {
				t.Fatalf("decoding %s: %v", raw.Raw, err)
			}
			obj = u
		} else if err != nil {
			t.Fatalf("decoding %s: %v", raw.Raw, err)
		}
		objs = append(objs, obj)
	}
}

func render(t *testing.T, overlay, mode string) []runtime.Object {
	t.Helper()
	out, err := Render(overlay, mode, "")
	if err != nil {
		t.Fatal(err)
	}
	return objects(t, out)
}

func find[T runtime.Object](objs []runtime.Object) []T {
	var found []T
	for _, o := range objs {
		if v, ok := o.(T); ok {
			found = append(found, v)
		}
	}
	return found
}

func TestOverlays(t *testing.T) {
	if diff := cmp.Diff([]string{OverlayCertManager, OverlaySelfSigned}, Overlays()); diff != "" {
		t.Errorf("Overlays() (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{ModePolicy, ModeWebhook}, Modes()); diff != "" {
		t.Errorf("Modes() (-want +got):\n%s", diff)
	}
	if _, err := Render("nope", ModeWebhook, ""); err == nil || !strings.Contains(err.Error(), "unknown overlay") {
		t.Errorf("Render(nope) = %v, want an unknown overlay error", err)
	}
	for _, mode := range []string{"", "both", "../overlays/self-signed"} {
		if _, err := Render(OverlaySelfSigned, mode, ""); err == nil || !strings.Contains(err.Error(), "unknown mode") {
			t.Errorf("Render(mode %q) = %v, want an unknown mode error", mode, err)
		}
	}
}

// each runs f for every overlay (and base) with every mode.
func each(t *testing.T, withBase bool, f func(t *testing.T, overlay, mode string)) {
	overlays := Overlays()
	if withBase {
		overlays = append([]string{"base"}, overlays...)
	}
	for _, overlay := range overlays {
		for _, mode := range Modes() {
			t.Run(overlay+"/"+mode, func(t *testing.T) { f(t, overlay, mode) })
		}
	}
}

// TestRenderNamespacesAndOrder: every namespaced object lives in the webhook's namespace, and the
// stream can be applied as is (Namespace first, webhook configuration last).
func TestRenderNamespacesAndOrder(t *testing.T) {
	each(t, true, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		if len(objs) == 0 {
			t.Fatal("nothing rendered")
		}
		kinds := make([]string, len(objs))
		for i, o := range objs {
			m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
			if err != nil {
				t.Fatal(err)
			}
			u := unstructured.Unstructured{Object: m}
			kinds[i] = o.GetObjectKind().GroupVersionKind().Kind
			switch kinds[i] {
			case "Namespace", "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
				"MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding":
			default:
				if u.GetNamespace() != cluster.WebhookNamespace {
					t.Errorf("%s %s in namespace %q, want %s", kinds[i], u.GetName(), u.GetNamespace(), cluster.WebhookNamespace)
				}
			}
			if u.GetLabels()["app.kubernetes.io/part-of"] != "overcommit" {
				t.Errorf("%s %s lacks the app.kubernetes.io/part-of label", kinds[i], u.GetName())
			}
		}
		if kinds[0] != "Namespace" || kinds[len(kinds)-1] != "MutatingWebhookConfiguration" {
			t.Errorf("order %v: want Namespace first and MutatingWebhookConfiguration last", kinds)
		}
	})
}

// TestWebhookConfigurationMatchesRunner: the e2e suite and the demo register the webhook with
// hack/cluster's WebhookConfiguration; it must be the one deploy/ installs in webhook mode, apart
// from where the Service is reached and who provides the caBundle. Policy mode installs the same
// pod webhook and no node webhook.
func TestWebhookConfigurationMatchesRunner(t *testing.T) {
	want := cluster.WebhookConfiguration(cluster.WebhookConfig{Port: 443, Pods: true})
	if len(want.Webhooks) != 2 || want.Webhooks[0].Name != cluster.NodeWebhookName || want.Webhooks[1].Name != cluster.PodWebhookName {
		t.Fatalf("hack/cluster registers %d webhooks; this test expects the node then the pod webhook", len(want.Webhooks))
	}
	for mode, webhooks := range map[string][]admissionregistrationv1.MutatingWebhook{
		ModeWebhook: want.Webhooks,
		ModePolicy:  want.Webhooks[1:],
	} {
		t.Run(mode, func(t *testing.T) {
			mwcs := find[*admissionregistrationv1.MutatingWebhookConfiguration](render(t, "base", mode))
			if len(mwcs) != 1 {
				t.Fatalf("%d MutatingWebhookConfigurations, want 1", len(mwcs))
			}
			got := mwcs[0]
			if got.Name != want.Name || got.Name != names.WebhookConfigurationName {
				t.Errorf("name %q, runner %q, names.WebhookConfigurationName %q", got.Name, want.Name, names.WebhookConfigurationName)
			}
			if diff := cmp.Diff(webhooks, got.Webhooks); diff != "" {
				t.Errorf("webhooks differ from hack/cluster's (-runner +deploy):\n%s", diff)
			}
		})
	}
}

// TestModes: policy mode installs the MutatingAdmissionPolicy and its binding (their content is
// generated and tested where it is generated) and no node webhook; webhook mode the reverse.
func TestModes(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		policies := find[*admissionregistrationv1.MutatingAdmissionPolicy](objs)
		bindings := find[*admissionregistrationv1.MutatingAdmissionPolicyBinding](objs)
		var webhooks []string
		for _, mwc := range find[*admissionregistrationv1.MutatingWebhookConfiguration](objs) {
			for _, w := range mwc.Webhooks {
				webhooks = append(webhooks, w.Name)
			}
		}
		switch mode {
		case ModePolicy:
			if len(policies) != 1 || policies[0].Name != names.NodePolicyName {
				t.Errorf("MutatingAdmissionPolicies %v, want one named %s", policies, names.NodePolicyName)
			}
			if len(bindings) != 1 || bindings[0].Name != names.NodePolicyName {
				t.Errorf("MutatingAdmissionPolicyBindings %v, want one named %s", bindings, names.NodePolicyName)
			}
			if diff := cmp.Diff([]string{cluster.PodWebhookName}, webhooks); diff != "" {
				t.Errorf("webhooks (-want +got):\n%s", diff)
			}
		case ModeWebhook:
			if len(policies)+len(bindings) != 0 {
				t.Errorf("webhook mode installs %d MutatingAdmissionPolicies and %d bindings", len(policies), len(bindings))
			}
			if diff := cmp.Diff([]string{cluster.NodeWebhookName, cluster.PodWebhookName}, webhooks); diff != "" {
				t.Errorf("webhooks (-want +got):\n%s", diff)
			}
		}
	})
}

// TestSettingsConfigMap: every install ships the one settings ConfigMap, and its values are the
// built-in defaults (what every reader uses when the ConfigMap is invalid).
func TestSettingsConfigMap(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		var found []*corev1.ConfigMap
		for _, cm := range find[*corev1.ConfigMap](render(t, overlay, mode)) {
			if cm.Name == names.SettingsConfigMap {
				found = append(found, cm)
			}
		}
		if len(found) != 1 {
			t.Fatalf("%d ConfigMaps %s, want 1", len(found), names.SettingsConfigMap)
		}
		cm := found[0]
		if cm.Namespace != names.Namespace {
			t.Errorf("ConfigMap %s in namespace %q, want %s", cm.Name, cm.Namespace, names.Namespace)
		}
		s, err := policy.SettingsFromData(cm.Data)
		if err != nil {
			t.Fatalf("settings: %v", err)
		}
		if diff := cmp.Diff(policy.DefaultSettings(), s); diff != "" {
			t.Errorf("settings differ from policy.DefaultSettings (-defaults +deploy):\n%s", diff)
		}
		if diff := cmp.Diff(policy.DefaultSettings().Data(), cm.Data); diff != "" {
			t.Errorf("settings are not spelled as Settings.Data spells them (-Data +deploy):\n%s", diff)
		}
	})
}

func TestDeploymentHardening(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		deps := find[*appsv1.Deployment](render(t, overlay, mode))
		if len(deps) != 1 {
			t.Fatalf("%d Deployments, want 1", len(deps))
		}
		d := deps[0]
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("replicas %v, want 2", d.Spec.Replicas)
		}
		ps := d.Spec.Template.Spec
		if ps.ServiceAccountName != "overcommit-webhook" {
			t.Errorf("serviceAccountName %q", ps.ServiceAccountName)
		}
		// Critical priority, admitted by the namespace's quota for that class (some clusters
		// admit system-cluster-critical outside kube-system only under a covering quota).
		if ps.PriorityClassName != "system-cluster-critical" {
			t.Errorf("priorityClassName %q, want system-cluster-critical", ps.PriorityClassName)
		}
		coveringQuota(t, render(t, overlay, mode), d)
		// Spread over zones and nodes, soft so that one node runs both replicas.
		for _, key := range []string{"topology.kubernetes.io/zone", "kubernetes.io/hostname"} {
			if !slices.ContainsFunc(ps.TopologySpreadConstraints, func(c corev1.TopologySpreadConstraint) bool {
				sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
				return c.TopologyKey == key && c.MaxSkew == 1 && c.WhenUnsatisfiable == corev1.ScheduleAnyway &&
					err == nil && !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) &&
					slices.Equal(c.MatchLabelKeys, []string{"pod-template-hash"})
			}) {
				t.Errorf("no soft spread (maxSkew 1, ScheduleAnyway, the pods' labels, per rollout) over %s in %+v", key, ps.TopologySpreadConstraints)
			}
		}
		if ps.SecurityContext == nil || ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("pod seccomp profile is not RuntimeDefault")
		}
		if len(ps.Containers) != 1 {
			t.Fatalf("%d containers, want 1", len(ps.Containers))
		}
		c := ps.Containers[0]
		if !strings.HasPrefix(c.Image, Image+":") {
			t.Errorf("image %q, want %s:<tag>", c.Image, Image)
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Fatal("no container securityContext")
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Error("runAsNonRoot is not set")
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Error("readOnlyRootFilesystem is not set")
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Error("allowPrivilegeEscalation is not false")
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}):
			t.Error("capabilities are not drop ALL")
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("no %s request", r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("no %s limit", r)
			}
		}
		// MEMORY_LIMIT is the memory limit in bytes; the webhook sets the Go memory limit to 90%
		// of it (webhook/memlimit.go; hack/scale runs the webhook with this environment). A
		// GOMEMLIMIT equal to the limit would leave no headroom.
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "MEMORY_LIMIT" && e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil &&
				e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" &&
				e.ValueFrom.ResourceFieldRef.ContainerName == c.Name && e.ValueFrom.ResourceFieldRef.Divisor.IsZero()
		}) {
			t.Errorf("no MEMORY_LIMIT from the container's limits.memory (in bytes) in %+v", c.Env)
		}
		if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }) {
			t.Error("GOMEMLIMIT is set: it would override the 90% the webhook derives from MEMORY_LIMIT")
		}
		for probe, path := range map[*corev1.Probe]string{c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
			if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || probe.HTTPGet.Port.String() != "probes" {
				t.Errorf("probe %s: %+v", path, probe)
			}
		}
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "probes" && p.ContainerPort == 8081 }) {
			t.Error("no probes port 8081")
		}
		if !slices.Contains(c.Args, "--cert-dir=/certs") || !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/certs" }) {
			t.Error("the cert dir /certs is not a mounted volume (the root filesystem is read-only)")
		}
		selfSigned := slices.Contains(c.Args, "--self-signed-secret=overcommit-webhook-tls")
		if selfSigned != (overlay == OverlaySelfSigned) {
			t.Errorf("--self-signed-secret in args: %v", selfSigned)
		}
	})
}

// TestNetworkPolicy: the webhook's pods accept the webhook port from anywhere (the apiserver's
// source address cannot be selected portably), the metrics port only from namespaces labelled
// for scraping, and the probes port from nothing but their node (the kubelet), which the
// NetworkPolicy API always allows. Every port the container opens is named in this test, so a
// new one cannot slip past the policy unnoticed; and no profile endpoint is served.
func TestNetworkPolicy(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		deps := find[*appsv1.Deployment](objs)
		nps := find[*networkingv1.NetworkPolicy](objs)
		svcs := find[*corev1.Service](objs)
		if len(deps) != 1 || len(nps) != 1 || len(svcs) != 1 {
			t.Fatalf("%d Deployments, %d NetworkPolicies, %d Services; want one each", len(deps), len(nps), len(svcs))
		}
		d, np, svc := deps[0], nps[0], svcs[0]
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("podSelector %v does not select the webhook's pods %v", np.Spec.PodSelector, d.Spec.Template.Labels)
		}
		if diff := cmp.Diff([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}, np.Spec.PolicyTypes); diff != "" {
			t.Errorf("policyTypes (-want +got):\n%s", diff)
		}
		c := d.Spec.Template.Spec.Containers[0]
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
		}
		if diff := cmp.Diff(map[string]int32{"webhook": 9443, "metrics": 8080, "probes": 8081}, ports); diff != "" {
			t.Errorf("container ports (-want +got):\n%s", diff)
		}
		if tp := svc.Spec.Ports[0].TargetPort.String(); tp != "webhook" {
			t.Errorf("the Service targets port %q, want webhook", tp)
		}
		if !slices.Contains(c.Args, "--metrics-bind-address=:8080") {
			t.Errorf("args %q: want --metrics-bind-address=:8080, the port the policy opens to scrapers", c.Args)
		}
		if slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--pprof") }) {
			t.Errorf("args %q serve Go profiles", c.Args)
		}
		// Who may reach each port: "any", or the peers allowed.
		allowed := map[string]string{}
		for _, rule := range np.Spec.Ingress {
			from := "any"
			if len(rule.From) > 0 {
				var peers []string
				for _, p := range rule.From {
					switch {
					case p.NamespaceSelector != nil && p.PodSelector == nil && p.IPBlock == nil:
						peers = append(peers, "namespaces "+metav1.FormatLabelSelector(p.NamespaceSelector))
					default:
						peers = append(peers, fmt.Sprintf("%+v", p))
					}
				}
				from = strings.Join(peers, "; ")
			}
			if len(rule.Ports) == 0 {
				allowed["every port"] = from
			}
			for _, p := range rule.Ports {
				if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.Port == nil || p.EndPort != nil {
					t.Errorf("port %+v: want one named TCP port", p)
					continue
				}
				allowed[p.Port.String()] = from
			}
		}
		want := map[string]string{"webhook": "any", "metrics": "namespaces overcommit.dev/metrics-scraper=true"}
		if diff := cmp.Diff(want, allowed); diff != "" {
			t.Errorf("sources allowed by port (-want +got):\n%s", diff)
		}
	})
}

// TestRBACLeastPrivilege: no wildcards, writes only by name, no Secret access but the
// self-signed overlay's one Secret, and the MutatingWebhookConfiguration only where the webhook
// injects its own caBundle (self-signed).
func TestRBACLeastPrivilege(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		var rules, namespaced []rbacv1.PolicyRule
		for _, r := range find[*rbacv1.ClusterRole](objs) {
			rules = append(rules, r.Rules...)
		}
		for _, r := range find[*rbacv1.Role](objs) {
			rules = append(rules, r.Rules...)
			namespaced = append(namespaced, r.Rules...)
		}
		secretRules, mwcRules := 0, 0
		for _, r := range rules {
			for _, v := range r.Verbs {
				if v == "*" || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
					t.Errorf("wildcard in %+v", r)
				}
				write := v != "get" && v != "list" && v != "watch"
				// Policy mode's usage targets are node annotations on every usage-policy node:
				// RBAC cannot name them in advance. The only unnamed write, and only there.
				targets := mode == ModePolicy && v == "patch" && slices.Equal(r.Resources, []string{"nodes"})
				if write && len(r.ResourceNames) == 0 && !targets {
					t.Errorf("write verb %q without resourceNames in %+v", v, r)
				}
			}
			if slices.Contains(r.Resources, "secrets") {
				secretRules++
				if diff := cmp.Diff(rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
					ResourceNames: []string{"overcommit-webhook-tls"}, Verbs: []string{"get", "update"}}, r); diff != "" {
					t.Errorf("secret rule (-want +got):\n%s", diff)
				}
			}
			if slices.Contains(r.Resources, "mutatingwebhookconfigurations") {
				mwcRules++
				if diff := cmp.Diff(rbacv1.PolicyRule{APIGroups: []string{"admissionregistration.k8s.io"}, Resources: []string{"mutatingwebhookconfigurations"},
					ResourceNames: []string{names.WebhookConfigurationName}, Verbs: []string{"get", "patch"}}, r); diff != "" {
					t.Errorf("webhook configuration rule (-want +got):\n%s", diff)
				}
			}
		}
		if want := map[string]int{OverlaySelfSigned: 1, OverlayCertManager: 0}[overlay]; secretRules != want {
			t.Errorf("%d rules on secrets, want %d", secretRules, want)
		}
		if want := map[string]int{OverlaySelfSigned: 1, OverlayCertManager: 0}[overlay]; mwcRules != want {
			t.Errorf("%d rules on mutatingwebhookconfigurations, want %d", mwcRules, want)
		}
		// The settings ConfigMap and the sidecar templates are read by informers in the
		// webhook's namespace.
		if !slices.ContainsFunc(namespaced, func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.Resources, "configmaps") && slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch")
		}) {
			t.Error("no namespaced list/watch of configmaps")
		}
		// The node cache (the node gauges, and policy mode's publisher) lists and watches nodes
		// in both modes.
		if !slices.ContainsFunc(rules, func(r rbacv1.PolicyRule) bool {
			return slices.Equal(r.APIGroups, []string{""}) && slices.Contains(r.Resources, "nodes") && slices.Contains(r.Verbs, "list") && slices.Contains(r.Verbs, "watch")
		}) {
			t.Error("no list/watch of nodes")
		}
	})
}

func TestCertManagerOverlay(t *testing.T) {
	objs := render(t, OverlayCertManager, ModeWebhook)
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](objs)[0]
	if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "overcommit-system/overcommit-webhook" {
		t.Errorf("inject-ca-from = %q", got)
	}
	var cert *unstructured.Unstructured
	for _, u := range find[*unstructured.Unstructured](objs) {
		if u.GetKind() == "Certificate" && u.GetName() == "overcommit-webhook" {
			cert = u
		}
	}
	if cert == nil {
		t.Fatal("no Certificate overcommit-webhook")
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, cluster.WebhookServiceName+"."+cluster.WebhookNamespace+".svc") {
		t.Errorf("dnsNames %v lack the name the apiserver verifies", dns)
	}
	secret, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	dep := find[*appsv1.Deployment](objs)[0]
	vols := dep.Spec.Template.Spec.Volumes
	if len(vols) != 1 || vols[0].Secret == nil || vols[0].Secret.SecretName != secret || vols[0].EmptyDir != nil {
		t.Errorf("cert volume %+v, want only the Secret %s", vols, secret)
	}
	if len(find[*corev1.Secret](objs)) != 0 {
		t.Error("the cert-manager overlay ships a Secret; cert-manager owns it")
	}
}

func TestRenderImage(t *testing.T) {
	for _, tc := range []struct{ image, want string }{
		{"registry.example/team/webhook:v9", "registry.example/team/webhook:v9"},
		{"localhost:5000/webhook:dev", "localhost:5000/webhook:dev"},
		{"registry.example/webhook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"registry.example/webhook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"registry.example/webhook:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"registry.example/webhook:v2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
	} {
		t.Run(tc.image, func(t *testing.T) {
			out, err := Render(OverlaySelfSigned, ModePolicy, tc.image)
			if err != nil {
				t.Fatal(err)
			}
			d := find[*appsv1.Deployment](objects(t, out))[0]
			if got := d.Spec.Template.Spec.Containers[0].Image; got != tc.want {
				t.Errorf("image %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"a b", "repo:", "repo@nodigest", ":tag"} {
		if _, err := Render(OverlaySelfSigned, ModePolicy, bad); err == nil {
			t.Errorf("Render with image %q succeeded, want an error", bad)
		}
	}
}

// TestRecordsValidation: every install, in both modes, ships the ValidatingAdmissionPolicy that
// guards the node records, with its binding, exactly as deploy/recordsvalidation generates them
// (the install adds only the part-of label).
func TestRecordsValidation(t *testing.T) {
	each(t, true, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		var policies []*admissionregistrationv1.ValidatingAdmissionPolicy
		for _, p := range find[*admissionregistrationv1.ValidatingAdmissionPolicy](objs) {
			if p.Name == recordsvalidation.Name {
				policies = append(policies, p)
			}
		}
		var bindings []*admissionregistrationv1.ValidatingAdmissionPolicyBinding
		for _, b := range find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](objs) {
			if b.Name == recordsvalidation.Name {
				bindings = append(bindings, b)
			}
		}
		if len(policies) != 1 || len(bindings) != 1 {
			t.Fatalf("%d ValidatingAdmissionPolicies and %d bindings named %s, want 1 each", len(policies), len(bindings), recordsvalidation.Name)
		}
		if diff := cmp.Diff(recordsvalidation.Policy().Spec, policies[0].Spec); diff != "" {
			t.Errorf("policy (-generated +rendered):\n%s", diff)
		}
		if diff := cmp.Diff(recordsvalidation.Binding().Spec, bindings[0].Spec); diff != "" {
			t.Errorf("binding (-generated +rendered):\n%s", diff)
		}
	})
}

// coveringQuota checks that the rendered objects hold a ResourceQuota in the Deployment's
// namespace whose PriorityClass scope covers the Deployment's class, with room for the replicas,
// a surge pod and as many terminating during a rollout.
func coveringQuota(t *testing.T, objs []runtime.Object, d *appsv1.Deployment) {
	t.Helper()
	class := d.Spec.Template.Spec.PriorityClassName
	for _, q := range find[*corev1.ResourceQuota](objs) {
		if q.Namespace != d.Namespace || q.Spec.ScopeSelector == nil {
			continue
		}
		covers := slices.ContainsFunc(q.Spec.ScopeSelector.MatchExpressions, func(e corev1.ScopedResourceSelectorRequirement) bool {
			return e.ScopeName == corev1.ResourceQuotaScopePriorityClass && e.Operator == corev1.ScopeSelectorOpIn && slices.Contains(e.Values, class)
		})
		if !covers {
			continue
		}
		surge := 1
		if ru := d.Spec.Strategy.RollingUpdate; ru != nil && ru.MaxSurge != nil {
			surge = ru.MaxSurge.IntValue()
		}
		pods, ok := q.Spec.Hard[corev1.ResourcePods]
		if want := int64(2 * (int(*d.Spec.Replicas) + surge)); !ok || pods.Value() < want {
			t.Errorf("ResourceQuota %s allows %v pods of class %s, want at least %d", q.Name, pods.String(), class, want)
		}
		return
	}
	t.Errorf("no ResourceQuota in %s with a PriorityClass scope covering %s", d.Namespace, class)
}

// TestCABundlePolicy: the self-signed overlay, whose ServiceAccount may patch its
// MutatingWebhookConfiguration, ships a ValidatingAdmissionPolicy (Fail, Deny) that matches
// exactly that ServiceAccount's updates of exactly that configuration and compares every field
// of every webhook but the caBundle: a field the admissionregistration/v1 API gains fails this
// test until the policy compares it too. The cert-manager overlay grants no such patch and ships
// no policy. (test/e2e's TestCABundlePolicy shows the apiserver enforcing it.)
func TestCABundlePolicy(t *testing.T) {
	each(t, false, func(t *testing.T, overlay, mode string) {
		objs := render(t, overlay, mode)
		vaps := find[*admissionregistrationv1.ValidatingAdmissionPolicy](objs)
		var policy *admissionregistrationv1.ValidatingAdmissionPolicy
		for _, v := range vaps {
			if v.Name == "overcommit-webhook-cabundle-only" {
				policy = v
			}
		}
		patchesMWC := false
		for _, r := range find[*rbacv1.ClusterRole](objs) {
			for _, rule := range r.Rules {
				if slices.Contains(rule.Resources, "mutatingwebhookconfigurations") && slices.ContainsFunc(rule.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
					patchesMWC = true
				}
			}
		}
		if overlay != OverlaySelfSigned {
			if policy != nil || patchesMWC {
				t.Errorf("overlay %s: caBundle policy %v, write access to the configuration %v; want neither", overlay, policy != nil, patchesMWC)
			}
			return
		}
		if policy == nil {
			t.Fatal("no ValidatingAdmissionPolicy overcommit-webhook-cabundle-only")
		}
		if !patchesMWC {
			t.Error("the overlay no longer lets the webhook patch its configuration: is the policy still needed?")
		}
		spec := policy.Spec
		if spec.FailurePolicy == nil || *spec.FailurePolicy != admissionregistrationv1.Fail {
			t.Errorf("failurePolicy %v, want Fail", spec.FailurePolicy)
		}
		// Exactly the Deployment's ServiceAccount, as it renders (namespace included).
		d := find[*appsv1.Deployment](objs)[0]
		user := "system:serviceaccount:" + d.Namespace + ":" + d.Spec.Template.Spec.ServiceAccountName
		if diff := cmp.Diff([]admissionregistrationv1.MatchCondition{{Name: "webhook-service-account",
			Expression: "request.userInfo.username == '" + user + "'"}}, spec.MatchConditions); diff != "" {
			t.Errorf("matchConditions (-want +got):\n%s", diff)
		}
		if spec.MatchConstraints == nil || len(spec.MatchConstraints.ResourceRules) != 1 {
			t.Fatalf("matchConstraints %+v, want one rule", spec.MatchConstraints)
		}
		rule := spec.MatchConstraints.ResourceRules[0]
		if diff := cmp.Diff([]string{names.WebhookConfigurationName}, rule.ResourceNames); diff != "" {
			t.Errorf("resourceNames (-want +got):\n%s", diff)
		}
		if !slices.Equal(rule.Resources, []string{"mutatingwebhookconfigurations"}) || !slices.Equal(rule.APIGroups, []string{"admissionregistration.k8s.io"}) ||
			!slices.Contains(rule.Operations, admissionregistrationv1.Update) {
			t.Errorf("rule %+v does not match UPDATEs of mutatingwebhookconfigurations", rule)
		}
		var all strings.Builder
		for _, v := range spec.Validations {
			all.WriteString(strings.Join(strings.Fields(v.Expression), " ") + "\n")
		}
		exprs := all.String()
		// Every field of a webhook but name (compared as the list of names) and clientConfig
		// (compared field by field, caBundle excepted).
		for _, f := range jsonFields(reflect.TypeFor[admissionregistrationv1.MutatingWebhook]()) {
			if f == "name" || f == "clientConfig" {
				continue
			}
			if want := "w.?" + f + " == o.?" + f; !strings.Contains(exprs, want) {
				t.Errorf("the policy does not compare webhooks' %s (%q)", f, want)
			}
		}
		for _, f := range jsonFields(reflect.TypeFor[admissionregistrationv1.WebhookClientConfig]()) {
			if f == "caBundle" {
				continue
			}
			if want := "w.clientConfig.?" + f + " == o.clientConfig.?" + f; !strings.Contains(exprs, want) {
				t.Errorf("the policy does not compare clientConfig.%s (%q)", f, want)
			}
		}
		for _, want := range []string{"variables.webhooks.map(w, w.name) == variables.oldWebhooks.map(w, w.name)",
			"object.metadata.?labels == oldObject.metadata.?labels", "object.metadata.?annotations == oldObject.metadata.?annotations",
			"object.metadata.?ownerReferences == oldObject.metadata.?ownerReferences", "object.metadata.?finalizers == oldObject.metadata.?finalizers"} {
			if !strings.Contains(exprs, want) {
				t.Errorf("the policy lacks %q", want)
			}
		}
		if strings.Contains(exprs, "caBundle") {
			t.Error("the policy compares the caBundle, the one field the webhook must change")
		}
		bound := false
		for _, b := range find[*admissionregistrationv1.ValidatingAdmissionPolicyBinding](objs) {
			if b.Spec.PolicyName == policy.Name {
				bound = slices.Equal(b.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) &&
					b.Spec.MatchResources == nil && b.Spec.ParamRef == nil
			}
		}
		if !bound {
			t.Error("no binding of the policy with validationActions [Deny] over all it matches")
		}
	})
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out = append(out, name)
		}
	}
	return out
}
