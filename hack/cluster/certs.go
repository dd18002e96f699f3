package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

// certValidity is generous so a cluster kept with -keep does not expire under a user, and short
// enough that a leaked key of a throwaway CA is worthless soon.
const certValidity = 7 * 24 * time.Hour

// CA is a certificate authority the runner creates for one cluster.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	// CertFile is the PEM certificate on disk.
	CertFile string
}

// KeyPair is a certificate and key written as PEM files.
type KeyPair struct {
	CertFile string
	KeyFile  string
}

// certSpec describes one leaf certificate.
type certSpec struct {
	commonName   string
	organization []string
	dnsNames     []string
	ips          []net.IP
	server       bool
	client       bool
}

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serialNumber() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// newCA creates a self-signed CA and writes <dir>/<name>.crt (and .key).
func newCA(dir, name string) (*CA, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("generate %s CA key: %w", name, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, fmt.Errorf("generate %s CA serial: %w", name, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create %s CA certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse %s CA certificate: %w", name, err)
	}
	ca := &CA{Cert: cert, Key: key, CertPEM: pemCert(der), CertFile: filepath.Join(dir, name+".crt")}
	if err := writeFile(ca.CertFile, ca.CertPEM); err != nil {
		return nil, err
	}
	keyPEM, err := pemKey(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, name+".key"), keyPEM); err != nil {
		return nil, err
	}
	return ca, nil
}

// issue signs a leaf certificate and returns its PEM cert and key.
func (ca *CA) issue(s certSpec) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, fmt.Errorf("generate key for %s: %w", s.commonName, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial for %s: %w", s.commonName, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: s.commonName, Organization: s.organization},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		DNSNames:     s.dnsNames,
		IPAddresses:  s.ips,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate for %s: %w", s.commonName, err)
	}
	keyPEM, err = pemKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), keyPEM, nil
}

// issueFiles signs a leaf certificate and writes it to certFile and keyFile.
func (ca *CA) issueFiles(s certSpec, certFile, keyFile string) (KeyPair, error) {
	certPEM, keyPEM, err := ca.issue(s)
	if err != nil {
		return KeyPair{}, err
	}
	if err := writeFile(certFile, certPEM); err != nil {
		return KeyPair{}, err
	}
	if err := writeFile(keyFile, keyPEM); err != nil {
		return KeyPair{}, err
	}
	return KeyPair{CertFile: certFile, KeyFile: keyFile}, nil
}

// writeServiceAccountKey writes the RSA key pair the apiserver signs and verifies service
// account tokens with (RSA, because every token consumer supports RS256).
func writeServiceAccountKey(keyFile, pubFile string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generate service account key: %w", err)
	}
	keyPEM, err := pemKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("marshal service account public key: %w", err)
	}
	if err := writeFile(keyFile, keyPEM); err != nil {
		return err
	}
	return writeFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func pemKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
