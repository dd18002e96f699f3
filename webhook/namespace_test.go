package main

import "testing"

func TestNamespaceOption(t *testing.T) {
	tests := []struct {
		name, env string
		args      []string
		want      string
		wantErr   bool
	}{
		{name: "install default", want: "overcommit-system"},
		{name: "downward API", env: "platform", want: "platform"},
		{name: "flag wins", env: "platform", args: []string{"--namespace=other"}, want: "other"},
		{name: "empty", args: []string{"--namespace="}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("POD_NAMESPACE", tc.env)
			o, err := parseOptions(tc.args)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("accepted, namespace %q", o.namespace)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.namespace != tc.want {
				t.Errorf("namespace = %q, want %q", o.namespace, tc.want)
			}
		})
	}
}
