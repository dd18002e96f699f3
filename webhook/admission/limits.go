package admission

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Limits. A review's body comes from the apiserver in one write right after its
// headers, so these are generous for it and short for anyone who holds a connection open.
const (
	// DefaultBodyTimeout is longer than any webhook's timeoutSeconds here (5 s): by then the
	// apiserver has given up on the call anyway.
	DefaultBodyTimeout = 10 * time.Second
	// DefaultMaxBufferedBytes is a small part of the Deployment's 512Mi limit, and room for
	// about twenty 3 MiB reviews or a thousand node reviews at once.
	DefaultMaxBufferedBytes = 64 << 20
	// DefaultEvictIdle is how long a body must have sent nothing before its bytes may be taken
	// back for a new review. The apiserver sends a body in one write; one idle this long is
	// stalled, not slow.
	DefaultEvictIdle = 250 * time.Millisecond
	// maxBudgetWait bounds how long a review waits for an evicted body to give its bytes back.
	maxBudgetWait = time.Second
)

// firstBufferBytes is the least a body buffer is allocated with; it then doubles.
const firstBufferBytes = 16 << 10

var (
	errBodyTimeout = errors.New("request body not received in time")
	errOverloaded  = errors.New("too many request bytes in flight")
)

// Limits bound the time and memory that request bodies cost. One Limits is shared by every
// Webhook of a server, so that the bound holds for the process.
//
// Memory: the bytes buffered by all bodies being read or served together stay under
// MaxBufferedBytes. A body is charged for its buffer as it grows, which happens only as bytes
// arrive, so a client that sends headers and stalls holds no budget at all. When a review
// needs bytes that are all taken, the body that has been idle the longest (at least EvictIdle)
// is cut off to make room: stalled uploads cannot starve the apiserver's reviews, which arrive
// in one piece. Only when every buffered body is still arriving is a review refused (HTTP 503).
//
// Time: the whole body must arrive within BodyTimeout of the handler's start; then the read
// fails and the connection is closed.
type Limits struct {
	BodyTimeout      time.Duration
	MaxBufferedBytes int64
	EvictIdle        time.Duration

	mu       sync.Mutex
	used     int64
	readers  map[*bodyReader]struct{}
	released chan struct{} // closed (and replaced) whenever bytes are given back
}

// NewLimits returns Limits with the defaults.
func NewLimits() *Limits {
	return &Limits{BodyTimeout: DefaultBodyTimeout, MaxBufferedBytes: DefaultMaxBufferedBytes, EvictIdle: DefaultEvictIdle}
}

// defaultLimits serves every Webhook that was given none: the bound is per process.
var defaultLimits = NewLimits()

// Buffered returns the bytes charged to bodies now (tests and metrics read it).
func (l *Limits) Buffered() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.used
}

// bodyReader reads one request body under the limits.
type bodyReader struct {
	l    *Limits
	body io.Reader
	// abort makes the body's pending and future reads fail at once.
	abort func()
	// lastRead is when bytes last arrived, in UnixNano.
	lastRead atomic.Int64
	held     int64 // bytes charged to this body; under l.mu
	evicted  bool  // under l.mu
}

// newBodyReader sets the body's read deadline and registers it as evictable.
func (l *Limits) newBodyReader(w http.ResponseWriter, r *http.Request) *bodyReader {
	rc := http.NewResponseController(w)
	now := time.Now()
	// The server may not support deadlines (a test recorder): then only the budget applies.
	_ = rc.SetReadDeadline(now.Add(l.BodyTimeout))
	br := &bodyReader{l: l, body: r.Body, abort: func() { _ = rc.SetReadDeadline(time.Unix(1, 0)) }}
	br.lastRead.Store(now.UnixNano())
	l.mu.Lock()
	if l.readers == nil {
		l.readers = map[*bodyReader]struct{}{}
	}
	l.readers[br] = struct{}{}
	l.mu.Unlock()
	return br
}

// doneReading makes the body no longer evictable: it is complete (or failed) and its bytes
// are in use until the response is written.
func (br *bodyReader) doneReading() {
	br.l.mu.Lock()
	delete(br.l.readers, br)
	br.l.mu.Unlock()
}

// release gives back every byte charged to the body. Call it once the request's bytes are no
// longer referenced.
func (br *bodyReader) release() {
	l := br.l
	l.mu.Lock()
	delete(l.readers, br)
	if br.held > 0 {
		l.used -= br.held
		br.held = 0
		if l.released != nil {
			close(l.released)
			l.released = nil
		}
	}
	l.mu.Unlock()
}

// charge reserves n more bytes for the body, evicting stalled bodies when the budget is full.
func (br *bodyReader) charge(n int64) error {
	l := br.l
	if n > l.MaxBufferedBytes {
		return errOverloaded
	}
	timer := (*time.Timer)(nil)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		if br.evicted {
			l.mu.Unlock()
			return errBodyTimeout
		}
		if l.used+n <= l.MaxBufferedBytes {
			l.used += n
			br.held += n
			l.mu.Unlock()
			return nil
		}
		victim := l.stalledLocked(br)
		if victim == nil {
			l.mu.Unlock()
			return errOverloaded
		}
		if !victim.evicted {
			victim.evicted = true
			victim.abort()
		}
		if l.released == nil {
			l.released = make(chan struct{})
		}
		wait := l.released
		l.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(maxBudgetWait)
		}
		select {
		case <-wait:
		case <-timer.C:
			return errOverloaded
		}
	}
}

// stalledLocked returns the body holding bytes that has been idle the longest, at least
// EvictIdle, other than self; nil if there is none.
func (l *Limits) stalledLocked(self *bodyReader) *bodyReader {
	cutoff := time.Now().Add(-l.EvictIdle).UnixNano()
	var victim *bodyReader
	var oldest int64
	for r := range l.readers {
		if r == self || r.held == 0 {
			continue
		}
		if t := r.lastRead.Load(); t <= cutoff && (victim == nil || t < oldest) {
			victim, oldest = r, t
		}
	}
	return victim
}

var bodyPool sync.Pool // of *[]byte

// maxPooledBody keeps one huge request's buffer from staying pinned in the pool.
const maxPooledBody = 256 << 10

// read reads the whole body, at most limit bytes (a body of limit bytes is reported as too
// large by the caller). It returns the body's bytes, whose buffer goes back to the pool with
// putBody.
func (br *bodyReader) read(limit int) ([]byte, error) {
	// Wait for the first byte before taking a buffer: a client that sends headers and nothing
	// else holds no buffer and no budget.
	var first [1]byte
	for {
		n, err := br.body.Read(first[:])
		if n == 1 {
			break
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, br.readError(err)
		}
	}
	br.lastRead.Store(time.Now().UnixNano())
	var b []byte
	if p, ok := bodyPool.Get().(*[]byte); ok {
		b = (*p)[:0]
	}
	// A pooled buffer much larger than the body would be charged for nothing.
	if cap(b) < min(firstBufferBytes, limit) || cap(b) > max(firstBufferBytes, 2*limit) {
		putBody(b)
		b = nil
	}
	size := cap(b)
	if b == nil {
		size = min(firstBufferBytes, limit)
	}
	if err := br.charge(int64(size)); err != nil {
		putBody(b)
		return nil, err
	}
	if b == nil {
		b = make([]byte, 0, size)
	}
	b = append(b, first[0])
	for {
		if end := min(cap(b), limit); len(b) == end {
			if end == limit {
				return b, nil
			}
			// Grow only as bytes arrive, and charge before allocating. The old buffer stays
			// charged: it is garbage, but memory until the next collection.
			next := min(2*cap(b), limit)
			if err := br.charge(int64(next)); err != nil {
				putBody(b)
				return nil, err
			}
			nb := make([]byte, len(b), next)
			copy(nb, b)
			b = nb
		}
		n, err := br.body.Read(b[len(b):min(cap(b), limit)])
		b = b[:len(b)+n]
		if n > 0 {
			br.lastRead.Store(time.Now().UnixNano())
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			putBody(b)
			return nil, br.readError(err)
		}
	}
}

// readError names a read cut off by the deadline or by eviction.
func (br *bodyReader) readError(err error) error {
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		return errBodyTimeout
	}
	return err
}

func putBody(b []byte) {
	if b != nil && cap(b) <= maxPooledBody {
		bodyPool.Put(&b)
	}
}

// Collector exports the bytes charged to request bodies as
// overcommit_webhook_request_buffered_bytes, with the budget as
// overcommit_webhook_request_buffer_limit_bytes.
func (l *Limits) Collector() prometheus.Collector {
	return limitsCollector{l}
}

type limitsCollector struct{ l *Limits }

var (
	bufferedDesc = prometheus.NewDesc("overcommit_webhook_request_buffered_bytes",
		"Bytes of admission request bodies held in memory now (charged against the limit as buffers grow).", nil, nil)
	bufferLimitDesc = prometheus.NewDesc("overcommit_webhook_request_buffer_limit_bytes",
		"The most bytes of admission request bodies held at once; past it stalled bodies are cut off, else reviews are refused.", nil, nil)
)

func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- bufferedDesc
	ch <- bufferLimitDesc
}

func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(bufferedDesc, prometheus.GaugeValue, float64(c.l.Buffered()))
	ch <- prometheus.MustNewConstMetric(bufferLimitDesc, prometheus.GaugeValue, float64(c.l.MaxBufferedBytes))
}
