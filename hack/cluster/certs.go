package cluster

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/overcommit-dev/overcommit/webhook/certs"
)

// certValidity is what the install's certificate sources give a serving certificate before they
// renew it (about four months), so that `kubectl overcommit check` judges the local cluster's
// webhook certificate as it judges an installed one; the CAs are throwaway and bound to loopback.
const certValidity = 120 * 24 * time.Hour

// CA is a certificate authority the runner creates for one cluster: the webhook's own CA code,
// with the certificate also written to disk for the components' flags.
type CA struct {
	*certs.CA
	// CertFile is the PEM certificate on disk.
	CertFile string
}

// KeyPair is a certificate and key written as PEM files.
type KeyPair struct {
	CertFile string
	KeyFile  string
}

// newCA creates a self-signed CA and writes <dir>/<name>.crt and .key (the controller-manager
// signs with the cluster CA's key).
func newCA(dir, name string) (*CA, error) {
	ca, err := certs.NewCA(name, certValidity)
	if err != nil {
		return nil, fmt.Errorf("creating the %s CA: %w", name, err)
	}
	c := &CA{CA: ca, CertFile: filepath.Join(dir, name+".crt")}
	if err := writeFile(c.CertFile, ca.CertPEM); err != nil {
		return nil, err
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		return nil, fmt.Errorf("encoding the %s CA key: %w", name, err)
	}
	if err := writeFile(filepath.Join(dir, name+".key"), keyPEM); err != nil {
		return nil, err
	}
	return c, nil
}

// servingFiles issues a serving certificate for hosts (DNS names and IP addresses) and writes it
// to certFile and keyFile.
func (ca *CA) servingFiles(commonName string, hosts []string, certFile, keyFile string) (KeyPair, error) {
	kp, err := ca.IssueServing(commonName, hosts, certValidity)
	if err != nil {
		return KeyPair{}, fmt.Errorf("issuing the serving certificate of %s: %w", commonName, err)
	}
	return writePair(kp, certFile, keyFile)
}

// clientFiles issues a client certificate for user in groups and writes it to certFile and
// keyFile.
func (ca *CA) clientFiles(user string, groups []string, certFile, keyFile string) (KeyPair, error) {
	kp, err := ca.IssueClient(user, groups, certValidity)
	if err != nil {
		return KeyPair{}, fmt.Errorf("issuing the client certificate of %s: %w", user, err)
	}
	return writePair(kp, certFile, keyFile)
}

func writePair(kp *certs.KeyPair, certFile, keyFile string) (KeyPair, error) {
	if err := writeFile(certFile, kp.CertPEM); err != nil {
		return KeyPair{}, err
	}
	if err := writeFile(keyFile, kp.KeyPEM); err != nil {
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
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal service account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("marshal service account public key: %w", err)
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	return writeFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
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
