// Package selfsigned lets the webhook run without cert-manager: it keeps a CA and a serving
// certificate in a Secret that all replicas share, writes the serving pair into the webhook's
// cert dir (the server reloads it when it changes), keeps the CA in the caBundle of every webhook
// of its MutatingWebhookConfiguration, and rotates both before they expire without a moment in
// which the apiserver distrusts a replica.
//
// Replicas coordinate through the Secret alone: every write carries the resourceVersion it read,
// so when two replicas start together one write wins and the other re-reads and reuses it.
package selfsigned

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/overcommit-dev/overcommit/shared/names"
)

// fieldManager names the webhook's writes in managedFields (the functions below use names for
// webhook names).
const fieldManager = names.WebhookFieldManager

// Defaults of Config.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultCertValidity = 365 * 24 * time.Hour
	DefaultInterval     = time.Minute
	DefaultPropagation  = 10 * time.Minute
	// MinPropagation leaves room for the webhook server's certificate watcher, which also polls
	// the cert dir every 10 s.
	MinPropagation = 30 * time.Second
)

// Config configures a Provisioner.
type Config struct {
	Client kubernetes.Interface
	// Namespace and SecretName locate the Secret; Namespace is also the Service's.
	Namespace  string
	SecretName string
	// ServiceName is the webhook's Service: the certificate names <svc>, <svc>.<ns> and
	// <svc>.<ns>.svc, the last being what the apiserver verifies.
	ServiceName string
	// WebhookConfigName is the MutatingWebhookConfiguration whose webhooks get the caBundle;
	// empty leaves the caBundle to someone else.
	WebhookConfigName string
	// CertDir receives tls.crt and tls.key.
	CertDir string

	CAValidity   time.Duration // DefaultCAValidity when zero
	CertValidity time.Duration // DefaultCertValidity when zero
	// Interval is how often the Secret is checked (renewals, other replicas' writes).
	Interval time.Duration
	// Propagation is how long each rotation step waits before the next relies on it: a new CA
	// is in the caBundle that long before it signs, and a new serving certificate is out that
	// long before the CA that signed the previous one leaves the bundle. At least 2×Interval, so
	// every replica has re-read the Secret in between, and MinPropagation.
	Propagation time.Duration

	Log *slog.Logger
	Now func() time.Time
}

// Provisioner keeps the webhook's certificates; see the package documentation.
type Provisioner struct {
	cfg   Config
	hosts []string

	readyOnce sync.Once
	ready     chan struct{}

	mu             sync.Mutex
	mwcMissingLogs bool
}

// New validates cfg and fills in its defaults.
func New(cfg Config) (*Provisioner, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("selfsigned: a Kubernetes client is required")
	case cfg.Namespace == "" || cfg.SecretName == "" || cfg.ServiceName == "":
		return nil, errors.New("selfsigned: namespace, Secret name and Service name are required")
	case cfg.CertDir == "":
		return nil, errors.New("selfsigned: a cert dir is required")
	}
	if cfg.CAValidity == 0 {
		cfg.CAValidity = DefaultCAValidity
	}
	if cfg.CertValidity == 0 {
		cfg.CertValidity = DefaultCertValidity
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Propagation == 0 {
		cfg.Propagation = DefaultPropagation
	}
	if cfg.Propagation < 2*cfg.Interval || cfg.Propagation < MinPropagation {
		return nil, fmt.Errorf("selfsigned: propagation %s must be at least twice the interval %s and at least %s", cfg.Propagation, cfg.Interval, MinPropagation)
	}
	if cfg.CertValidity > cfg.CAValidity {
		return nil, fmt.Errorf("selfsigned: certificate validity %s exceeds the CA's %s", cfg.CertValidity, cfg.CAValidity)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	svc, ns := cfg.ServiceName, cfg.Namespace
	return &Provisioner{
		cfg:   cfg,
		hosts: []string{svc, svc + "." + ns, svc + "." + ns + ".svc"},
		ready: make(chan struct{}),
	}, nil
}

// Ready is closed once a serving certificate is in the cert dir; the webhook server starts then.
func (p *Provisioner) Ready() <-chan struct{} { return p.ready }

// Checker is a readiness check: ready once the serving certificate is in place.
func (p *Provisioner) Checker(*http.Request) error {
	select {
	case <-p.ready:
		return nil
	default:
		return fmt.Errorf("no serving certificate yet from Secret %s/%s", p.cfg.Namespace, p.cfg.SecretName)
	}
}

// Run reconciles at once, then every Interval until ctx ends. Failures are logged and retried
// sooner, with backoff, so a replica that starts before the apiserver answers catches up fast.
func (p *Provisioner) Run(ctx context.Context) {
	retryIn := time.Second
	for {
		delay := p.cfg.Interval
		if err := p.Reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.cfg.Log.Error("provisioning the webhook's certificates", "secret", p.secretRef(), "err", err, "retryIn", retryIn.String())
			delay, retryIn = retryIn, min(2*retryIn, p.cfg.Interval)
		} else {
			retryIn = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// Reconcile makes one pass: bring the Secret up to date (or adopt what another replica wrote),
// write the serving pair into the cert dir, and make every webhook's caBundle match the Secret.
// A Conflict anywhere (another replica wrote the Secret or the configuration meanwhile) starts
// the pass over from the Secret.
func (p *Provisioner) Reconcile(ctx context.Context) error {
	conflict := func(err error) bool {
		return apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) || errors.Is(err, errStaleSecret)
	}
	return retry.OnError(retry.DefaultRetry, conflict, func() error {
		data, version, err := p.syncSecret(ctx)
		if err != nil {
			return err
		}
		if err := p.writeCertDir(data); err != nil {
			return err
		}
		p.readyOnce.Do(func() { close(p.ready) })
		if p.cfg.WebhookConfigName == "" {
			return nil
		}
		return p.injectBundle(ctx, Bundle(data), version)
	})
}

// errStaleSecret: the Secret changed after this replica planned from it; its bundle may be older
// than the one another replica injected.
var errStaleSecret = errors.New("the Secret changed since it was read")

// syncSecret reads the Secret, stores the plan's changes if any, and returns the data in force
// with the Secret's resourceVersion that holds it.
func (p *Provisioner) syncSecret(ctx context.Context) (map[string][]byte, string, error) {
	api := p.cfg.Client.CoreV1().Secrets(p.cfg.Namespace)
	secret, err := api.Get(ctx, p.cfg.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		data, reasons, err := plan(nil, p.policy(false))
		if err != nil {
			return nil, "", err
		}
		secret = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: p.cfg.SecretName, Namespace: p.cfg.Namespace,
				Labels: map[string]string{"app.kubernetes.io/name": "overcommit-webhook"}},
			Type: corev1.SecretTypeOpaque,
			Data: data,
		}
		created, err := api.Create(ctx, secret, metav1.CreateOptions{FieldManager: fieldManager})
		if err != nil {
			if apierrors.IsForbidden(err) {
				return nil, "", fmt.Errorf("the Secret %s is missing and this webhook may not create it (its RBAC allows get and update of that one Secret only); re-apply the install manifests, which include it empty: %w", p.secretRef(), err)
			}
			return nil, "", fmt.Errorf("creating Secret %s: %w", p.secretRef(), err)
		}
		p.logChange(reasons, data)
		return data, created.ResourceVersion, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading Secret %s: %w", p.secretRef(), err)
	}
	nextTrusted := true
	if len(secret.Data[KeyNextCACert]) > 0 {
		nextTrusted = p.trusted(ctx, secret.Data[KeyNextCACert])
	}
	data, reasons, err := plan(secret.Data, p.policy(nextTrusted))
	if err != nil {
		return nil, "", err
	}
	if len(reasons) == 0 {
		return data, secret.ResourceVersion, nil
	}
	secret.Data = data
	// The Secret carries the resourceVersion read above: a concurrent write by another replica
	// makes this a Conflict, and the caller starts over from what that replica stored.
	updated, err := api.Update(ctx, secret, metav1.UpdateOptions{FieldManager: fieldManager})
	if err != nil {
		return nil, "", fmt.Errorf("updating Secret %s: %w", p.secretRef(), err)
	}
	p.logChange(reasons, data)
	return data, updated.ResourceVersion, nil
}

func (p *Provisioner) policy(nextTrusted bool) policy {
	return policy{
		now:          p.cfg.Now(),
		hosts:        p.hosts,
		caValidity:   p.cfg.CAValidity,
		certValidity: p.cfg.CertValidity,
		propagation:  p.cfg.Propagation,
		nextTrusted:  nextTrusted,
	}
}

// trusted reports whether every webhook of the configuration already trusts caPEM. Without a
// configuration to inject into, the caBundle is someone else's business: trusted.
func (p *Provisioner) trusted(ctx context.Context, caPEM []byte) bool {
	if p.cfg.WebhookConfigName == "" {
		return true
	}
	mwc, err := p.cfg.Client.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, p.cfg.WebhookConfigName, metav1.GetOptions{})
	if err != nil {
		return false
	}
	for _, w := range mwc.Webhooks {
		if !bundleHas(w.ClientConfig.CABundle, caPEM) {
			return false
		}
	}
	return len(mwc.Webhooks) > 0
}

// injectBundle sets the caBundle of every webhook of the configuration that differs, provided
// the Secret is still at secretVersion, the version bundle was taken from.
//
// The write is conditional on both objects: the configuration is read first, then the Secret
// is read again and must still be at secretVersion, then the patch carries the configuration's
// resourceVersion from the first read. A replica holding an older Secret therefore fails: either
// the Secret read already shows the newer version, or the newer version was written after it,
// and the replica that wrote it can only have injected its bundle after this replica read the
// configuration, which makes this patch a Conflict. Either way the pass starts over from the
// Secret. (resourceVersions are compared for equality only, as the API allows.)
func (p *Provisioner) injectBundle(ctx context.Context, bundle []byte, secretVersion string) error {
	api := p.cfg.Client.AdmissionregistrationV1().MutatingWebhookConfigurations()
	mwc, err := api.Get(ctx, p.cfg.WebhookConfigName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		// Applied after the Deployment, or removed on purpose: nothing to inject into yet.
		p.mu.Lock()
		first := !p.mwcMissingLogs
		p.mwcMissingLogs = true
		p.mu.Unlock()
		if first {
			p.cfg.Log.Warn("MutatingWebhookConfiguration not found; will inject the caBundle once it exists", "mutatingWebhookConfiguration", p.cfg.WebhookConfigName)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading MutatingWebhookConfiguration %s: %w", p.cfg.WebhookConfigName, err)
	}
	p.mu.Lock()
	p.mwcMissingLogs = false
	p.mu.Unlock()
	var changed []map[string]any
	var names []string
	for _, w := range mwc.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			changed = append(changed, map[string]any{"name": w.Name, "clientConfig": map[string]any{"caBundle": bundle}})
			names = append(names, w.Name)
		}
	}
	if len(changed) == 0 {
		return nil
	}
	secret, err := p.cfg.Client.CoreV1().Secrets(p.cfg.Namespace).Get(ctx, p.cfg.SecretName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("re-reading Secret %s before injecting the caBundle: %w", p.secretRef(), err)
	}
	if secret.ResourceVersion != secretVersion {
		p.cfg.Log.Info("not injecting the caBundle of an older Secret; starting over", "secret", p.secretRef(),
			"plannedFrom", secretVersion, "current", secret.ResourceVersion)
		return fmt.Errorf("%w: Secret %s planned at resourceVersion %s, now %s", errStaleSecret, p.secretRef(), secretVersion, secret.ResourceVersion)
	}
	// Strategic merge by webhook name touches only the caBundles; the configuration's
	// resourceVersion is the precondition described above.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": mwc.ResourceVersion},
		"webhooks": changed,
	})
	if err != nil {
		return fmt.Errorf("encoding the caBundle patch: %w", err)
	}
	if _, err := api.Patch(ctx, mwc.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("injecting the caBundle into MutatingWebhookConfiguration %s: %w", mwc.Name, err)
	}
	p.cfg.Log.Info("injected the caBundle", "mutatingWebhookConfiguration", mwc.Name, "webhooks", names, "cas", bytes.Count(bundle, []byte("BEGIN CERTIFICATE")))
	return nil
}

// writeCertDir writes the serving pair when it differs from what the cert dir holds.
func (p *Provisioner) writeCertDir(data map[string][]byte) error {
	onDisk, errC := os.ReadFile(filepath.Join(p.cfg.CertDir, KeyCert))
	keyOnDisk, errK := os.ReadFile(filepath.Join(p.cfg.CertDir, KeyKey))
	if errC == nil && errK == nil && bytes.Equal(onDisk, data[KeyCert]) && bytes.Equal(keyOnDisk, data[KeyKey]) {
		return nil
	}
	if err := writePair(p.cfg.CertDir, data[KeyCert], data[KeyKey]); err != nil {
		return fmt.Errorf("writing the serving certificate to %s: %w", p.cfg.CertDir, err)
	}
	p.cfg.Log.Info("serving certificate written", "certDir", p.cfg.CertDir, "notAfter", notAfter(data[KeyCert]))
	return nil
}

// dataLink is the symlink through which tls.crt and tls.key point at the current pair.
const dataLink = "..data"

// writePair replaces tls.crt and tls.key together, the way the kubelet updates a mounted Secret:
// the pair goes into a new directory, and renaming one symlink (..data) switches both names at
// once. Writing the two files one after the other would let the server's certificate watcher
// read a new certificate with the old key (it logs an error and keeps the old pair until the
// next event).
func writePair(dir string, certPEM, keyPEM []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	version, err := os.MkdirTemp(dir, "..pair-")
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{KeyCert: certPEM, KeyKey: keyPEM} {
		if err := os.WriteFile(filepath.Join(version, name), data, 0o600); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	if err := replaceSymlink(filepath.Join(dir, dataLink), filepath.Base(version)); err != nil {
		return err
	}
	// The visible names point through ..data; made once (also replacing plain files that an
	// earlier writer left).
	for _, name := range []string{KeyCert, KeyKey} {
		target := filepath.Join(dataLink, name)
		if cur, err := os.Readlink(filepath.Join(dir, name)); err == nil && cur == target {
			continue
		}
		if err := replaceSymlink(filepath.Join(dir, name), target); err != nil {
			return err
		}
	}
	if old != "" && old != filepath.Base(version) {
		// Removing the old pair also wakes the watcher, which watches the files it resolved.
		if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
			return err
		}
	}
	return nil
}

// replaceSymlink points path at target atomically (rename over the old entry).
func replaceSymlink(path, target string) error {
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (p *Provisioner) logChange(reasons []string, data map[string][]byte) {
	p.cfg.Log.Info("updated the webhook's certificates", "secret", p.secretRef(), "reasons", reasons,
		"caNotAfter", notAfter(data[KeyCACert]), "servingNotAfter", notAfter(data[KeyCert]))
}

func (p *Provisioner) secretRef() string { return p.cfg.Namespace + "/" + p.cfg.SecretName }

func notAfter(certPEM []byte) string {
	c, err := parseCert(certPEM)
	if err != nil {
		return ""
	}
	return c.NotAfter.UTC().Format(time.RFC3339)
}
