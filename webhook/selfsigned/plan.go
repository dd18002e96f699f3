package selfsigned

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/overcommit-dev/overcommit/webhook/certs"
)

// Keys of the Secret's data.
const (
	// KeyCACert and KeyCAKey hold the active CA, which signs the serving certificate.
	KeyCACert = "ca.crt"
	KeyCAKey  = "ca.key"
	// KeyNextCACert and KeyNextCAKey hold a staged CA: already in the caBundle, not signing yet.
	KeyNextCACert = "next-ca.crt"
	KeyNextCAKey  = "next-ca.key"
	// KeyPreviousCACert is a retired CA, kept in the caBundle until no replica serves a
	// certificate it signed.
	KeyPreviousCACert = "previous-ca.crt"
	// KeyCert and KeyKey are the serving certificate and key, as in a kubernetes.io/tls Secret.
	KeyCert = "tls.crt"
	KeyKey  = "tls.key"
)

// Reasons a plan changes the Secret; logged, and asserted by tests.
const (
	ReasonBootstrap     = "bootstrap"     // no usable CA: new CA and serving certificate
	ReasonStageCA       = "stage-ca"      // the CA is past its renewal point: a new one joins the caBundle
	ReasonDropBadNextCA = "drop-bad-next" // the staged CA is unusable
	ReasonPromoteCA     = "promote-ca"    // the staged CA has been trusted long enough: it signs from now on
	ReasonIssueServing  = "issue-serving" // the serving certificate is missing, invalid or due
	ReasonDropPrevious  = "drop-previous" // the retired CA is no longer needed in the caBundle
)

const (
	caCommonName      = "overcommit-webhook-ca"
	servingCommonName = "overcommit-webhook"
	// webhook/certs starts each validity this long before "now", against clock skew: a
	// certificate was made at NotBefore+backdate.
	backdate = certs.Backdate
)

// errNotYetValid marks a CA that is well formed but whose validity starts after this replica's
// "now": another replica, whose clock runs ahead, made it.
var errNotYetValid = errors.New("not valid yet")

// policy is what plan needs besides the Secret's data.
type policy struct {
	now          time.Time
	hosts        []string // DNS names of the serving certificate; hosts[len-1] is what the apiserver verifies
	caValidity   time.Duration
	certValidity time.Duration
	// propagation is how long a change must have been visible before the next step relies on
	// it: a staged CA before it signs, a new serving certificate before the CA that signed the
	// old one leaves the bundle.
	propagation time.Duration
	// nextTrusted says the staged CA is in the caBundle of every webhook of the live
	// configuration (always true when there is no configuration to inject).
	nextTrusted bool
}

// plan decides the next content of the Secret from its current content. It returns the data to
// store and why; no reasons means the Secret is fine as it is. Rotation keeps every replica
// trusted throughout: a new CA is added to the caBundle first and signs only once the bundle
// carries it; the old CA leaves the bundle only after the serving certificate it signed has been
// replaced long enough for every replica to have reloaded.
func plan(data map[string][]byte, p policy) (map[string][]byte, []string, error) {
	out := maps.Clone(data)
	if out == nil {
		out = map[string][]byte{}
	}
	active, err := parseCA(out[KeyCACert], out[KeyCAKey], p.now)
	// A CA that is not valid yet by this replica's clock is still the CA every replica serves
	// from and the apiserver trusts (its clock is likely the issuer's, not ours): replacing it at
	// once would drop it from the caBundle while the other replicas still serve certificates it
	// signed. It is rotated out the staged way instead.
	early := errors.Is(err, errNotYetValid)
	if early {
		if _, pairErr := tls.X509KeyPair(out[KeyCert], out[KeyKey]); pairErr != nil {
			// No replica serves anything from this CA: nothing to keep trusted.
			early, err = false, fmt.Errorf("%w, and no serving pair: %w", err, pairErr)
		}
	}
	if err != nil && !early {
		// Nothing to rotate from: start over. Replicas serving a certificate from an unusable
		// CA are not trusted anyway.
		if err := bootstrap(out, p); err != nil {
			return nil, nil, err
		}
		return out, []string{ReasonBootstrap}, nil
	}

	active, early, reasons, err := rotateCA(out, active, early, p)
	if err != nil {
		return nil, nil, err
	}

	// After a promotion the old serving certificate no longer chains to the active CA. While the
	// active CA is not valid yet here, this clock cannot judge the serving certificate it
	// signed (nor issue a usable one from it): it stays until the staged CA is promoted.
	if !early && servingProblems(out, active, p) != nil {
		if err := issueServing(out, active, p); err != nil {
			return nil, nil, err
		}
		reasons = append(reasons, ReasonIssueServing)
	}

	if prev := out[KeyPreviousCACert]; len(prev) > 0 && previousDone(prev, out[KeyCert], p) {
		delete(out, KeyPreviousCACert)
		reasons = append(reasons, ReasonDropPrevious)
	}
	if len(reasons) == 0 {
		return data, nil, nil
	}
	return out, reasons, nil
}

// bootstrap replaces whatever out holds with a new CA and a serving certificate from it.
func bootstrap(out map[string][]byte, p policy) error {
	ca, err := certs.NewCAAt(caCommonName, p.now, p.caValidity)
	if err != nil {
		return err
	}
	for _, k := range []string{KeyNextCACert, KeyNextCAKey, KeyPreviousCACert} {
		delete(out, k)
	}
	if err := putCA(out, KeyCACert, KeyCAKey, ca); err != nil {
		return err
	}
	return issueServing(out, ca, p)
}

// rotateCA drops an unusable staged CA, stages a new one when the active CA is due (or not
// valid yet here), and promotes the staged one once the apiserver trusts it and the
// propagation time has passed. It returns the active CA and whether it is not valid yet here,
// as they are after that, and what it did.
func rotateCA(out map[string][]byte, active *certs.CA, early bool, p policy) (*certs.CA, bool, []string, error) {
	var reasons []string
	next, nextErr := parseCA(out[KeyNextCACert], out[KeyNextCAKey], p.now)
	// A staged CA that is not valid yet here is kept (it is in the bundle, nothing signs with
	// it) and promoted once it is.
	nextEarly := errors.Is(nextErr, errNotYetValid)
	if nextErr != nil && !nextEarly && (len(out[KeyNextCACert]) > 0 || len(out[KeyNextCAKey]) > 0) {
		delete(out, KeyNextCACert)
		delete(out, KeyNextCAKey)
		reasons = append(reasons, ReasonDropBadNextCA)
	}
	if next == nil && (early || due(active.Cert, p.now)) {
		ca, err := certs.NewCAAt(caCommonName, p.now, p.caValidity)
		if err != nil {
			return nil, false, nil, err
		}
		if err := putCA(out, KeyNextCACert, KeyNextCAKey, ca); err != nil {
			return nil, false, nil, err
		}
		// Not trusted yet: the caBundle gets it after this Secret is stored.
		reasons = append(reasons, ReasonStageCA)
	} else if next != nil && !nextEarly && p.nextTrusted && !p.now.Before(next.Cert.NotBefore.Add(backdate+p.propagation)) {
		out[KeyPreviousCACert] = out[KeyCACert]
		out[KeyCACert], out[KeyCAKey] = out[KeyNextCACert], out[KeyNextCAKey]
		delete(out, KeyNextCACert)
		delete(out, KeyNextCAKey)
		active, early = next, false
		reasons = append(reasons, ReasonPromoteCA)
	}
	return active, early, reasons, nil
}

// Bundle is the caBundle for the Secret's data: the active CA, then the staged and the retired
// one when present.
func Bundle(data map[string][]byte) []byte {
	var b bytes.Buffer
	for _, k := range []string{KeyCACert, KeyNextCACert, KeyPreviousCACert} {
		if v := bytes.TrimSpace(data[k]); len(v) > 0 {
			b.Write(v)
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// bundleHas reports whether the PEM bundle contains the certificate certPEM.
func bundleHas(bundle, certPEM []byte) bool {
	want, err := parseCert(certPEM)
	if err != nil {
		return false
	}
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" && bytes.Equal(block.Bytes, want.Raw) {
			return true
		}
	}
}

// servingProblems returns nil when data's serving pair is usable as it is: it parses, chains to
// active for the verified host, and is before its renewal point.
func servingProblems(data map[string][]byte, active *certs.CA, p policy) error {
	pair, err := tls.X509KeyPair(data[KeyCert], data[KeyKey])
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(active.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: p.hosts[len(p.hosts)-1], CurrentTime: p.now}); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	for _, h := range p.hosts {
		if leaf.VerifyHostname(h) != nil {
			return fmt.Errorf("serving certificate does not name %s", h)
		}
	}
	if due(leaf, p.now) {
		return errors.New("serving certificate is due for renewal")
	}
	return nil
}

// previousDone reports whether the retired CA can leave the bundle: it has expired, or the
// serving certificate (signed by another CA) has been out long enough for every replica to load
// it.
func previousDone(prevPEM, servingPEM []byte, p policy) bool {
	prev, err := parseCert(prevPEM)
	if err != nil || !p.now.Before(prev.NotAfter) {
		return true
	}
	leaf, err := parseCert(servingPEM)
	if err != nil {
		return false
	}
	if leaf.CheckSignatureFrom(prev) == nil {
		return false // still signed by it
	}
	return !p.now.Before(leaf.NotBefore.Add(backdate + p.propagation))
}

// due reports whether c is past its renewal point, 2/3 of its lifetime: early enough that a
// replica failing to renew for weeks still never serves an expired certificate. The lifetime
// counts from when c was made (NotBefore+backdate), not from its backdated start, so short
// validities (tests, the e2e rotation) renew at 2/3 of what was asked for.
func due(c *x509.Certificate, now time.Time) bool {
	made := c.NotBefore.Add(backdate)
	life := c.NotAfter.Sub(made)
	if life <= 0 {
		return true
	}
	return !now.Before(made.Add(life / 3 * 2))
}

func issueServing(data map[string][]byte, ca *certs.CA, p policy) error {
	validity := p.certValidity
	// Never outlive the CA: a certificate past its CA's expiry does not verify anyway.
	if left := ca.Cert.NotAfter.Sub(p.now); left < validity {
		validity = left
	}
	kp, err := ca.IssueServingAt(servingCommonName, p.hosts, p.now, validity)
	if err != nil {
		return fmt.Errorf("issuing the serving certificate: %w", err)
	}
	data[KeyCert], data[KeyKey] = kp.CertPEM, kp.KeyPEM
	return nil
}

func putCA(data map[string][]byte, certKey, keyKey string, ca *certs.CA) error {
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return fmt.Errorf("encoding the CA key: %w", err)
	}
	data[certKey], data[keyKey] = ca.CertPEM, keyPEM
	return nil
}

// parseCA reads a CA from PEM and checks that it can sign now: a CA certificate, not expired,
// with the matching key. A CA that is fine but whose validity starts after now is returned with
// an error wrapping errNotYetValid.
func parseCA(certPEM, keyPEM []byte, now time.Time) (*certs.CA, error) {
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return nil, errors.New("no CA")
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("CA certificate is not a CA")
	}
	if !now.Before(cert.NotAfter) {
		return nil, fmt.Errorf("CA certificate expired at %s (now %s)", cert.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	signer, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("CA key cannot sign")
	}
	ca := &certs.CA{Cert: cert, Key: signer, CertPEM: certPEM}
	if now.Before(cert.NotBefore) {
		return ca, fmt.Errorf("CA certificate %w at %s (valid from %s)", errNotYetValid,
			now.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339))
	}
	return ca, nil
}

func parseCert(certPEM []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no certificate in PEM")
	}
	return x509.ParseCertificate(block.Bytes)
}
