// Package certs issues the CA and serving certificates the webhook needs when nobody else
// provides them: the local control plane and tests use it, and self-managed installs rotate with it.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority held in memory.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is the CA certificate, for a caBundle.
	CertPEM []byte
}

// Backdate is how long before "now" every certificate's validity starts, as client-go's
// certificate helpers do: a peer whose clock runs up to an hour behind the issuer's still accepts
// the certificate (and a replica whose clock is behind still reads a CA from the Secret as valid).
const Backdate = time.Hour

// KeyPair is an issued certificate and its key, PEM encoded.
type KeyPair struct {
	CertPEM []byte
	KeyPEM  []byte
}

// NewCA creates a self-signed CA valid from now for the given duration.
func NewCA(commonName string, validFor time.Duration) (*CA, error) {
	return NewCAAt(commonName, time.Now(), validFor)
}

// NewCAAt is NewCA with an explicit "now", so rotation logic can be tested years ahead.
func NewCAAt(commonName string, now time.Time, validFor time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-Backdate),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// IssueServing issues a serving certificate for the given DNS names and IP addresses.
func (ca *CA) IssueServing(commonName string, hosts []string, validFor time.Duration) (*KeyPair, error) {
	return ca.issue(commonName, nil, hosts, time.Now(), validFor, x509.ExtKeyUsageServerAuth)
}

// IssueServingAt is IssueServing with an explicit "now".
func (ca *CA) IssueServingAt(commonName string, hosts []string, now time.Time, validFor time.Duration) (*KeyPair, error) {
	return ca.issue(commonName, nil, hosts, now, validFor, x509.ExtKeyUsageServerAuth)
}

// IssueClient issues a client certificate (CommonName is the user, orgs the groups).
func (ca *CA) IssueClient(user string, groups []string, validFor time.Duration) (*KeyPair, error) {
	return ca.issue(user, groups, nil, time.Now(), validFor, x509.ExtKeyUsageClientAuth)
}

func (ca *CA) issue(cn string, orgs, hosts []string, now time.Time, validFor time.Duration, usage x509.ExtKeyUsage) (*KeyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     now.Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, fmt.Errorf("signing certificate for %s: %w", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// KeyPEM encodes the CA's private key.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// WriteDir writes tls.crt and tls.key into dir, each atomically (write then rename), so a
// watcher never reads half a file.
func (kp *KeyPair) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, data := range map[string][]byte{"tls.key": kp.KeyPEM, "tls.crt": kp.CertPEM} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("replacing %s: %w", name, err)
		}
	}
	return nil
}

// Verify checks that certPEM chains to caPEM and names host.
func Verify(caPEM, certPEM []byte, host string) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no CA certificate in bundle")
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return fmt.Errorf("no certificate in PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return err
	}
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: host})
	return err
}

// SameCert reports whether two PEM blocks hold the same certificate.
func SameCert(a, b []byte) bool { return bytes.Equal(bytes.TrimSpace(a), bytes.TrimSpace(b)) }

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err))
	}
	return n
}
