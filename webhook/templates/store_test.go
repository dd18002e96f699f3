package templates

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/overcommit-dev/overcommit/internal/poll"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/sidecar"
)

const ns = names.Namespace

func configMap(name, namespace, body string, labelled bool) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Data:       map[string]string{sidecar.DataKey: body},
	}
	if labelled {
		cm.Labels = map[string]string{names.SidecarTemplateLabel: "true"}
	}
	return cm
}

// eventually polls cond until it holds; informer events arrive asynchronously.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	if err := poll.Until(context.Background(), 10*time.Millisecond, 10*time.Second, what, cond); err != nil {
		t.Fatal(err)
	}
}

func TestStoreHotReload(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := fake.NewClientset(
		configMap("logs", ns, "containers: [{name: shipper, image: shipper:1}]", true),
		configMap("broken", ns, "containers: [{name: agent, imagee: x}]", true),
		configMap("unlabelled", ns, "containers: [{name: a, image: a}]", false),
		configMap("elsewhere", "default", "containers: [{name: a, image: a}]", true),
	)
	reg := prometheus.NewRegistry()
	s, err := New(client, ns, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("logs"); !errors.Is(err, ErrNotReady) {
		t.Errorf("Get before Run: %v, want ErrNotReady", err)
	}
	s.Run(ctx)
	eventually(t, "initial sync", func() error {
		if !s.HasSynced() {
			return errors.New("not synced")
		}
		_, err := s.Get("logs")
		return err
	})
	if tmpl, _ := s.Get("logs"); tmpl.Containers[0].Image != "shipper:1" {
		t.Errorf("logs = %+v", tmpl)
	}
	if _, err := s.Get("broken"); !errors.Is(err, sidecar.ErrInvalid) || !strings.Contains(err.Error(), `unknown field "imagee"`) {
		t.Errorf("Get(broken) = %v", err)
	}
	for _, n := range []string{"unlabelled", "elsewhere", "nope"} {
		if _, err := s.Get(n); !errors.Is(err, sidecar.ErrNotFound) {
			t.Errorf("Get(%s) = %v, want ErrNotFound", n, err)
		}
	}
	if diff := cmp.Diff([]string{"logs"}, s.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	if got := testutil.ToFloat64(s.count.WithLabelValues("invalid")); got != 1 {
		t.Errorf("invalid gauge = %v", got)
	}
	if got := testutil.ToFloat64(s.parseErrors); got != 1 {
		t.Errorf("parse errors = %v", got)
	}

	cms := client.CoreV1().ConfigMaps(ns)
	// An edit takes effect without a restart.
	if _, err := cms.Update(ctx, configMap("logs", ns, "containers: [{name: shipper, image: shipper:2}]", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "edited template", func() error {
		tmpl, err := s.Get("logs")
		if err != nil {
			return err
		}
		if img := tmpl.Containers[0].Image; img != "shipper:2" {
			return errors.New("still " + img)
		}
		return nil
	})
	// Fixing the broken one makes it valid; breaking a good one reports it, the rest go on.
	if _, err := cms.Update(ctx, configMap("broken", ns, "containers: [{name: agent, image: x}]", true), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, configMap("mesh", ns, "native: maybe", true), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fixed and newly broken", func() error {
		if _, err := s.Get("broken"); err != nil {
			return err
		}
		if _, err := s.Get("mesh"); !errors.Is(err, sidecar.ErrInvalid) {
			return errors.New("mesh not reported invalid yet")
		}
		return nil
	})
	if diff := cmp.Diff([]string{"mesh"}, keys(s.Invalid())); diff != "" {
		t.Errorf("Invalid (-want +got):\n%s", diff)
	}
	// Deleting or unlabelling removes a template.
	if err := cms.Delete(ctx, "logs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Update(ctx, configMap("broken", ns, "containers: [{name: agent, image: x}]", false), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removed templates", func() error {
		if len(s.Names()) != 0 {
			return errors.New("still has " + strings.Join(s.Names(), ","))
		}
		return nil
	})
	if got := testutil.ToFloat64(s.count.WithLabelValues("valid")); got != 0 {
		t.Errorf("valid gauge = %v", got)
	}
}

func keys(m map[string]error) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNewNeedsNamespace(t *testing.T) {
	if _, err := New(fake.NewClientset(), "", Options{}); err == nil {
		t.Error("New without a namespace succeeded")
	}
}
