package settings

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
)

const ns = names.Namespace

func configMap(namespace, name string, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Data: data}
}

// eventually polls cond until it holds; informer events arrive asynchronously.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a log destination the informer's goroutines and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestParse(t *testing.T) {
	custom := policy.DefaultSettings()
	custom.CPU.Max = policy.MustParseRatio("8")
	bad := custom.Data()
	delete(bad, policy.KeyUsageMargin)
	valid := configMap(ns, "s", custom.Data())
	valid.ResourceVersion = "3"
	for _, tc := range []struct {
		name string
		cm   *corev1.ConfigMap
		want *Snapshot
	}{
		{"valid", valid, &Snapshot{State: Valid, Settings: custom, ResourceVersion: "3"}},
		{"invalid", configMap(ns, "s", bad), &Snapshot{State: Invalid, Settings: policy.DefaultSettings(),
			Problem: "settings ConfigMap overcommit-system/s is invalid (usageMargin is missing); using the defaults"}},
		{"empty", configMap(ns, "s", nil), &Snapshot{State: Invalid, Settings: policy.DefaultSettings(),
			Problem: "settings ConfigMap overcommit-system/s is invalid (defaultCPURatio is missing); using the defaults"}},
		{"missing", nil, &Snapshot{State: Missing, Problem: "settings ConfigMap overcommit-system/s not found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Parse(ns, "s", tc.cm)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestWatcher(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		// Neither is the settings ConfigMap.
		configMap(ns, "other", policy.DefaultSettings().Data()),
		configMap("elsewhere", names.SettingsConfigMap, policy.DefaultSettings().Data()),
	)
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	w, err := New(client, ns, names.SettingsConfigMap, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	state := func(want State, problem string) func() error {
		return func() error {
			s := w.Pointer().Load()
			if s.State != want || !strings.Contains(s.Problem, problem) {
				return fmt.Errorf("state %s (%q), want %s (%q)", s.State, s.Problem, want, problem)
			}
			for _, st := range []State{Valid, Invalid, Missing} {
				v := 0.0
				if st == want {
					v = 1
				}
				if got := testutil.ToFloat64(w.state.WithLabelValues(string(st))); got != v {
					return fmt.Errorf("gauge{state=%s} = %v, want %v", st, got, v)
				}
			}
			return nil
		}
	}
	if err := state(Missing, "overcommit-system/overcommit-settings not loaded yet")(); err != nil {
		t.Errorf("before Run: %v", err)
	}
	w.Run(ctx)
	eventually(t, "first list without the ConfigMap", state(Missing, "overcommit-system/overcommit-settings not found"))
	if !w.HasSynced() {
		t.Error("HasSynced is false after the first list")
	}

	cms := client.CoreV1().ConfigMaps(ns)
	custom := policy.DefaultSettings()
	custom.CPU.Default = policy.MustParseRatio("2")
	cm := configMap(ns, names.SettingsConfigMap, custom.Data())
	cm.ResourceVersion = "1"
	if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "created", state(Valid, ""))
	if got := w.Pointer().Load().Settings; got != custom {
		t.Errorf("settings %+v, want %+v", got, custom)
	}

	// A new version with the same content, or only a new confirmation of the usage targets
	// (written every round in policy mode), is read but not logged again.
	cm.ResourceVersion = "2"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "same content", func() error {
		if rv := w.Pointer().Load().ResourceVersion; rv != "2" {
			return fmt.Errorf("resourceVersion %q", rv)
		}
		return nil
	})
	cm.Data[policy.KeyUsageTargetsConfirmedAt] = "1790000000"
	cm.ResourceVersion = "2b"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a confirmation", func() error {
		if at := w.Pointer().Load().Settings.TargetsConfirmedAt; at.Unix() != 1_790_000_000 {
			return fmt.Errorf("confirmation %v", at)
		}
		return nil
	})
	delete(cm.Data, policy.KeyUsageTargetsConfirmedAt)

	cm.Data[policy.KeyMaxMemoryRatio] = "lots"
	cm.ResourceVersion = "3"
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "broken", state(Invalid, `maxMemoryRatio "lots"`))
	if got := operatorSettings(w.Pointer().Load().Settings); got != policy.DefaultSettings() {
		t.Errorf("invalid settings: %+v, want the defaults", got)
	}

	if err := cms.Delete(ctx, names.SettingsConfigMap, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted", state(Missing, "not found"))
	// Deleting another ConfigMap changes nothing.
	if err := cms.Delete(ctx, "other", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := state(Missing, "not found")(); err != nil {
		t.Error(err)
	}

	out := logs.String()
	for what, want := range map[string]int{
		"node policy settings loaded":                 1,
		"defaultCPURatio=2":                           1,
		"node policy settings are invalid":            1,
		"no node policy settings; opted-in nodes are": 2,
	} {
		if got := strings.Count(out, what); got != want {
			t.Errorf("%q logged %d times, want %d:\n%s", what, got, want, out)
		}
	}
}

func TestWatcherFindsExisting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(configMap(ns, names.SettingsConfigMap, policy.DefaultSettings().Data()))
	w, err := New(client, ns, names.SettingsConfigMap, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Run(ctx)
	eventually(t, "synced", func() error {
		if !w.HasSynced() {
			return fmt.Errorf("not synced")
		}
		return nil
	})
	// Handled before HasSynced: no review after readiness sees "not loaded yet".
	if s := w.Pointer().Load(); s.State != Valid {
		t.Errorf("state %s (%s) once synced, want valid", s.State, s.Problem)
	}
}

func TestNewNeedsNames(t *testing.T) {
	for _, args := range [][2]string{{"", "s"}, {ns, ""}} {
		if _, err := New(fake.NewClientset(), args[0], args[1], Options{}); err == nil {
			t.Errorf("New(%q, %q) succeeded", args[0], args[1])
		}
	}
}

func TestFixedAndUnavailable(t *testing.T) {
	if s := Fixed(policy.DefaultSettings()).Load(); s.State != Valid || s.Settings != policy.DefaultSettings() {
		t.Errorf("Fixed: %+v", s)
	}
	if s := Unavailable("why").Load(); s.State != Missing || s.Problem != "why" {
		t.Errorf("Unavailable: %+v", s)
	}
}
