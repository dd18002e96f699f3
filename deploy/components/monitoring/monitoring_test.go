// Package monitoring holds the tests of the optional monitoring component (a PodMonitor, the
// PrometheusRule and a Grafana dashboard); the component itself is YAML and JSON.
package monitoring

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

var promtool = flag.String("promtool", "", "promtool binary: check the rules and run the rule unit tests in tests/ (make test-monitoring sets it)")

// job is the scrape job the rules' up{} selector names; the PodMonitor's jobLabel must yield it.
const job = "overcommit-webhook"

// Rule mirrors one rule of a PrometheusRule group.
type Rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Group is a PrometheusRule group, also the shape of a Prometheus rule file's groups.
type Group struct {
	Name  string `json:"name"`
	Rules []Rule `json:"rules"`
}

type prometheusRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Groups []Group `json:"groups"`
	} `json:"spec"`
}

func loadRules(t *testing.T) []Group {
	t.Helper()
	data, err := os.ReadFile("prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var pr prometheusRule
	if err := yaml.UnmarshalStrict(data, &pr); err != nil {
		// Strict: a misspelt field (exprs, annotation) would silently drop from the rule.
		t.Fatalf("prometheusrule.yaml: %v", err)
	}
	if pr.Kind != "PrometheusRule" || len(pr.Spec.Groups) == 0 {
		t.Fatalf("prometheusrule.yaml: kind %q with %d groups", pr.Kind, len(pr.Spec.Groups))
	}
	return pr.Spec.Groups
}

// unitTestFile mirrors the parts of a promtool rule test file this package checks.
type unitTestFile struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name          string `json:"name"`
		AlertRuleTest []struct {
			Alertname string            `json:"alertname"`
			ExpAlerts []json.RawMessage `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule tests in tests/ (%v)", err)
	}
	return files
}

// TestRules: every alert says how bad it is and what to do, and the unit tests show each one
// firing on some series and silent on others.
func TestRules(t *testing.T) {
	groups := loadRules(t)
	alerts := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name (recording rules belong elsewhere)", g.Name)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs a summary and a description", r.Alert)
			}
		}
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, f := range testFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTestFile
		if err := yaml.Unmarshal(data, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !slices.Equal(u.RuleFiles, []string{"rules.yaml"}) {
			t.Errorf("%s: rule_files %v, want [rules.yaml] (written by TestPromtool)", f, u.RuleFiles)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if !alerts[a.Alertname] {
					t.Errorf("%s, %q: no alert %s in prometheusrule.yaml", f, tc.Name, a.Alertname)
				}
				if len(a.ExpAlerts) > 0 {
					fires[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
		}
	}
	for a := range alerts {
		if !fires[a] {
			t.Errorf("alert %s: no test shows it firing", a)
		}
		if !silent[a] {
			t.Errorf("alert %s: no test shows it silent", a)
		}
	}
}

// TestPromtool checks the rules with promtool and runs the rule unit tests in tests/. The unit
// tests compare labels and the summary; the descriptions (prose) are left out of the copy they
// run against, and promtool check rules parses their templates in the full file.
func TestPromtool(t *testing.T) {
	if *promtool == "" {
		t.Skip("needs -promtool=<binary>; make test-monitoring builds promtool and runs this")
	}
	groups := loadRules(t)
	dir := t.TempDir()
	write := func(name string, groups []Group) {
		t.Helper()
		data, err := yaml.Marshal(map[string][]Group{"groups": groups})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("full.yaml", groups)
	var short []Group
	for _, g := range groups {
		s := Group{Name: g.Name}
		for _, r := range g.Rules {
			r.Annotations = map[string]string{"summary": r.Annotations["summary"]}
			s.Rules = append(s.Rules, r)
		}
		short = append(short, s)
	}
	write("rules.yaml", short)
	args := []string{"test", "rules"}
	for _, f := range testFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, dst)
	}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(*promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		} else {
			t.Logf("promtool %s:\n%s", args[0]+" "+args[1], out)
		}
	}
	run("check", "rules", filepath.Join(dir, "full.yaml"))
	run(args...)
}

// TestMetricNames: every series the rules and the dashboard read exists: the webhook's metrics
// are the overcommit_ names in its source, the others are cited below from the components that
// export them, and checked against those components' sources when they are in the module cache.
func TestMetricNames(t *testing.T) {
	known := webhookMetrics(t)
	for _, m := range external {
		known[m.name] = true
	}
	known["up"] = true
	var exprs []string
	for _, g := range loadRules(t) {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, p := range dashboardPanels(t) {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricNames(e) {
			used[name] = true
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suffix); ok && known[b] {
					base = b
				}
			}
			if !known[base] {
				t.Errorf("%s (in %q) is not a metric of the webhook or of the components cited in external", name, e)
			}
		}
	}
	for _, m := range external {
		if !used[m.name] && !used[m.name+"_bucket"] {
			t.Errorf("external lists %s, which nothing uses", m.name)
		}
	}
}

// TestExternalMetricsInSources: the Kubernetes and controller-runtime metrics the rules read are
// declared in the sources of the versions this project builds with (Kubernetes from
// hack/tools/go.mod, controller-runtime from go.mod). make test-monitoring downloads them first;
// without -promtool a module missing from the cache skips its check.
func TestExternalMetricsInSources(t *testing.T) {
	cache := goEnv(t, "GOMODCACHE")
	for _, m := range external {
		t.Run(m.name, func(t *testing.T) {
			version := moduleVersion(t, m.gomod, m.module)
			file := filepath.Join(cache, m.module+"@"+version, m.file)
			data, err := os.ReadFile(file)
			switch {
			case os.IsNotExist(err) && *promtool != "":
				t.Fatalf("%s@%s is not in the module cache (make test-monitoring downloads it)", m.module, version)
			case os.IsNotExist(err):
				t.Skipf("%s@%s is not in the module cache (make test-monitoring downloads it)", m.module, version)
			case err != nil:
				t.Fatal(err)
			}
			for _, part := range m.parts {
				if !bytes.Contains(data, []byte(strconv.Quote(part))) {
					t.Errorf("%s@%s %s does not declare %q, part of %s", m.module, version, m.file, part, m.name)
				}
			}
			if got := strings.Join(m.parts, "_"); got != m.name {
				t.Errorf("parts join to %s, not %s", got, m.name)
			}
		})
	}
}

// external are the metrics the rules and dashboard read from other components: where each is
// declared (namespace, subsystem and name, as the source spells them).
var external = []struct {
	name          string
	gomod, module string // the go.mod (from this directory) that pins module
	file          string
	parts         []string
}{
	{"apiserver_admission_webhook_fail_open_count", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/metrics/metrics.go",
		[]string{"apiserver", "admission", "webhook_fail_open_count"}},
	{"apiserver_admission_webhook_rejection_count", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/metrics/metrics.go",
		[]string{"apiserver", "admission", "webhook_rejection_count"}},
	{"apiserver_admission_webhook_request_total", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/metrics/metrics.go",
		[]string{"apiserver", "admission", "webhook_request_total"}},
	{"apiserver_admission_webhook_admission_duration_seconds", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/metrics/metrics.go",
		[]string{"apiserver", "admission", "webhook_admission_duration_seconds"}},
	{"apiserver_mutating_admission_policy_check_total", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/plugin/policy/mutating/metrics/metrics.go",
		[]string{"apiserver", "mutating_admission_policy", "check_total"}},
	{"apiserver_mutating_admission_policy_check_duration_seconds", "../../../hack/tools/go.mod", "k8s.io/apiserver", "pkg/admission/plugin/policy/mutating/metrics/metrics.go",
		[]string{"apiserver", "mutating_admission_policy", "check_duration_seconds"}},
	{"certwatcher_read_certificate_errors_total", "../../../go.mod", "sigs.k8s.io/controller-runtime", "pkg/certwatcher/metrics/metrics.go",
		[]string{"certwatcher_read_certificate_errors_total"}},
}

// TestLabelValues: every value the rules and the dashboard match a label of a webhook metric
// against (state="differs", outcome=~"error|panic") is a string the webhook's sources spell, so
// a misspelt value cannot leave an alert silent forever.
func TestLabelValues(t *testing.T) {
	literals := webhookLiterals(t)
	var exprs []string
	for _, g := range loadRules(t) {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	for _, p := range dashboardPanels(t) {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	checked := 0
	for _, e := range exprs {
		for _, sel := range selector.FindAllStringSubmatch(e, -1) {
			for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
				if m[2] == "!=" || m[2] == "!~" {
					continue
				}
				values := []string{m[3]}
				if m[2] == "=~" {
					values = strings.Split(m[3], "|")
				}
				for _, v := range values {
					checked++
					if !literals[v] {
						t.Errorf("%s{%s=%q} (in %q): the webhook's sources never spell %q", sel[1], m[1], m[3], e, v)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked %d label values: is the selector pattern right?", checked)
	}
}

var (
	selector = regexp.MustCompile(`\b(overcommit_[a-z_]+)\{([^}]*)\}`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"`)
)

// webhookMetrics collects the overcommit_ string literals of the webhook's non-test sources:
// its metric names.
func webhookMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for s := range webhookLiterals(t) {
		if metricName.MatchString(s) && strings.HasPrefix(s, "overcommit_") {
			names[s] = true
		}
	}
	if len(names) < 10 {
		t.Fatalf("found %d overcommit_ metrics in the webhook's sources: is the path right?", len(names))
	}
	return names
}

// webhookLiterals collects the string literals of the webhook's non-test sources.
func webhookLiterals(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	root := "../../../webhook"
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					names[s] = true
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

var (
	metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	// What in PromQL is not a metric name: label matchers and ranges, grouping and matching
	// clauses with their label lists, strings, numbers and durations, and identifiers followed
	// by "(" (functions).
	stripped   = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)|"[^"]*"|\b[0-9][0-9.]*[a-z]*\b`)
	identifier = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "inf": true, "nan": true}
)

// metricNames lists the metric names a PromQL expression selects.
func metricNames(expr string) []string {
	var out []string
	for _, tok := range identifier.FindAllString(stripped.ReplaceAllString(expr, " "), -1) {
		if strings.HasSuffix(tok, "(") {
			continue
		}
		tok = strings.TrimSpace(tok)
		if keywords[strings.ToLower(tok)] {
			continue
		}
		out = append(out, tok)
	}
	return out
}

func TestMetricNamesParser(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job="overcommit-webhook"} == 0`, []string{"up"}},
		{`sum by (namespace, le) (rate(a_bucket{x=~"b|c"}[$__rate_interval])) / on (namespace) group_left (pod) b offset 10m unless c`, []string{"a_bucket", "b", "c"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m]))) > 1 and time() - y > 300`, []string{"x_bucket", "y"}},
		{`absent(up{job="a"} == 1) or vector(0)`, []string{"up"}},
	} {
		if diff := cmp.Diff(tc.want, metricNames(tc.expr)); diff != "" {
			t.Errorf("metricNames(%q) (-want +got):\n%s", tc.expr, diff)
		}
	}
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
}

func dashboardPanels(t *testing.T) []panel {
	t.Helper()
	data, err := os.ReadFile("dashboards/overcommit.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("dashboards/overcommit.json: %v", err)
	}
	if d.UID == "" {
		t.Error("the dashboard has no uid: each import would make a new copy")
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return all
}

// TestDashboard: the rows operators look for, every panel with a query through the dashboard's
// data source variable.
func TestDashboard(t *testing.T) {
	var rows []string
	for _, p := range dashboardPanels(t) {
		if p.Type == "row" {
			rows = append(rows, p.Title)
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
	}
	want := []string{"Health", "Capacity gained", "Reviews", "Latency", "Fallbacks"}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

// TestComponent renders every overlay and mode with the component and without: the component
// adds its PodMonitor, PrometheusRule and dashboard ConfigMap and changes nothing else; the
// PodMonitor scrapes a port the webhook opens and the NetworkPolicy admits, and names the job
// the rules expect.
func TestComponent(t *testing.T) {
	for _, overlay := range []string{"self-signed", "cert-manager"} {
		for _, mode := range []string{"policy", "webhook"} {
			t.Run(overlay+"/"+mode, func(t *testing.T) {
				without := render(t, overlay, mode, false)
				with := render(t, overlay, mode, true)
				added := map[string]*resource.Resource{}
				for id, r := range with {
					if old, ok := without[id]; ok {
						if diff := cmp.Diff(old.MustYaml(), r.MustYaml()); diff != "" {
							t.Errorf("the component changes %s (-without +with):\n%s", id, diff)
						}
						continue
					}
					added[id] = r
				}
				var ids []string
				for id := range added {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				want := []string{"ConfigMap/overcommit-system/overcommit-dashboard", "PodMonitor/overcommit-system/overcommit-webhook",
					"PrometheusRule/overcommit-system/overcommit"}
				if diff := cmp.Diff(want, ids); diff != "" {
					t.Fatalf("added objects (-want +got):\n%s", diff)
				}
				for id, r := range added {
					if r.GetLabels()["app.kubernetes.io/part-of"] != "overcommit" {
						t.Errorf("%s lacks the app.kubernetes.io/part-of label", id)
					}
				}
				dashboard := object(t, added[want[0]])
				if l := nested[map[string]any](dashboard, "metadata", "labels"); l["grafana_dashboard"] != "1" {
					t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard=1", l)
				}
				if data := nested[map[string]any](dashboard, "data"); !json.Valid([]byte(data["overcommit.json"].(string))) {
					t.Error("the dashboard ConfigMap does not hold overcommit.json as valid JSON")
				}
				checkPodMonitor(t, object(t, added[want[1]]), with)
			})
		}
	}
}

func checkPodMonitor(t *testing.T, pm map[string]any, all map[string]*resource.Resource) {
	t.Helper()
	dep := object(t, all["Deployment/overcommit-system/overcommit-webhook"])
	np := object(t, all["NetworkPolicy/overcommit-system/overcommit-webhook"])
	podLabels := nested[map[string]any](dep, "spec", "template", "metadata", "labels")
	for k, v := range nested[map[string]any](pm, "spec", "selector", "matchLabels") {
		if podLabels[k] != v {
			t.Errorf("PodMonitor selects %s=%v; the webhook's pods have %v", k, v, podLabels)
		}
	}
	if jl := nested[string](pm, "spec", "jobLabel"); podLabels[jl] != job {
		t.Errorf("PodMonitor jobLabel %q gives job %v, the rules expect %s", jl, podLabels[jl], job)
	}
	endpoints := nested[[]any](pm, "spec", "podMetricsEndpoints")
	if len(endpoints) != 1 {
		t.Fatalf("%d podMetricsEndpoints, want 1", len(endpoints))
	}
	port := endpoints[0].(map[string]any)["port"]
	var opened bool
	for _, c := range nested[[]any](dep, "spec", "template", "spec", "containers") {
		for _, p := range c.(map[string]any)["ports"].([]any) {
			opened = opened || p.(map[string]any)["name"] == port
		}
	}
	if !opened {
		t.Errorf("PodMonitor scrapes port %v, which the webhook's container does not name", port)
	}
	var admitted bool
	for _, rule := range nested[[]any](np, "spec", "ingress") {
		r := rule.(map[string]any)
		ports, _ := r["ports"].([]any)
		from, _ := r["from"].([]any)
		for _, p := range ports {
			// A rule with sources: the scrapers' namespaces (the other rule, open to all, is
			// the webhook port's).
			admitted = admitted || (p.(map[string]any)["port"] == port && len(from) > 0)
		}
	}
	if !admitted {
		t.Errorf("the NetworkPolicy admits no scraper to port %v", port)
	}
}

// render builds overlay with mode (and the component) from the files on disk, as a user's
// kustomization would, keyed by kind/namespace/name.
func render(t *testing.T, overlay, mode string, monitoring bool) map[string]*resource.Resource {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	root := "../.."
	for _, dir := range []string{"base", "overlays", "modes", "components/monitoring"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(p, filepath.Join(root, "components/monitoring/tests")) {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			return mem.WriteFile(path.Join("/deploy", filepath.ToSlash(rel)), data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../overlays/" + overlay +
		"\ncomponents:\n- ../modes/" + mode + "\n"
	if monitoring {
		k += "- ../components/monitoring\n"
	}
	if err := mem.WriteFile("/deploy/install/kustomization.yaml", []byte(k)); err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, "/deploy/install")
	if err != nil {
		t.Fatalf("rendering %s/%s (monitoring %v): %v", overlay, mode, monitoring, err)
	}
	out := map[string]*resource.Resource{}
	for _, r := range res.Resources() {
		out[r.GetKind()+"/"+r.GetNamespace()+"/"+r.GetName()] = r
	}
	return out
}

func object(t *testing.T, r *resource.Resource) map[string]any {
	t.Helper()
	if r == nil {
		t.Fatal("object not rendered")
	}
	m, err := r.Map()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// nested returns the value at keys, or T's zero value.
func nested[T any](m map[string]any, keys ...string) T {
	var zero T
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return zero
		}
		v = mm[k]
	}
	out, _ := v.(T)
	return out
}

// moduleVersion reads the version of module that gomod pins, its replace directive first.
func moduleVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	var required string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "require "))
		switch {
		case len(f) == 4 && f[0] == module && f[1] == "=>":
			return f[3]
		case len(f) >= 2 && f[0] == module && required == "":
			required = f[1]
		}
	}
	if required == "" {
		t.Fatalf("%s does not require %s", gomod, module)
	}
	return required
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(out))
}
