package admission_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/overcommit-dev/overcommit/internal/fixtures"
	"github.com/overcommit-dev/overcommit/webhook/admission"
)

// stall opens a connection to addr, sends the headers of a review of declared bytes and then
// sent bytes of its body, and stops there.
func stall(t *testing.T, addr string, declared, sent int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	head := fmt.Sprintf("POST /mutate-node HTTP/1.1\r\nHost: webhook\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", declared)
	if _, err := io.WriteString(c, head+strings.Repeat(" ", sent)); err != nil {
		t.Fatalf("sending a stalled upload: %v", err)
	}
	return c
}

// heapInUse returns the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// settledHeap waits (at most 20 s) until the live heap stops changing, so that everything the
// server read from the stalled uploads is in it, and returns it.
func settledHeap() uint64 {
	last := heapInUse()
	for i := 0; i < 100; i++ {
		time.Sleep(200 * time.Millisecond)
		now := heapInUse()
		if diff := int64(now) - int64(last); diff < 1<<20 && diff > -(1<<20) {
			return now
		}
		last = now
	}
	return last
}

// nodeReview posts the node fixture's review and returns the status and the answer's uid.
func nodeReview(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	body, err := fixtures.NodeReview("worker-1", "system:node:worker-1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(url+"/mutate-node", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("posting a node review: %v", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, string(out)
	}
	var rev struct {
		Response struct {
			UID string `json:"uid"`
		} `json:"response"`
	}
	if err := json.Unmarshal(out, &rev); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	return resp.StatusCode, rev.Response.UID
}

func newLimitedServer(t *testing.T, lim *admission.Limits) (*httptest.Server, *admission.Metrics) {
	t.Helper()
	wh, m := newWebhook(echo)
	wh.Limits = lim
	mux := http.NewServeMux()
	mux.Handle("/mutate-node", wh)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, m
}

// 300 uploads that each sent 256 KiB of a 3 MiB body and stalled: the server's heap grows by
// no more than the buffer budget plus each connection's own small cost, and a review sent
// meanwhile is answered. Before the budget, the same uploads pinned 300 buffers of at least
// 256 KiB each (over 75 MiB).
func TestStalledUploadsNeitherGrowMemoryNorDelayReviews(t *testing.T) {
	const (
		uploads  = 300
		sent     = 256 << 10
		budget   = 16 << 20
		perConn  = 64 << 10 // goroutine, bufio reader and writer, net/http's connection state
		headroom = 8 << 20  // the test's own garbage, the metrics, the runtime
	)
	lim := &admission.Limits{BodyTimeout: time.Minute, MaxBufferedBytes: budget, EvictIdle: 100 * time.Millisecond}
	srv, m := newLimitedServer(t, lim)
	client := &http.Client{Timeout: 30 * time.Second}
	if code, got := nodeReview(t, client, srv.URL); code != http.StatusOK {
		t.Fatalf("review before the uploads: HTTP %d %s", code, got)
	}
	before := settledHeap()

	conns := make([]net.Conn, uploads)
	for i := range conns {
		conns[i] = stall(t, srv.Listener.Addr().String(), admission.MaxRequestBytes, sent)
	}
	after := settledHeap()
	growth := int64(after) - int64(before)
	bound := int64(budget + uploads*perConn + headroom)
	t.Logf("heap in use: %d MiB before, %d MiB with %d stalled uploads of %d KiB each (bound %d MiB); %d MiB charged to bodies",
		before>>20, after>>20, uploads, sent>>10, bound>>20, lim.Buffered()>>20)
	if growth > bound {
		t.Errorf("the heap grew by %d MiB with %d stalled uploads, want at most %d MiB", growth>>20, uploads, bound>>20)
	}
	if b := lim.Buffered(); b > budget {
		t.Errorf("%d bytes charged to bodies, over the budget of %d", b, budget)
	}

	// A review now is answered in full: it takes the bytes of the longest-stalled upload.
	if code, got := nodeReview(t, client, srv.URL); code != http.StatusOK || got != uid {
		t.Errorf("review during the stalled uploads: HTTP %d %q, want 200 with uid %s", code, got, uid)
	}
	if n := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeAllowed)); n != 2 {
		t.Errorf("%v reviews answered, want 2", n)
	}
	// Uploads cut off for room were told so (408) and their connections closed.
	if n := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeTimeout)); n == 0 {
		t.Errorf("no stalled upload was cut off, yet they held more than the budget")
	}
	for _, c := range conns {
		c.Close()
	}
	waitBuffered(t, lim, 0)
}

// waitBuffered waits until the bytes charged to bodies are want: every body gives its bytes
// back.
func waitBuffered(t *testing.T, lim *admission.Limits, want int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for lim.Buffered() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still charged to bodies, want %d", lim.Buffered(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Bodies that do not arrive within the deadline are answered 408 and their connections
// closed, however the client holds them: sending nothing, stalling midway, or trickling.
func TestBodyDeadlineClosesStalledConnections(t *testing.T) {
	lim := &admission.Limits{BodyTimeout: 300 * time.Millisecond, MaxBufferedBytes: 1 << 20, EvictIdle: time.Hour}
	srv, m := newLimitedServer(t, lim)
	addr := srv.Listener.Addr().String()
	tests := []struct {
		name  string
		start func(t *testing.T) net.Conn
	}{
		{name: "headers only", start: func(t *testing.T) net.Conn { return stall(t, addr, 1000, 0) }},
		{name: "half the body", start: func(t *testing.T) net.Conn { return stall(t, addr, 1000, 500) }},
		{name: "a byte every 50ms", start: func(t *testing.T) net.Conn {
			c := stall(t, addr, 1000, 1)
			done := make(chan struct{})
			t.Cleanup(func() { close(done) })
			go func() {
				for {
					select {
					case <-done:
						return
					case <-time.After(50 * time.Millisecond):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.start(t)
			// The answer must come from the server's deadline, long before this one.
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("no answer to a stalled upload: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
			if diff := cmp.Diff("408 request body not received in time", got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			// Closed: EOF, or a reset when the trickling client's next byte reached the closed
			// socket first. A timeout here means the server kept the connection open.
			if _, err := br.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("connection still open after the answer: %v", err)
			}
		})
	}
	if n := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeTimeout)); n != float64(len(tests)) {
		t.Errorf("timeout outcome counted %v times, want %d", n, len(tests))
	}
	waitBuffered(t, lim, 0)
}

// When every buffered body is still arriving, nothing can be cut off: a review is refused at
// once with 503 and no Retry-After (with one, the apiserver would retry and hold the node's
// write; without, the node webhook's failurePolicy Ignore stores the write as sent).
func TestBudgetFullOfLiveBodiesRefusesAtOnce(t *testing.T) {
	const budget = 64 << 10
	lim := &admission.Limits{BodyTimeout: time.Minute, MaxBufferedBytes: budget, EvictIdle: time.Hour}
	srv, m := newLimitedServer(t, lim)
	// Small uploads (each charged 4 to 16 KiB, as the pool has buffers) until less than the
	// 16 KiB a review's first buffer needs is left.
	var conns []net.Conn
	for lim.Buffered() <= budget-16<<10 {
		held := lim.Buffered()
		conns = append(conns, stall(t, srv.Listener.Addr().String(), 4000, 2000))
		deadline := time.Now().Add(10 * time.Second)
		for lim.Buffered() == held {
			if time.Now().After(deadline) {
				t.Fatalf("an upload was not charged: %d bytes charged", held)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	body, err := fixtures.NodeReview("worker-1", "system:node:worker-1")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post(srv.URL+"/mutate-node", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	got := fmt.Sprintf("%d %s retry-after=%q", resp.StatusCode, strings.TrimSpace(string(msg)), resp.Header.Get("Retry-After"))
	if diff := cmp.Diff(`503 too many request bytes in flight retry-after=""`, got); diff != "" {
		t.Errorf("answer with %d uploads holding %d bytes (-want +got):\n%s", len(conns), lim.Buffered(), diff)
	}
	if n := testutil.ToFloat64(m.RequestCount("test", admission.OutcomeOverloaded)); n != 1 {
		t.Errorf("overloaded outcome counted %v times, want 1", n)
	}
	for _, c := range conns {
		c.Close()
	}
	waitBuffered(t, lim, 0)
	if code, got := nodeReview(t, client, srv.URL); code != http.StatusOK || got != uid {
		t.Errorf("review after the uploads ended: HTTP %d %q", code, got)
	}
}
