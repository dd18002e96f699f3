//go:build e2e

// Package forgedrecords shows on a real kube-apiserver that a node record nobody but the node
// policy wrote cannot raise a node's allocatable: the ValidatingAdmissionPolicy of
// deploy/recordsvalidation, installed from the manifests `kubectl overcommit install` prints,
// refuses the writes of node metadata that would forge one. The e2e suites of both node-policy
// modes run it.
package forgedrecords

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/overcommit-dev/overcommit/deploy"
	"github.com/overcommit-dev/overcommit/deploy/recordsvalidation"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/test/e2e/harness"
)

// Env is what Run needs of a suite.
type Env struct {
	// Admin is a system:masters client config of the cluster.
	Admin *rest.Config
	// Mode is the suite's node-policy mode (deploy.ModeWebhook or deploy.ModePolicy).
	Mode string
	// Settings are the settings the suite's node policy runs with.
	Settings policy.Settings
	// Kubectl runs the real kubectl, with the plugin on PATH, as the admin.
	Kubectl func(t testing.TB, args ...string) (stdout, stderr string, err error)
}

// The node's kubelet reports 4 CPUs and 8Gi; it is opted in at cpu x2, memory x1.5.
const (
	rawCPU      = "4"
	rawMemory   = "8Gi"
	cpuRatio    = "2"
	memoryRatio = "1.5"
	// What the node policy stores for it.
	storedCPU    = "8"
	storedMemory = "12Gi"
	// forgedCPU is the forged raw cpu: the measurement stored 2,000,000 cores.
	forgedCPU = "1000000"
)

// Run installs the ValidatingAdmissionPolicy as an install does, then, as a user who may get,
// patch and update nodes but not nodes/status, tries every way of forging a record of an opted-in
// node; each is refused with the policy's message, while the writes such a user legitimately
// makes still work. Non-kubelet status writes afterwards store exactly the ratio times what the
// kubelet reported, and an admin's `kubectl overcommit disable` and `enable` still work.
func Run(t *testing.T, e Env) {
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(e.Admin)
	install(t, admin, e.Mode)

	name := "forged-records-" + e.Mode
	node := createByKubelet(t, e, name)
	wantStored(t, node, "after the kubelet registered")
	forger := nodeEditor(t, admin, e.Admin, e.Mode)

	// The user is who the issue says: nodes yes, nodes/status no.
	if _, err := forger.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, []byte(`{"status":{}}`), metav1.PatchOptions{}, "status"); !apierrors.IsForbidden(err) {
		t.Fatalf("the node editor's status write: %v, want forbidden by RBAC", err)
	}

	raw, applied := node.Annotations[names.RawAnnotation], node.Annotations[names.AppliedAnnotation]
	forgedRaw := fmt.Sprintf(`{"allocatable":{"cpu":%q,"memory":"8589934592"},"capacity":{"cpu":%q,"memory":"8589934592"}}`, forgedCPU, forgedCPU)
	mergeAnn := func(ann map[string]any) []byte {
		b, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put := func(c kubernetes.Interface, change func(*corev1.Node)) error {
		return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
			n, err := c.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(n)
			_, err = c.CoreV1().Nodes().Update(ctx, n, metav1.UpdateOptions{})
			return err
		})
	}
	patch := func(c kubernetes.Interface, pt types.PatchType, body []byte) error {
		_, err := c.CoreV1().Nodes().Patch(ctx, name, pt, body, metav1.PatchOptions{})
		return err
	}
	escape := func(key string) string { return strings.ReplaceAll(key, "/", "~1") }

	refused := []struct {
		what    string
		message string
		write   func() error
	}{
		{"the issue's attack: a raw record of 1,000,000 cores next to the applied record as stored", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: forgedRaw}))
			}},
		{"an applied record that no longer matches the stored allocatable", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.AppliedAnnotation: `{"allocatable":{"cpu":"1m"}}`}))
			}},
		{"both records forged at once", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: forgedRaw, names.AppliedAnnotation: applied + " "}))
			}},
		{"both records removed (the policy would then multiply its own output again)", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: nil, names.AppliedAnnotation: nil}))
			}},
		{"the raw record removed", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: nil}))
			}},
		{"a JSON patch replacing the raw record", recordsvalidation.RecordsMessage,
			func() error {
				b, _ := json.Marshal([]map[string]any{{"op": "replace", "path": "/metadata/annotations/" + escape(names.RawAnnotation), "value": forgedRaw}})
				return patch(forger, types.JSONPatchType, b)
			}},
		{"a PUT of the node with a forged raw record", recordsvalidation.RecordsMessage,
			func() error {
				return put(forger, func(n *corev1.Node) { n.Annotations[names.RawAnnotation] = forgedRaw })
			}},
		{"a forged raw record hidden in a legitimate edit", recordsvalidation.RecordsMessage,
			func() error {
				return patch(forger, types.MergePatchType, []byte(fmt.Sprintf(`{"metadata":{"labels":{"example.com/team":"a"},"annotations":{%q:%q}}}`, names.RawAnnotation, forgedRaw)))
			}},
		{"a usage target", recordsvalidation.UsageTargetMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.UsageTargetAnnotation: "cpu=1000000000m,memory=0"}))
			}},
		{"a requests record", recordsvalidation.UsageTargetMessage,
			func() error {
				return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.RequestsAnnotation: "cpu=1000000000m,memory=0"}))
			}},
		{"even an admin's forged raw record", recordsvalidation.RecordsMessage,
			func() error {
				return patch(admin, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: forgedRaw}))
			}},
	}
	for _, tc := range refused {
		err := tc.write()
		switch {
		case err == nil:
			t.Errorf("%s: accepted, want refused", tc.what)
		case !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), tc.message):
			t.Errorf("%s: %v, want forbidden with %q", tc.what, err, tc.message)
		default:
			t.Logf("%s: refused: %v", tc.what, err)
		}
	}
	if got := get(t, admin, name); got.Annotations[names.RawAnnotation] != raw || got.Annotations[names.AppliedAnnotation] != applied {
		t.Errorf("records changed: raw %s, applied %s", got.Annotations[names.RawAnnotation], got.Annotations[names.AppliedAnnotation])
	}

	// What such a user does every day still works: labels, other annotations, the opt-in
	// annotations, cordoning, and a PUT of the node as read.
	for _, tc := range []struct {
		what  string
		write func() error
	}{
		{"add a label and an annotation", func() error {
			return patch(forger, types.MergePatchType, []byte(`{"metadata":{"labels":{"example.com/team":"a"},"annotations":{"example.com/note":"x"}}}`))
		}},
		{"remove them", func() error {
			return patch(forger, types.MergePatchType, []byte(`{"metadata":{"labels":{"example.com/team":null},"annotations":{"example.com/note":null}}}`))
		}},
		{"change the cpu ratio and back", func() error {
			if err := patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.CPURatioAnnotation: "3"})); err != nil {
				return err
			}
			return patch(forger, types.MergePatchType, mergeAnn(map[string]any{names.CPURatioAnnotation: cpuRatio}))
		}},
		{"cordon and uncordon", func() error {
			if err := patch(forger, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":true}}`)); err != nil {
				return err
			}
			return patch(forger, types.StrategicMergePatchType, []byte(`{"spec":{"unschedulable":null}}`))
		}},
		{"a PUT of the node as read, with a new label", func() error {
			return put(forger, func(n *corev1.Node) { n.Labels["example.com/put"] = "yes" })
		}},
	} {
		if err := tc.write(); err != nil {
			t.Errorf("%s: %v, want accepted", tc.what, err)
		}
	}

	// After all that, status writes by others than the kubelet store the ratio times what the
	// kubelet reported: a node-problem-detector style condition and kubectl's empty patch.
	statusWrite := func(body string) *corev1.Node {
		t.Helper()
		n, err := admin.CoreV1().Nodes().Patch(ctx, name, types.StrategicMergePatchType, []byte(body), metav1.PatchOptions{}, "status")
		if err != nil {
			t.Fatalf("status write %s: %v", body, err)
		}
		return n
	}
	now := time.Now().UTC().Format(time.RFC3339)
	wantStored(t, statusWrite(`{"status":{"conditions":[{"type":"KernelDeadlock","status":"False","reason":"KernelHasNoDeadlock","lastHeartbeatTime":"`+now+`"}]}}`),
		"after a condition write by someone else than the kubelet")
	wantStored(t, statusWrite(`{"status":{}}`), "after an empty status write")
	bound(t, get(t, admin, name), e.Settings)

	if e.Mode == deploy.ModePolicy {
		// The usage publisher, the webhook's ServiceAccount with the RBAC an install grants,
		// still sets and removes targets and requests records.
		publisher := webhookServiceAccount(t, admin, e.Admin)
		for _, v := range []any{"cpu=500m,memory=0", nil} {
			if err := patch(publisher, types.MergePatchType, mergeAnn(map[string]any{names.UsageTargetAnnotation: v})); err != nil {
				t.Errorf("the webhook's ServiceAccount writing usage target %v: %v", v, err)
			}
		}
		for _, v := range []any{"cpu=500m,memory=0", nil} {
			if err := patch(publisher, types.MergePatchType, mergeAnn(map[string]any{names.RequestsAnnotation: v})); err != nil {
				t.Errorf("the webhook's ServiceAccount writing the requests record %v: %v", v, err)
			}
		}
	}

	// A nodes/status writer (the kubelet, a controller) may set any allocatable; a record it
	// forges in the same write gives it nothing more than that. Dry runs: nothing is kept.
	dry := metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}}
	viaRecord, err := admin.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, mergeAnn(map[string]any{names.RawAnnotation: forgedRaw}), dry, "status")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := admin.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType,
		[]byte(fmt.Sprintf(`{"status":{"allocatable":{"cpu":%q},"capacity":{"cpu":%q}}}`, forgedCPU, forgedCPU)), dry, "status")
	if err != nil {
		t.Fatal(err)
	}
	rec, dir := viaRecord.Status.Allocatable[corev1.ResourceCPU], direct.Status.Allocatable[corev1.ResourceCPU]
	t.Logf("status writer: a forged raw record of %s cores stores %s; setting allocatable to %s stores %s", forgedCPU, rec.String(), forgedCPU, dir.String())
	if rec.Cmp(dir) > 0 {
		t.Errorf("a forged raw record in a status write stores cpu %s, more than setting allocatable directly (%s)", rec.String(), dir.String())
	}

	// An admin opts the node out and in again with the plugin.
	if _, errOut, err := e.Kubectl(t, "overcommit", "disable", name); err != nil {
		t.Fatalf("kubectl overcommit disable: %v\n%s", err, errOut)
	}
	off := get(t, admin, name)
	for key, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: rawCPU, corev1.ResourceMemory: rawMemory} {
		if q := off.Status.Allocatable[key]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("after disable: allocatable %s %s, want the kubelet's %s", key, q.String(), want)
		}
	}
	if _, ok := off.Annotations[names.RawAnnotation]; ok || policy.OptedIn(off.Labels) {
		t.Errorf("after disable: labels %v, annotations %v", off.Labels, off.Annotations)
	}
	if _, errOut, err := e.Kubectl(t, "overcommit", "enable", name, "--cpu-ratio", cpuRatio, "--memory-ratio", memoryRatio); err != nil {
		t.Fatalf("kubectl overcommit enable: %v\n%s", err, errOut)
	}
	wantStored(t, get(t, admin, name), "after disable and enable")
}

// wantStored checks the node holds the ratio times the kubelet's 4 CPUs and 8Gi, and its raw
// record the kubelet's values.
func wantStored(t *testing.T, n *corev1.Node, when string) {
	t.Helper()
	for key, want := range map[corev1.ResourceName]string{corev1.ResourceCPU: storedCPU, corev1.ResourceMemory: storedMemory} {
		if q := n.Status.Allocatable[key]; q.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("%s: allocatable %s %s, want %s", when, key, q.String(), want)
		}
	}
	r, err := policy.ParseRaw(n.Annotations[names.RawAnnotation])
	if err != nil {
		t.Errorf("%s: raw record %q: %v", when, n.Annotations[names.RawAnnotation], err)
		return
	}
	if c := r.Allocatable[corev1.ResourceCPU]; c.Cmp(resource.MustParse(rawCPU)) != 0 {
		t.Errorf("%s: raw record %s, want the kubelet's cpu %s", when, n.Annotations[names.RawAnnotation], rawCPU)
	}
}

// bound checks the property itself: stored allocatable is at most the maximum ratio times what
// the kubelet reported.
func bound(t *testing.T, n *corev1.Node, s policy.Settings) {
	t.Helper()
	for _, l := range []struct {
		name corev1.ResourceName
		raw  string
		max  policy.Ratio
	}{{corev1.ResourceCPU, rawCPU, s.CPU.Max}, {corev1.ResourceMemory, rawMemory, s.Memory.Max}} {
		// Small amounts (4 CPUs, 8Gi): the product stays far inside int64.
		limit := policy.Amount(l.name, resource.MustParse(l.raw)) * int64(l.max) / int64(policy.One)
		if got := n.Status.Allocatable[l.name]; policy.Amount(l.name, got) > limit {
			t.Errorf("stored %s allocatable %s is above the maximum ratio %s times the kubelet's %s", l.name, got.String(), l.max, l.raw)
		}
	}
}

func get(t *testing.T, c kubernetes.Interface, name string) *corev1.Node {
	t.Helper()
	n, err := c.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("getting node %s: %v", name, err)
	}
	return n
}

// createByKubelet registers an opted-in node as its own kubelet does (no kwok: nothing else
// writes its status but the test and the node lifecycle controller).
func createByKubelet(t *testing.T, e Env, name string) *corev1.Node {
	t.Helper()
	cfg := rest.CopyConfig(e.Admin)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: names.KubeletUser(name), Groups: []string{"system:nodes", "system:authenticated"}}
	kubelet := kubernetes.NewForConfigOrDie(cfg)
	list := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(rawCPU), corev1.ResourceMemory: resource.MustParse(rawMemory), corev1.ResourcePods: resource.MustParse("110")}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels:      map[string]string{names.EnabledLabel: names.EnabledValue, corev1.LabelHostname: name},
			Annotations: map[string]string{names.CPURatioAnnotation: cpuRatio, names.MemoryRatioAnnotation: memoryRatio}},
		Status: corev1.NodeStatus{Allocatable: list, Capacity: list.DeepCopy()},
	}
	got, err := kubelet.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating node %s as its kubelet: %v", name, err)
	}
	admin := kubernetes.NewForConfigOrDie(e.Admin)
	t.Cleanup(func() {
		if err := admin.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting node %s: %v", name, err)
		}
	})
	return got
}

// InstallValidation installs the records' ValidatingAdmissionPolicy and binding for the rest of
// the test, as install does (below), for suites that check an install with them.
func InstallValidation(t *testing.T, admin kubernetes.Interface, mode string) {
	t.Helper()
	install(t, admin, mode)
}

// install creates the ValidatingAdmissionPolicy and binding as `kubectl overcommit install
// --mode <mode>` prints them, waits until the apiserver enforces them, and removes them when
// the test ends (waiting until they no longer apply, so later tests of the suite may write
// records as their setup needs).
func install(t *testing.T, admin kubernetes.Interface, mode string) {
	t.Helper()
	ctx := context.Background()
	var p *admissionregistrationv1.ValidatingAdmissionPolicy
	var b *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for _, o := range rendered(t, mode) {
		switch v := o.(type) {
		case *admissionregistrationv1.ValidatingAdmissionPolicy:
			if v.Name == recordsvalidation.Name {
				p = v
			}
		case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
			if v.Name == recordsvalidation.Name {
				b = v
			}
		}
	}
	if p == nil || b == nil {
		t.Fatalf("the install (mode %s) lacks the ValidatingAdmissionPolicy or binding %s", mode, recordsvalidation.Name)
	}
	api := admin.AdmissionregistrationV1()
	if _, err := api.ValidatingAdmissionPolicies().Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the ValidatingAdmissionPolicy: %v", err)
	}
	if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, b, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the ValidatingAdmissionPolicyBinding: %v", err)
	}
	t.Cleanup(func() {
		_ = api.ValidatingAdmissionPolicyBindings().Delete(ctx, b.Name, metav1.DeleteOptions{})
		_ = api.ValidatingAdmissionPolicies().Delete(ctx, p.Name, metav1.DeleteOptions{})
		waitEnforced(t, admin, false)
	})
	waitEnforced(t, admin, true)
}

// waitEnforced waits until the apiserver does (or no longer does) refuse a dry-run create of a
// node with a usage target by the admin: policies take effect through an informer.
func waitEnforced(t *testing.T, admin kubernetes.Interface, enforced bool) {
	t.Helper()
	probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "forged-records-probe",
		Annotations: map[string]string{names.UsageTargetAnnotation: "cpu=0m,memory=0"}}}
	state := map[bool]string{true: "enforced", false: "gone"}
	harness.Eventually(t, 30*time.Second, "the ValidatingAdmissionPolicy "+recordsvalidation.Name+" "+state[enforced], func() error {
		_, err := admin.CoreV1().Nodes().Create(context.Background(), probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		refused := apierrors.IsForbidden(err) && strings.Contains(err.Error(), recordsvalidation.UsageTargetMessage)
		if err != nil && !refused {
			t.Fatalf("probe of the ValidatingAdmissionPolicy: %v", err)
		}
		if refused != enforced {
			return fmt.Errorf("still %s", state[!enforced])
		}
		return nil
	})
}

// rendered decodes what `kubectl overcommit install --mode mode` prints.
func rendered(t *testing.T, mode string) []runtime.Object {
	t.Helper()
	objs, err := harness.Rendered(deploy.DefaultOverlay, mode)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// nodeEditor returns a client of a ServiceAccount bound to a ClusterRole that may get, list,
// watch, patch and update nodes, and nothing of nodes/status: the user of the issue.
func nodeEditor(t *testing.T, admin kubernetes.Interface, adminCfg *rest.Config, mode string) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	name := "forged-records-node-editor-" + mode
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch", "update"}}}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: metav1.NamespaceDefault}}}
	if _, err := admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = admin.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.CoreV1().ServiceAccounts(sa.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
		_ = admin.RbacV1().ClusterRoles().Delete(ctx, name, metav1.DeleteOptions{})
	})
	return tokenClient(t, admin, adminCfg, sa.Namespace, name)
}

// webhookServiceAccount returns a client of the webhook's ServiceAccount with the
// ServiceAccount and cluster RBAC the install of mode policy creates (created here when missing).
func webhookServiceAccount(t *testing.T, admin kubernetes.Interface, adminCfg *rest.Config) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	for _, o := range rendered(t, deploy.ModePolicy) {
		var err error
		switch v := o.(type) {
		case *corev1.ServiceAccount:
			_, err = admin.CoreV1().ServiceAccounts(v.Namespace).Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = admin.RbacV1().ClusterRoles().Create(ctx, v, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, v, metav1.CreateOptions{})
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T of the install: %v", o, err)
		}
	}
	return tokenClient(t, admin, adminCfg, names.Namespace, recordsvalidation.WebhookServiceAccount)
}

// tokenClient mints an hour-long token for a ServiceAccount and waits until its RBAC lets it
// read nodes.
func tokenClient(t *testing.T, admin kubernetes.Interface, adminCfg *rest.Config, namespace, name string) kubernetes.Interface {
	t.Helper()
	ctx := context.Background()
	hour := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for %s/%s: %v", namespace, name, err)
	}
	cfg := &rest.Config{Host: adminCfg.Host, BearerToken: tr.Status.Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: adminCfg.CAData, CAFile: adminCfg.CAFile, ServerName: adminCfg.ServerName}}
	c := kubernetes.NewForConfigOrDie(cfg)
	harness.Eventually(t, 30*time.Second, namespace+"/"+name+" listing nodes", func() error {
		_, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		return err
	})
	return c
}
