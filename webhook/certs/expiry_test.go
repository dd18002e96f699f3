package certs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestExpiryCollector(t *testing.T) {
	now := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	ca, err := NewCAAt("ca", now, 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ca.IssueServingAt("svc", []string{"svc.ns.svc"}, now, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Longer-lived than the CA that signed it: the CA expires first.
	outlives, err := ca.IssueServingAt("svc", []string{"svc.ns.svc"}, now, 72*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	day, twoDays := float64(now.Add(24*time.Hour).Unix()), float64(now.Add(48*time.Hour).Unix())
	join := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		file []byte // nil: no file
		want []float64
	}{
		{"serving certificate", serving.CertPEM, []float64{day}},
		{"chain, leaf expires first", join(serving.CertPEM, ca.CertPEM), []float64{day}},
		{"chain, CA expires first", join(outlives.CertPEM, ca.CertPEM), []float64{twoDays}},
		{"a key and a certificate", join(serving.KeyPEM, serving.CertPEM), []float64{day}},
		{"no certificate in the file", serving.KeyPEM, nil},
		{"not PEM", []byte("half a certificate"), nil},
		{"certificate block that does not parse", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), nil},
		{"no file", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "tls.crt")
			if tc.file != nil {
				if err := os.WriteFile(file, tc.file, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(NewExpiryCollector(file))
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatalf("gathering: %v", err)
			}
			var got []float64
			for _, mf := range mfs {
				if mf.GetName() != ExpiryMetric {
					t.Errorf("unexpected metric %s", mf.GetName())
				}
				for _, m := range mf.GetMetric() {
					got = append(got, m.GetGauge().GetValue())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("samples (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExpiryCollectorRereads: the gauge follows a replaced file at the next scrape, as the
// webhook's certificate watcher does.
func TestExpiryCollectorRereads(t *testing.T) {
	now := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	ca, err := NewCAAt("ca", now, 10*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := NewExpiryCollector(filepath.Join(dir, "tls.crt"))
	var got []float64
	for _, validity := range []time.Duration{time.Hour, 5 * 24 * time.Hour} {
		kp, err := ca.IssueServingAt("svc", []string{"svc.ns.svc"}, now, validity)
		if err != nil {
			t.Fatal(err)
		}
		if err := kp.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		got = append(got, testutil.ToFloat64(c))
	}
	want := []float64{float64(now.Add(time.Hour).Unix()), float64(now.Add(5 * 24 * time.Hour).Unix())}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values after each replacement (-want +got):\n%s", diff)
	}
}
