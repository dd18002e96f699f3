package sidecar

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/overcommit-dev/overcommit/shared/names"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    string
		yaml    string
		wantErr []string // substrings; empty means valid
	}{
		{name: "classic", tmpl: "log-shipper", yaml: `
containers:
- name: shipper
  image: example.com/shipper:1.2
volumes:
- name: logs
  emptyDir: {}
volumeMounts:
- name: logs
  mountPath: /var/log/app
env:
- name: LOG_DIR
  value: /var/log/app
imagePullSecrets:
- name: regcred
`},
		{name: "native", tmpl: "mesh", yaml: `
native: true
skipHostNetwork: true
initContainers:
- name: mesh-init
  image: example.com/mesh-init:1
containers:
- name: mesh-proxy
  image: example.com/proxy:1
  readinessProbe:
    httpGet: {path: /ready, port: 15021}
`},
		{name: "explicit native init container", tmpl: "x", yaml: `
initContainers:
- name: agent
  image: a
  restartPolicy: Always
  startupProbe: {exec: {command: ["true"]}}
`},
		{name: "env only", tmpl: "tz", yaml: "env:\n- name: TZ\n  value: UTC\n"},
		{name: "unknown top-level field", tmpl: "x", yaml: "containerz: []\n", wantErr: []string{`unknown field "containerz"`}},
		{name: "unknown nested field", tmpl: "x", yaml: "containers:\n- name: a\n  image: b\n  imagePullPolicyy: Always\n", wantErr: []string{`unknown field "imagePullPolicyy"`}},
		{name: "duplicate field", tmpl: "x", yaml: "native: true\nnative: false\ncontainers: [{name: a, image: b}]\n", wantErr: []string{`key "native" already set`}},
		{name: "not yaml", tmpl: "x", yaml: "containers: [\n", wantErr: []string{"parsing template.yaml"}},
		{name: "wrong type", tmpl: "x", yaml: "native: yes-please\n", wantErr: []string{"parsing template.yaml"}},
		{name: "empty", tmpl: "x", yaml: "", wantErr: []string{"injects nothing"}},
		{name: "bad template name", tmpl: "Bad_Name", yaml: "env: [{name: A, value: b}]", wantErr: []string{"name: a lowercase RFC 1123 subdomain"}},
		{name: "container without name or image", tmpl: "x", yaml: "containers: [{}]", wantErr: []string{"containers[0].name: required", "containers[0].image: required"}},
		{name: "container name not a label", tmpl: "x", yaml: "containers: [{name: My.Proxy, image: a}]", wantErr: []string{`containers[0].name "My.Proxy"`}},
		{name: "duplicate container across lists", tmpl: "x", yaml: "containers: [{name: a, image: a}]\ninitContainers: [{name: a, image: a}]", wantErr: []string{`initContainers[0].name "a": duplicates containers[0]`}},
		{name: "native container sets restartPolicy", tmpl: "x", yaml: "native: true\ncontainers: [{name: a, image: a, restartPolicy: Always}]", wantErr: []string{"must not be set in a native template"}},
		{name: "classic container sets restartPolicy", tmpl: "x", yaml: "containers: [{name: a, image: a, restartPolicy: Always}]", wantErr: []string{"use native: true"}},
		{name: "init container restartPolicy not Always", tmpl: "x", yaml: "initContainers: [{name: a, image: a, restartPolicy: Never}]", wantErr: []string{`only Always (a native sidecar) is allowed, got "Never"`}},
		{name: "probe on a run-to-completion init container", tmpl: "x", yaml: "initContainers: [{name: a, image: a, readinessProbe: {exec: {command: [x]}}}]", wantErr: []string{"only allowed on native sidecars"}},
		{name: "bad and duplicate volumes", tmpl: "x", yaml: "volumes: [{name: v, emptyDir: {}}, {name: v, emptyDir: {}}, {name: V_1}, {emptyDir: {}}]",
			wantErr: []string{`volumes[1].name "v": duplicate volume`, `volumes[2].name "V_1"`, "volumes[3].name: required"}},
		{name: "env problems", tmpl: "x", yaml: "env: [{name: A}, {name: A}, {name: 'B=C'}, {value: x}]",
			wantErr: []string{`env[1].name "A": set twice`, `env[2].name "B=C"`, "env[3].name: required"}},
		{name: "container env problems", tmpl: "x", yaml: "containers: [{name: a, image: a, env: [{name: X}, {name: X}]}]", wantErr: []string{`containers[0].env[1].name "X": set twice`}},
		{name: "mount problems", tmpl: "x", yaml: "volumeMounts: [{name: a, mountPath: /a}, {name: b, mountPath: /a}, {mountPath: /c}, {name: d}]",
			wantErr: []string{`volumeMounts[1].mountPath "/a": mounted twice`, "volumeMounts[2].name: required", "volumeMounts[3].mountPath: required"}},
		{name: "pull secret without name", tmpl: "x", yaml: "imagePullSecrets: [{}]", wantErr: []string{"imagePullSecrets[0].name: required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.tmpl, []byte(tc.yaml))
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if got.Name != tc.tmpl {
					t.Errorf("Name = %q, want %q", got.Name, tc.tmpl)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want errors %q", tc.wantErr)
			}
			if !strings.HasPrefix(err.Error(), `template "`+tc.tmpl+`": `) {
				t.Errorf("error does not name the template: %v", err)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	_, err := Parse("x", make([]byte, MaxTemplateBytes+1))
	if err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Fatalf("err = %v", err)
	}
}

func TestFromConfigMap(t *testing.T) {
	body := "containers: [{name: a, image: a}]"
	if _, err := FromConfigMap("ok", map[string]string{DataKey: body}); err != nil {
		t.Errorf("valid ConfigMap: %v", err)
	}
	if _, err := FromConfigMap("missing", map[string]string{"template.yml": body}); err == nil || !strings.Contains(err.Error(), "has no template.yaml key") {
		t.Errorf("missing key: %v", err)
	}
	if _, err := FromConfigMap("extra", map[string]string{DataKey: body, "template.yml": body, "README": ""}); err == nil ||
		!strings.Contains(err.Error(), "unexpected ConfigMap keys README, template.yml") {
		t.Errorf("extra keys: %v", err)
	}
}

func TestRequested(t *testing.T) {
	tests := []struct {
		ann  map[string]string
		want []string
	}{
		{nil, nil},
		{map[string]string{"other": "a"}, nil},
		{map[string]string{names.SidecarInjectAnnotation: ""}, nil},
		{map[string]string{names.SidecarInjectAnnotation: "a"}, []string{"a"}},
		{map[string]string{names.SidecarInjectAnnotation: " a, b ,,a,c "}, []string{"a", "b", "c"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, Requested(tc.ann)); diff != "" {
			t.Errorf("Requested(%v) (-want +got):\n%s", tc.ann, diff)
		}
	}
}

func TestReadStatus(t *testing.T) {
	s, err := ReadStatus(map[string]string{names.SidecarStatusAnnotation: `{"templates":[{"name":"a","containers":["c"]}]}`})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Has("a") || s.Has("b") {
		t.Errorf("status = %+v", s)
	}
	if _, err := ReadStatus(map[string]string{names.SidecarStatusAnnotation: "{"}); err == nil {
		t.Error("broken status annotation accepted")
	}
	if s, err := ReadStatus(nil); err != nil || len(s.Templates) != 0 {
		t.Errorf("no annotation: %+v, %v", s, err)
	}
}

// FuzzParse: any input either parses into a template that validates and injects, or is an error
// naming the template; never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte("native: true\ncontainers: [{name: a, image: b}]\nvolumes: [{name: v, emptyDir: {}}]\nenv: [{name: X, value: y}]\nvolumeMounts: [{name: v, mountPath: /v}]"))
	f.Add([]byte("initContainers: [{name: a, image: b, restartPolicy: Always}]\nimagePullSecrets: [{name: s}]"))
	f.Add([]byte("containers: [{name: a, image: b, ports: [{containerPort: 80}], resources: {requests: {cpu: 10m}}}]"))
	f.Add([]byte("{}"))
	f.Add([]byte("- a\n- b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tmpl, err := Parse("fuzz", data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), `template "fuzz": `) {
				t.Fatalf("error does not name the template: %v", err)
			}
			return
		}
		if err := tmpl.Validate(); err != nil {
			t.Fatalf("parsed template does not validate: %v", err)
		}
		pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app-zz9", Image: "app"}}}}
		if _, err := Inject(pod, []*Template{tmpl}); err != nil {
			var conflict *ConflictError
			if !asConflict(err, &conflict) {
				t.Fatalf("Inject: %v", err)
			}
		}
	})
}
