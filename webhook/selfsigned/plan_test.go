package selfsigned

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/overcommit-dev/overcommit/webhook/certs"
)

const (
	year     = 365 * 24 * time.Hour
	verified = "overcommit-webhook.overcommit-system.svc"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testPolicy(now time.Time) policy {
	return policy{
		now:          now,
		hosts:        []string{"overcommit-webhook", "overcommit-webhook.overcommit-system", verified},
		caValidity:   10 * year,
		certValidity: year,
		propagation:  10 * time.Minute,
		nextTrusted:  true,
	}
}

func mustPlan(t *testing.T, data map[string][]byte, p policy) (map[string][]byte, []string) {
	t.Helper()
	out, reasons, err := plan(data, p)
	if err != nil {
		t.Fatalf("plan at %s: %v", p.now, err)
	}
	return out, reasons
}

// verifyAt checks that the serving certificate in data chains to bundle for the verified name at
// now, as the apiserver would.
func verifyAt(bundle, servingPEM []byte, now time.Time) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return fmt.Errorf("empty bundle")
	}
	leaf, err := parseCert(servingPEM)
	if err != nil {
		return err
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: verified, CurrentTime: now})
	return err
}

func TestPlanBootstrap(t *testing.T) {
	for name, data := range map[string]map[string][]byte{
		"nil":        nil,
		"empty":      {},
		"garbage CA": {KeyCACert: []byte("nope"), KeyCAKey: []byte("nope"), KeyCert: []byte("x")},
		"CA no key":  {KeyCACert: mustCA(t, t0, 10*year).CertPEM},
		"expired CA": caData(t, mustCA(t, t0.Add(-11*year), 10*year)),
		"not a CA":   notACA(t),
		// Not valid yet by this clock, and nothing is served from it: no trust to keep.
		"future CA without serving pair": caData(t, mustCA(t, t0.Add(3*time.Hour), 10*year)),
		"foreign key":                    {KeyCACert: mustCA(t, t0, 10*year).CertPEM, KeyCAKey: must(mustCA(t, t0, 10*year).KeyPEM())},
	} {
		t.Run(name, func(t *testing.T) {
			out, reasons := mustPlan(t, data, testPolicy(t0))
			if diff := cmp.Diff([]string{ReasonBootstrap}, reasons); diff != "" {
				t.Fatalf("reasons (-want +got):\n%s", diff)
			}
			if err := verifyAt(Bundle(out), out[KeyCert], t0); err != nil {
				t.Errorf("serving certificate does not verify against the bundle: %v", err)
			}
			if bytes.Count(Bundle(out), []byte("BEGIN CERTIFICATE")) != 1 {
				t.Errorf("bundle holds %d CAs, want 1", bytes.Count(Bundle(out), []byte("BEGIN CERTIFICATE")))
			}
			leaf, _ := parseCert(out[KeyCert])
			if got := leaf.NotAfter.Sub(t0); got != year {
				t.Errorf("serving certificate valid for %s, want %s", got, year)
			}
			for _, h := range testPolicy(t0).hosts {
				if err := leaf.VerifyHostname(h); err != nil {
					t.Error(err)
				}
			}
			// Stable: the same state a day later needs nothing.
			again, reasons := mustPlan(t, out, testPolicy(t0.Add(24*time.Hour)))
			if len(reasons) != 0 || !maps.EqualFunc(again, out, bytes.Equal) {
				t.Errorf("second plan changed the Secret: %v", reasons)
			}
		})
	}
}

func TestPlanServingRenewal(t *testing.T) {
	data, _ := mustPlan(t, nil, testPolicy(t0))
	// Before 2/3 of the year: nothing.
	if _, reasons := mustPlan(t, data, testPolicy(t0.Add(year*2/3-time.Hour))); len(reasons) != 0 {
		t.Fatalf("renewed early: %v", reasons)
	}
	now := t0.Add(year*2/3 + time.Hour)
	out, reasons := mustPlan(t, data, testPolicy(now))
	if diff := cmp.Diff([]string{ReasonIssueServing}, reasons); diff != "" {
		t.Fatalf("reasons (-want +got):\n%s", diff)
	}
	if bytes.Equal(out[KeyCert], data[KeyCert]) {
		t.Fatal("serving certificate unchanged")
	}
	if !bytes.Equal(Bundle(out), Bundle(data)) {
		t.Error("a serving renewal changed the caBundle")
	}
	if err := verifyAt(Bundle(data), out[KeyCert], now); err != nil {
		t.Errorf("new serving certificate not trusted by the bundle already in place: %v", err)
	}
}

func TestPlanServingProblems(t *testing.T) {
	data, _ := mustPlan(t, nil, testPolicy(t0))
	other, _ := mustPlan(t, nil, testPolicy(t0))
	wrongHost := maps.Clone(data)
	kp, err := must(parseCA(data[KeyCACert], data[KeyCAKey], t0)).IssueServingAt("x", []string{"elsewhere.svc"}, t0, year)
	if err != nil {
		t.Fatal(err)
	}
	wrongHost[KeyCert], wrongHost[KeyKey] = kp.CertPEM, kp.KeyPEM
	for name, mutate := range map[string]func(map[string][]byte){
		"missing":         func(d map[string][]byte) { delete(d, KeyCert) },
		"key mismatch":    func(d map[string][]byte) { d[KeyKey] = other[KeyKey] },
		"other CA":        func(d map[string][]byte) { d[KeyCert], d[KeyKey] = other[KeyCert], other[KeyKey] },
		"wrong host":      func(d map[string][]byte) { d[KeyCert], d[KeyKey] = wrongHost[KeyCert], wrongHost[KeyKey] },
		"not PEM":         func(d map[string][]byte) { d[KeyCert] = []byte("garbage") },
		"bad next CA":     func(d map[string][]byte) { d[KeyNextCACert] = []byte("garbage") },
		"next CA stale":   func(d map[string][]byte) { maps.Copy(d, nextData(t, mustCA(t, t0.Add(-11*year), 10*year))) },
		"previous broken": func(d map[string][]byte) { d[KeyPreviousCACert] = []byte("garbage") },
	} {
		t.Run(name, func(t *testing.T) {
			in := maps.Clone(data)
			mutate(in)
			out, reasons := mustPlan(t, in, testPolicy(t0.Add(time.Hour)))
			if len(reasons) == 0 {
				t.Fatal("no change")
			}
			if !bytes.Equal(out[KeyCACert], data[KeyCACert]) {
				t.Error("the CA changed; only the broken part should")
			}
			if err := verifyAt(Bundle(out), out[KeyCert], t0.Add(time.Hour)); err != nil {
				t.Errorf("result does not verify: %v", err)
			}
			if _, again := mustPlan(t, out, testPolicy(t0.Add(2*time.Hour))); len(again) != 0 {
				t.Errorf("not stable after repair: %v", again)
			}
		})
	}
}

// TestPlanCARotation walks one CA rotation step by step: stage, wait until the bundle carries the
// new CA, promote, wait until every replica has the new serving certificate, drop the old CA.
func TestPlanCARotation(t *testing.T) {
	data, _ := mustPlan(t, nil, testPolicy(t0))
	// 2/3 of the CA's ten years, counted from when it was made.
	renewAt := t0.Add(10 * year / 3 * 2)

	// Just before the renewal point (with a fresh serving certificate): nothing.
	p := testPolicy(renewAt.Add(-time.Hour))
	data, _ = mustPlan(t, data, p)
	if _, reasons := mustPlan(t, data, p); len(reasons) != 0 {
		t.Fatalf("early change: %v", reasons)
	}

	now := renewAt.Add(time.Second)
	staged, reasons := mustPlan(t, data, testPolicy(now))
	if diff := cmp.Diff([]string{ReasonStageCA}, reasons); diff != "" {
		t.Fatalf("reasons (-want +got):\n%s", diff)
	}
	if !bytes.Equal(staged[KeyCert], data[KeyCert]) || !bytes.Equal(staged[KeyCACert], data[KeyCACert]) {
		t.Fatal("staging changed the active CA or the serving certificate")
	}
	if !bundleHas(Bundle(staged), staged[KeyNextCACert]) || !bundleHas(Bundle(staged), data[KeyCACert]) {
		t.Fatal("the bundle must hold the old and the staged CA")
	}

	// Not promoted while the bundle in the apiserver lacks the staged CA, however long.
	untrusted := testPolicy(now.Add(48 * time.Hour))
	untrusted.nextTrusted = false
	if _, reasons := mustPlan(t, staged, untrusted); len(reasons) != 0 {
		t.Fatalf("changed while the staged CA is not trusted: %v", reasons)
	}
	// Not promoted before the propagation delay either.
	if _, reasons := mustPlan(t, staged, testPolicy(now.Add(5*time.Minute))); len(reasons) != 0 {
		t.Fatalf("promoted too early: %v", reasons)
	}

	now = now.Add(10 * time.Minute)
	promoted, reasons := mustPlan(t, staged, testPolicy(now))
	if diff := cmp.Diff([]string{ReasonPromoteCA, ReasonIssueServing}, reasons); diff != "" {
		t.Fatalf("reasons (-want +got):\n%s", diff)
	}
	if !bytes.Equal(promoted[KeyCACert], staged[KeyNextCACert]) || !bytes.Equal(promoted[KeyPreviousCACert], data[KeyCACert]) {
		t.Fatal("promotion did not move next to active and active to previous")
	}
	// Replicas still serving the old certificate, and those with the new one, are all trusted
	// by the bundle before and after.
	for _, bundle := range [][]byte{Bundle(staged), Bundle(promoted)} {
		for _, serving := range [][]byte{staged[KeyCert], promoted[KeyCert]} {
			if err := verifyAt(bundle, serving, now); err != nil {
				t.Errorf("not trusted during promotion: %v", err)
			}
		}
	}

	if _, reasons := mustPlan(t, promoted, testPolicy(now.Add(5*time.Minute))); len(reasons) != 0 {
		t.Fatalf("dropped the previous CA too early: %v", reasons)
	}
	now = now.Add(11 * time.Minute)
	done, reasons := mustPlan(t, promoted, testPolicy(now))
	if diff := cmp.Diff([]string{ReasonDropPrevious}, reasons); diff != "" {
		t.Fatalf("reasons (-want +got):\n%s", diff)
	}
	if bytes.Count(Bundle(done), []byte("BEGIN CERTIFICATE")) != 1 || !bytes.Equal(Bundle(done)[:len(done[KeyCACert])], done[KeyCACert]) {
		t.Errorf("bundle after rotation: %s", Bundle(done))
	}
}

// TestPlanClockSkew: replicas whose clocks disagree. A CA made by a replica whose clock runs
// ahead is "not valid yet" for one that runs behind; that replica must not start over (a new CA
// alone in the caBundle distrusts every replica still serving the old certificate) but rotate the
// staged way, and skew within the backdate (an hour, as client-go) changes nothing at all.
func TestPlanClockSkew(t *testing.T) {
	data, _ := mustPlan(t, nil, testPolicy(t0)) // made by a replica whose clock reads t0
	for _, tc := range []struct {
		name    string
		behind  time.Duration
		reasons []string
	}{
		{"2 minutes behind", 2 * time.Minute, nil},
		{"59 minutes behind", 59 * time.Minute, nil},
		{"2 hours behind", 2 * time.Hour, []string{ReasonStageCA}},
		{"3 days behind", 72 * time.Hour, []string{ReasonStageCA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0.Add(-tc.behind)
			out, reasons := mustPlan(t, data, testPolicy(now))
			if diff := cmp.Diff(tc.reasons, reasons); diff != "" {
				t.Fatalf("reasons (-want +got):\n%s", diff)
			}
			if !bytes.Equal(out[KeyCACert], data[KeyCACert]) || !bytes.Equal(out[KeyCert], data[KeyCert]) {
				t.Fatal("the active CA or the serving certificate changed: replicas serving it lose the apiserver's trust")
			}
			// The apiserver (clock t0) trusts what every replica may serve, before and after.
			for _, bundle := range [][]byte{Bundle(data), Bundle(out)} {
				if err := verifyAt(bundle, data[KeyCert], t0); err != nil {
					t.Errorf("not trusted: %v", err)
				}
			}
			if len(tc.reasons) == 0 {
				return
			}
			// The rest of the rotation, by the replica that runs behind: the staged CA is
			// promoted once trusted and propagated, and signs a certificate that the bundle of
			// every step trusts.
			later := now.Add(testPolicy(now).propagation)
			promoted, reasons := mustPlan(t, out, testPolicy(later))
			if diff := cmp.Diff([]string{ReasonPromoteCA, ReasonIssueServing}, reasons); diff != "" {
				t.Fatalf("promotion reasons (-want +got):\n%s", diff)
			}
			for _, bundle := range [][]byte{Bundle(out), Bundle(promoted)} {
				for _, serving := range [][]byte{data[KeyCert], promoted[KeyCert]} {
					if err := verifyAt(bundle, serving, t0.Add(testPolicy(now).propagation)); err != nil {
						t.Errorf("not trusted during promotion: %v", err)
					}
				}
			}
			// Settled: the other replica (clock ahead) keeps the new CA and serving certificate;
			// by its clock the retired CA has been out long enough to leave the bundle.
			if _, again := mustPlan(t, promoted, testPolicy(t0.Add(time.Hour))); len(again) > 0 && !slices.Equal(again, []string{ReasonDropPrevious}) {
				t.Errorf("the replica whose clock is ahead changes it again: %v", again)
			}
		})
	}
}

// TestPlanTimeline runs 25 years of weekly reconciles, injecting the bundle after each
// like the provisioner does, and checks at every step that the apiserver (holding the bundle of
// the step before or after) trusts both the certificate replicas may still serve and the new one.
func TestPlanTimeline(t *testing.T) {
	data, _ := mustPlan(t, nil, testPolicy(t0))
	injected := Bundle(data)
	cas := map[string]bool{string(data[KeyCACert]): true}
	servings := map[string]bool{string(data[KeyCert]): true}
	for now := t0; now.Before(t0.Add(25 * year)); now = now.Add(7 * 24 * time.Hour) {
		p := testPolicy(now)
		p.nextTrusted = len(data[KeyNextCACert]) == 0 || bundleHas(injected, data[KeyNextCACert])
		out, reasons := mustPlan(t, data, p)
		if len(reasons) > 0 {
			for _, r := range reasons {
				if r == ReasonBootstrap || r == ReasonDropBadNextCA {
					t.Fatalf("%s at %s", r, now)
				}
			}
			for _, bundle := range [][]byte{injected, Bundle(out)} {
				for _, serving := range [][]byte{data[KeyCert], out[KeyCert]} {
					if err := verifyAt(bundle, serving, now); err != nil {
						t.Fatalf("at %s after %v: %v", now, reasons, err)
					}
				}
			}
		} else if err := verifyAt(injected, data[KeyCert], now); err != nil {
			t.Fatalf("at %s: %v", now, err)
		}
		data, injected = out, Bundle(out)
		cas[string(data[KeyCACert])] = true
		servings[string(data[KeyCert])] = true
	}
	// 10-year CAs renewed at 2/3: the first and one more every 6.7 years; yearly certificates
	// renewed at 2/3, and at each CA promotion.
	if len(cas) != 4 {
		t.Errorf("%d CAs in 25 years, want 4", len(cas))
	}
	if len(servings) < 35 {
		t.Errorf("%d serving certificates in 25 years, want about 38", len(servings))
	}
}

func TestBundleHas(t *testing.T) {
	a, b := mustCA(t, t0, year), mustCA(t, t0, year)
	bundle := append(append([]byte{}, a.CertPEM...), b.CertPEM...)
	if !bundleHas(bundle, a.CertPEM) || !bundleHas(bundle, b.CertPEM) {
		t.Error("bundle lacks a CA it holds")
	}
	if bundleHas(a.CertPEM, b.CertPEM) || bundleHas(nil, a.CertPEM) || bundleHas(bundle, []byte("x")) {
		t.Error("bundle has a CA it does not hold")
	}
}

func mustCA(t *testing.T, now time.Time, validity time.Duration) *certs.CA {
	t.Helper()
	ca, err := certs.NewCAAt("test", now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func caData(t *testing.T, ca *certs.CA) map[string][]byte {
	t.Helper()
	return map[string][]byte{KeyCACert: ca.CertPEM, KeyCAKey: must(ca.KeyPEM())}
}

func nextData(t *testing.T, ca *certs.CA) map[string][]byte {
	t.Helper()
	return map[string][]byte{KeyNextCACert: ca.CertPEM, KeyNextCAKey: must(ca.KeyPEM())}
}

// notACA is a serving certificate and key stored as the CA.
func notACA(t *testing.T) map[string][]byte {
	t.Helper()
	kp, err := mustCA(t, t0, year).IssueServingAt("leaf", []string{verified}, t0, year)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{KeyCACert: kp.CertPEM, KeyCAKey: kp.KeyPEM}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
