package selfsigned

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	admissionregistrationv1client "k8s.io/client-go/kubernetes/typed/admissionregistration/v1"
	k8stesting "k8s.io/client-go/testing"
)

const (
	ns      = "overcommit-system"
	secret  = "overcommit-webhook-tls"
	mwcName = "overcommit"
)

// cluster is a fake clientset whose Secrets behave like the apiserver's for optimistic
// concurrency: every write bumps resourceVersion, and an update carrying an older one is a
// Conflict. It counts the Secret writes that succeeded.
type cluster struct {
	*fake.Clientset
	mu     sync.Mutex
	writes atomic.Int32
}

func newCluster(objs ...runtime.Object) *cluster {
	c := &cluster{Clientset: fake.NewClientset(objs...)}
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	c.PrependReactor("create", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := a.(k8stesting.CreateAction).GetObject().(*corev1.Secret).DeepCopy()
		s.ResourceVersion = "1"
		if err := c.Tracker().Create(secrets, s, s.Namespace); err != nil {
			return true, nil, err
		}
		c.writes.Add(1)
		return true, s, nil
	})
	c.PrependReactor("update", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		s := a.(k8stesting.UpdateAction).GetObject().(*corev1.Secret).DeepCopy()
		cur, err := c.Tracker().Get(secrets, s.Namespace, s.Name)
		if err != nil {
			return true, nil, err
		}
		have := cur.(*corev1.Secret).ResourceVersion
		if s.ResourceVersion != have {
			return true, nil, apierrors.NewConflict(secrets.GroupResource(), s.Name, nil)
		}
		n, _ := strconv.Atoi(have)
		s.ResourceVersion = strconv.Itoa(n + 1)
		if err := c.Tracker().Update(secrets, s, s.Namespace); err != nil {
			return true, nil, err
		}
		c.writes.Add(1)
		return true, s, nil
	})
	return c
}

func emptySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: secret, Namespace: ns, ResourceVersion: "1"}, Type: corev1.SecretTypeOpaque}
}

func webhookConfig() *admissionregistrationv1.MutatingWebhookConfiguration {
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: mwcName},
		Webhooks:   []admissionregistrationv1.MutatingWebhook{{Name: "nodes.overcommit.dev"}, {Name: "pods.overcommit.dev"}},
	}
}

// clock is a settable time source shared by the replicas of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func replica(t *testing.T, c *cluster, clk *clock) *Provisioner {
	t.Helper()
	p, err := New(Config{
		Client: c, Namespace: ns, SecretName: secret, ServiceName: "overcommit-webhook",
		WebhookConfigName: mwcName, CertDir: t.TempDir(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *cluster) secretData(t *testing.T) map[string][]byte {
	t.Helper()
	s, err := c.CoreV1().Secrets(ns).Get(context.Background(), secret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Data
}

func (c *cluster) bundles(t *testing.T) [][]byte {
	t.Helper()
	mwc, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), mwcName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, w := range mwc.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

func served(t *testing.T, p *Provisioner) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.cfg.CertDir, KeyCert))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBootstrapFromEmptySecret(t *testing.T) {
	c := newCluster(emptySecret(), webhookConfig())
	p := replica(t, c, &clock{now: time.Now()})
	if p.Checker(nil) == nil {
		t.Fatal("ready before any certificate")
	}
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Ready():
	default:
		t.Fatal("not ready after a successful reconcile")
	}
	if err := p.Checker(nil); err != nil {
		t.Fatal(err)
	}
	data := c.secretData(t)
	if !bytes.Equal(served(t, p), data[KeyCert]) {
		t.Error("cert dir does not hold the Secret's certificate")
	}
	for i, b := range c.bundles(t) {
		if !bytes.Equal(b, Bundle(data)) {
			t.Errorf("webhook %d caBundle is not the Secret's CA", i)
		}
		if err := verifyAt(b, served(t, p), time.Now()); err != nil {
			t.Errorf("webhook %d: the served certificate does not verify: %v", i, err)
		}
	}
	// Nothing to do a minute later: no writes at all.
	c.ClearActions()
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Actions() {
		if a.GetVerb() != "get" {
			t.Errorf("steady state made a %s of %s", a.GetVerb(), a.GetResource().Resource)
		}
	}
}

func TestMissingSecret(t *testing.T) {
	t.Run("created when allowed", func(t *testing.T) {
		c := newCluster(webhookConfig())
		p := replica(t, c, &clock{now: time.Now()})
		if err := p.Reconcile(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served(t, p), c.secretData(t)[KeyCert]) {
			t.Error("cert dir does not hold the created Secret's certificate")
		}
	})
	t.Run("forbidden says what to do", func(t *testing.T) {
		c := newCluster(webhookConfig())
		c.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "secrets"}, "", nil)
		})
		p := replica(t, c, &clock{now: time.Now()})
		err := p.Reconcile(context.Background())
		if err == nil || !strings.Contains(err.Error(), "re-apply the install manifests") {
			t.Fatalf("err = %v, want advice to re-apply the manifests", err)
		}
		if p.Checker(nil) == nil {
			t.Error("ready without a certificate")
		}
	})
}

func TestMissingWebhookConfigurationIsNotFatal(t *testing.T) {
	c := newCluster(emptySecret())
	p := replica(t, c, &clock{now: time.Now()})
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if p.Checker(nil) != nil {
		t.Error("not ready: the certificate is in place even without a configuration to inject into")
	}
	// Once the configuration appears, the next pass injects.
	if _, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), webhookConfig(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i, b := range c.bundles(t) {
		if !bytes.Equal(b, Bundle(c.secretData(t))) {
			t.Errorf("webhook %d not injected", i)
		}
	}
}

// TestReplicasStartTogether: many replicas reconcile at once against an empty Secret; one write
// wins, every replica serves that certificate.
func TestReplicasStartTogether(t *testing.T) {
	c := newCluster(emptySecret(), webhookConfig())
	clk := &clock{now: time.Now()}
	ps := make([]*Provisioner, 4)
	for i := range ps {
		ps[i] = replica(t, c, clk)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ps))
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Reconcile(context.Background())
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if n := c.writes.Load(); n != 1 {
		t.Errorf("%d Secret writes, want exactly 1 (the others must reuse it)", n)
	}
	want := c.secretData(t)[KeyCert]
	for i, p := range ps {
		if !bytes.Equal(served(t, p), want) {
			t.Errorf("replica %d serves a certificate that is not the Secret's", i)
		}
	}
}

// TestRotationWithoutDowntime runs two replicas through 21 years, reconciling in turn as their
// intervals would, and checks after every pass that the apiserver's caBundle trusts the
// certificate each replica serves at that moment.
func TestRotationWithoutDowntime(t *testing.T) {
	c := newCluster(emptySecret(), webhookConfig())
	clk := &clock{now: time.Now()}
	a, b := replica(t, c, clk), replica(t, c, clk)
	start := clk.Now()
	cas := map[string]bool{}
	check := func(when string) {
		t.Helper()
		for i, bundle := range c.bundles(t) {
			for name, p := range map[string]*Provisioner{"a": a, "b": b} {
				if err := verifyAt(bundle, served(t, p), clk.Now()); err != nil {
					t.Fatalf("%s, year %.2f: webhook %d does not trust replica %s: %v", when,
						clk.Now().Sub(start).Hours()/24/365, i, name, err)
				}
			}
		}
	}
	ctx := context.Background()
	if err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	check("after start")
	// Coarse steps most of the time, fine steps (a minute apart, a replica's interval) around
	// each rotation, where the ordering matters.
	for clk.Now().Before(start.Add(21 * year)) {
		step := 10 * 24 * time.Hour
		data := c.secretData(t)
		if len(data[KeyNextCACert]) > 0 || len(data[KeyPreviousCACert]) > 0 {
			step = time.Minute
		}
		clk.advance(step)
		if err := a.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		check("after a")
		clk.advance(step / 2)
		if err := b.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		check("after b")
		cas[string(c.secretData(t)[KeyCACert])] = true
	}
	if len(cas) != 4 {
		t.Errorf("%d CAs in 21 years, want 4 (three rotations)", len(cas))
	}
}

func TestNewValidates(t *testing.T) {
	c := newCluster()
	for name, cfg := range map[string]Config{
		"no client":   {Namespace: ns, SecretName: secret, ServiceName: "s", CertDir: "d"},
		"no secret":   {Client: c, Namespace: ns, ServiceName: "s", CertDir: "d"},
		"no cert dir": {Client: c, Namespace: ns, SecretName: secret, ServiceName: "s"},
		"propagation": {Client: c, Namespace: ns, SecretName: secret, ServiceName: "s", CertDir: "d", Interval: time.Minute, Propagation: time.Minute},
		"validity":    {Client: c, Namespace: ns, SecretName: secret, ServiceName: "s", CertDir: "d", CAValidity: time.Hour, CertValidity: 2 * time.Hour},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}

// TestWritePair: tls.crt and tls.key always name the same pair (one symlink switch), old pairs are
// removed, and plain files an earlier writer left are replaced.
func TestWritePair(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, KeyCert), []byte("plain"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		crt, key := []byte(fmt.Sprintf("cert %d", i)), []byte(fmt.Sprintf("key %d", i))
		if err := writePair(dir, crt, key); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string][]byte{KeyCert: crt, KeyKey: key} {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("pass %d: %s = %q, %v; want %q", i, name, got, err, want)
			}
			if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != filepath.Join(dataLink, name) {
				t.Errorf("pass %d: %s links to %q (%v)", i, name, target, err)
			}
		}
		pairs, _ := filepath.Glob(filepath.Join(dir, "..pair-*"))
		if len(pairs) != 1 {
			t.Errorf("pass %d: %d pair directories, want 1", i, len(pairs))
		}
	}
}

// TestOlderSecretCannotOverwriteNewerBundle: two replicas hold different versions of the Secret.
// Replica "old" planned from the first version; before it injects, replica "new" stages the next
// CA (a newer Secret) and injects that bundle. Old must not put its older bundle back: it starts
// over from the Secret and leaves the newer bundle in place. Every caBundle patch the apiserver
// receives carries the bundle of the Secret as it is at that moment.
func TestOlderSecretCannotOverwriteNewerBundle(t *testing.T) {
	c := newCluster(emptySecret(), webhookConfig())
	secrets := schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	var stalePatches []string
	c.PrependReactor("patch", "mutatingwebhookconfigurations", func(a k8stesting.Action) (bool, runtime.Object, error) {
		var patch struct {
			Webhooks []struct {
				Name         string `json:"name"`
				ClientConfig struct {
					CABundle []byte `json:"caBundle"`
				} `json:"clientConfig"`
			} `json:"webhooks"`
		}
		if err := json.Unmarshal(a.(k8stesting.PatchAction).GetPatch(), &patch); err != nil {
			return true, nil, err
		}
		cur, err := c.Tracker().Get(secrets, ns, secret)
		if err != nil {
			return true, nil, err
		}
		want := Bundle(cur.(*corev1.Secret).Data)
		for _, w := range patch.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, want) {
				stalePatches = append(stalePatches, fmt.Sprintf("%s: %d CAs, the Secret has %d", w.Name,
					bytes.Count(w.ClientConfig.CABundle, []byte("BEGIN CERTIFICATE")), bytes.Count(want, []byte("BEGIN CERTIFICATE"))))
			}
		}
		return false, nil, nil // applied by the default reactor
	})
	clk := &clock{now: time.Now()}
	newer := replica(t, c, clk)
	var hooked atomic.Bool
	older, err := New(Config{
		Client: &hookedClient{Interface: c, beforeMWCGet: func() {
			if hooked.Swap(true) {
				return
			}
			// Between old's Secret write and its injection: new's pass at the CA's renewal
			// point stages the next CA.
			clk.advance(DefaultCAValidity / 3 * 2)
			if err := newer.Reconcile(context.Background()); err != nil {
				t.Errorf("replica new: %v", err)
			}
		}},
		Namespace: ns, SecretName: secret, ServiceName: "overcommit-webhook",
		WebhookConfigName: mwcName, CertDir: t.TempDir(), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := older.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !hooked.Load() {
		t.Fatal("replica new never ran")
	}
	data := c.secretData(t)
	if len(data[KeyNextCACert]) == 0 {
		t.Fatal("replica new staged no CA: the scenario did not happen")
	}
	for i, b := range c.bundles(t) {
		if !bytes.Equal(b, Bundle(data)) {
			t.Errorf("webhook %d holds %d CAs, the Secret's bundle %d: an older Secret's bundle overwrote the newer one",
				i, bytes.Count(b, []byte("BEGIN CERTIFICATE")), bytes.Count(Bundle(data), []byte("BEGIN CERTIFICATE")))
		}
	}
	if len(stalePatches) > 0 {
		t.Errorf("caBundle patches that were not the current Secret's bundle:\n%s", strings.Join(stalePatches, "\n"))
	}
}

// hookedClient calls beforeMWCGet before every read of a MutatingWebhookConfiguration, outside
// the fake clientset's lock, so a test can run another replica at exactly that point.
type hookedClient struct {
	kubernetes.Interface
	beforeMWCGet func()
}

func (h *hookedClient) AdmissionregistrationV1() admissionregistrationv1client.AdmissionregistrationV1Interface {
	return hookedAdmission{h.Interface.AdmissionregistrationV1(), h.beforeMWCGet}
}

type hookedAdmission struct {
	admissionregistrationv1client.AdmissionregistrationV1Interface
	hook func()
}

func (a hookedAdmission) MutatingWebhookConfigurations() admissionregistrationv1client.MutatingWebhookConfigurationInterface {
	return hookedMWCs{a.AdmissionregistrationV1Interface.MutatingWebhookConfigurations(), a.hook}
}

type hookedMWCs struct {
	admissionregistrationv1client.MutatingWebhookConfigurationInterface
	hook func()
}

func (m hookedMWCs) Get(ctx context.Context, name string, opts metav1.GetOptions) (*admissionregistrationv1.MutatingWebhookConfiguration, error) {
	m.hook()
	return m.MutatingWebhookConfigurationInterface.Get(ctx, name, opts)
}
