package check

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// Served is what the webhook's Service presented in a TLS handshake.
type Served struct {
	// Address says where the handshake went, for messages ("localhost:8443 (ExternalName)",
	// "pod overcommit-system/overcommit-webhook-abc through a port-forward").
	Address string
	// ServerName is the name the apiserver verifies: <service>.<namespace>.svc.
	ServerName string
	// CABundle is the node webhook's caBundle (PEM).
	CABundle []byte
	// Chain is the certificates presented, leaf first; empty when no handshake got that far.
	Chain []*x509.Certificate
	// Err says why the webhook could not be reached or presented nothing.
	Err error
}

// result checks the served leaf against the caBundle the apiserver uses, for the name it
// verifies, at now, the way the apiserver's client does.
func (s *Served) result(now time.Time) Result {
	r := ok(SectionInstall, "webhook-certificate", "")
	if s.Err != nil || len(s.Chain) == 0 {
		err := s.Err
		if err == nil {
			err = errors.New("no certificate presented")
		}
		r.Message = fmt.Sprintf("cannot reach the webhook at %s: %v", s.Address, err)
		return r.with(Fail, "is the webhook running? kubectl -n overcommit-system get pods -l app.kubernetes.io/name=overcommit-webhook; "+
			"while the apiserver cannot call it, opted-in nodes are not rewritten (in webhook mode a kubelet restart then stores the raw allocatable)")
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.CABundle) {
		r.Message = "the webhook configuration's caBundle holds no PEM certificate, so the apiserver cannot verify the webhook"
		return r.with(Fail, "cert-manager: check its cainjector and the Certificate overcommit-webhook; self-signed: restart the webhook, which publishes its caBundle")
	}
	inter := x509.NewCertPool()
	for _, c := range s.Chain[1:] {
		inter.AddCert(c)
	}
	leaf := s.Chain[0]
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: s.ServerName, Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		r.Message = fmt.Sprintf("the certificate served at %s does not verify against the caBundle for %s: %v", s.Address, s.ServerName, err)
		return r.with(Fail, "the apiserver refuses to call the webhook until the caBundle and the served certificate agree: "+
			"cert-manager: kubectl -n overcommit-system describe certificate overcommit-webhook; self-signed: restart the webhook so that it re-publishes its caBundle")
	}
	left := leaf.NotAfter.Sub(now)
	r.Message = fmt.Sprintf("the certificate served at %s verifies against the caBundle for %s; it expires %s (in %s)",
		s.Address, s.ServerName, leaf.NotAfter.UTC().Format(time.RFC3339), days(left))
	switch {
	case left < certExpiringSoon:
		return r.with(Fail, "renew it now: cert-manager: kubectl -n overcommit-system describe certificate overcommit-webhook; self-signed: the webhook's log and the Secret overcommit-webhook-tls")
	case left < certRenewalFailing:
		return r.with(Warn, "both certificate sources renew with about four months left, so renewal has been failing: see the webhook's log or the cert-manager Certificate")
	}
	return r
}

func days(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Minute).String()
	}
	return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
}
