package main

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A port alone binds to loopback; a host is kept, so exposing profiles takes an explicit
// 0.0.0.0.
func TestPprofBindAddress(t *testing.T) {
	tests := []struct {
		flag, want, wantErr string
	}{
		{flag: "", want: ""},
		{flag: "--pprof-bind-address=:6060", want: "127.0.0.1:6060"},
		{flag: "--pprof-bind-address=6060", want: "127.0.0.1:6060"},
		{flag: "--pprof-bind-address=0.0.0.0:6060", want: "0.0.0.0:6060"},
		{flag: "--pprof-bind-address=[::1]:6060", want: "[::1]:6060"},
		{flag: "--pprof-bind-address=localhost:x", wantErr: `--pprof-bind-address: port "x" is not a number from 0 to 65535`},
		// The old flag is gone: profiles never share the metrics listener.
		{flag: "--pprof", wantErr: "unknown flag: --pprof"},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			var args []string
			if tt.flag != "" {
				args = []string{tt.flag}
			}
			o, err := parseOptions(args)
			got, gotErr := "", ""
			if err != nil {
				gotErr = err.Error()
			} else {
				got = o.pprofAddr
			}
			if diff := cmp.Diff(tt.want+"|"+tt.wantErr, got+"|"+gotErr); diff != "" {
				t.Errorf("address|error (-want +got):\n%s", diff)
			}
		})
	}
}

// Profiles are served on their own listener only: the metrics address, which scrapers reach,
// has none.
func TestPprofOffTheMetricsListener(t *testing.T) {
	metricsPort, pprofPort := freePort(t), freePort(t)
	_, _, probePort := runWithoutCluster(t, fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		fmt.Sprintf("--pprof-bind-address=%d", pprofPort))
	status := func(url string) string {
		resp, err := http.Get(url)
		if err != nil {
			return "error"
		}
		resp.Body.Close()
		return fmt.Sprint(resp.StatusCode)
	}
	got := map[string]string{
		"metrics /metrics":      status(fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)),
		"metrics /debug/pprof/": status(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", metricsPort)),
		"pprof /debug/pprof/":   status(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", pprofPort)),
		"probes /debug/pprof/":  status(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", probePort)),
	}
	want := map[string]string{"metrics /metrics": "200", "metrics /debug/pprof/": "404", "pprof /debug/pprof/": "200", "probes /debug/pprof/": "404"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("HTTP status by listener and path (-want +got):\n%s", diff)
	}
}
