package savings

import (
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/overcommit-dev/overcommit/plugin/internal/testcluster"
	"github.com/overcommit-dev/overcommit/plugin/kube"
	"github.com/overcommit-dev/overcommit/plugin/output"
	"github.com/overcommit-dev/overcommit/shared/names"
	"github.com/overcommit-dev/overcommit/shared/policy"
	"github.com/overcommit-dev/overcommit/shared/requests"
)

// scaleInput is the input of `savings --pods` at Kubernetes' scalability envelope, shaped like
// hack/scale's cluster: 5,000 nodes of 32 cpu and 128Gi, a tenth opted in at cpu x2, and
// 150,000 pods of 250m and 512Mi spread evenly; with NodeMetrics and every pod's PodMetrics, so
// that the table has all its columns.
func scaleInput(b *testing.B) Input {
	const nodes, pods = 5000, 150000
	s := policy.DefaultSettings()
	in := Input{Loads: map[string]kube.Load{}, Usage: kube.Usage{Nodes: map[string]kube.NodeUsage{}},
		Pods: map[string][]kube.PodLoad{}, PodUsage: kube.PodUsage{Pods: map[string]kube.PodUsageAmount{}}}
	for i := range nodes {
		name := fmt.Sprintf("scale-node-%05d", i)
		nb := testcluster.Node(name).Resources("32", "128Gi")
		if i%10 == 0 {
			nb = nb.Enabled(s, names.CPURatioAnnotation, "2")
		}
		in.Nodes = append(in.Nodes, *nb.Build())
		in.Usage.Nodes[name] = kube.NodeUsage{Usage: testcluster.NodeMetrics(name, "7", "40Gi").Usage}
	}
	for i := range pods {
		node, pod := in.Nodes[i%nodes].Name, fmt.Sprintf("scale-pod-%06d", i)
		in.Pods[node] = append(in.Pods[node], kube.PodLoad{Namespace: "scale", Name: pod, CPU: 250, Memory: 512 << 20})
		l := in.Loads[node]
		l.Requests = l.Requests.Add(requests.Amount{MilliCPU: 250, Memory: 512 << 20})
		l.Pods++
		in.Loads[node] = l
		in.PodUsage.Pods[kube.PodKey("scale", pod)] = kube.PodUsageAmount{CPU: int64(10 + i%300), Memory: int64(i%500) << 20}
	}
	if len(in.Nodes[0].Annotations[names.RawAnnotation]) == 0 {
		b.Fatal("the opted-in nodes have no raw record: nothing would be gained")
	}
	return in
}

// BenchmarkScalePods times building and writing the report of `savings --pods` at 5,000 nodes
// and 150,000 pods in each output format, without a cluster (hack/scale measures the command
// against a real apiserver). Each op writes the whole report; heap-MiB is the live heap right
// after it, with the report still held, which is what the writers add to.
//
//	go test ./plugin/savings -run '^$' -bench ScalePods -benchtime 3x -benchmem
func BenchmarkScalePods(b *testing.B) {
	in := scaleInput(b)
	b.Run("build", func(b *testing.B) {
		for b.Loop() {
			Build(in)
		}
	})
	r := Build(in)
	for _, format := range []string{output.FormatTable, output.FormatJSON, output.FormatYAML} {
		b.Run(format, func(b *testing.B) {
			var written countingWriter
			for b.Loop() {
				written = 0
				var err error
				if format == output.FormatTable {
					err = r.WriteTable(&written)
				} else {
					err = output.Encode(&written, format, r)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(written)/(1<<20), "output-MiB")
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			b.ReportMetric(float64(m.HeapAlloc)/(1<<20), "heap-MiB")
			runtime.KeepAlive(r)
		})
	}
}

// countingWriter counts what is written and keeps none of it.
type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

var _ io.Writer = (*countingWriter)(nil)
