package admission

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/overcommit-dev/overcommit/shared/jsonappend"
)

// MaxRequestBytes bounds a request body. The apiserver caps objects at 1.5 MiB in etcd, and a
// review carries the object twice (object and oldObject) plus a little framing.
const MaxRequestBytes = 3 << 20

// Webhook serves one admission path.
type Webhook struct {
	// Name labels metrics and logs ("node", "pod").
	Name    string
	Handler Handler
	Metrics *Metrics
	Log     *slog.Logger
	// OnPanic answers a request whose handler panicked. The node webhook must never block a
	// write, so it allows; nil denies.
	OnPanic func(req *Request) Response
	// Limits bound the time and memory request bodies cost; nil shares the process-wide
	// defaults (NewLimits).
	Limits *Limits
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putBuffer returns a buffer to the pool unless one huge request grew it: that memory should go
// back to the heap rather than stay pinned.
func putBuffer(b *bytes.Buffer) {
	if b.Cap() <= 256<<10 {
		bufPool.Put(b)
	}
}

// ServeHTTP reads an AdmissionReview, calls the handler and writes the response. Problems with
// the HTTP request itself get an HTTP error: the apiserver then applies the failure policy.
func (wh *Webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	outcome := OutcomeBadRequest
	var warnings int
	defer func() {
		wh.Metrics.requests.WithLabelValues(wh.Name, outcome).Inc()
		wh.Metrics.duration.WithLabelValues(wh.Name).Observe(time.Since(start).Seconds())
		if warnings > 0 {
			wh.Metrics.warnings.WithLabelValues(wh.Name).Add(float64(warnings))
		}
	}()

	lim := wh.Limits
	if lim == nil {
		lim = defaultLimits
	}
	// The request's object is a slice of the body's buffer: its bytes stay charged, and the
	// buffer goes back to the pool, only after the response is written.
	br := lim.newBodyReader(w, r)
	defer br.release()
	body, req, status, err := readRequest(r, br)
	defer putBody(body)
	if err != nil {
		switch status {
		case http.StatusServiceUnavailable:
			outcome = OutcomeOverloaded
		case http.StatusRequestTimeout:
			outcome = OutcomeTimeout
		}
		wh.Log.Info("rejecting admission request", "webhook", wh.Name, "status", status, "err", err, "remote", r.RemoteAddr)
		// No Retry-After: with one, the apiserver's client would retry within the webhook's
		// timeout and hold a node's status write that long; without, failurePolicy applies at
		// once (Ignore for nodes: the write is stored as sent).
		http.Error(w, err.Error(), status)
		return
	}

	resp := wh.handle(r.Context(), req)
	outcome, warnings = resp.outcome(), len(resp.Warnings)
	if err := writeResponse(w, req, resp); err != nil {
		wh.Log.Error("writing admission response", "webhook", wh.Name, "uid", req.UID, "err", err)
	}
}

// handle calls the handler, turning a panic into an answer instead of a dropped connection.
func (wh *Webhook) handle(ctx context.Context, req *Request) (resp Response) {
	defer func() {
		if p := recover(); p != nil {
			wh.Log.Error("admission handler panicked", "webhook", wh.Name, "uid", req.UID, "name", req.Name, "panic", fmt.Sprint(p))
			if wh.OnPanic != nil {
				resp = wh.OnPanic(req)
			} else {
				resp = Denied(500, fmt.Sprintf("overcommit %s webhook: internal error", wh.Name))
			}
			resp.Outcome = OutcomePanic
		}
	}()
	return wh.Handler.Handle(ctx, req)
}

// review is the envelope of an AdmissionReview as it arrives.
type review struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Request    *Request `json:"request"`
}

var errBodyTooLarge = fmt.Errorf("request body exceeds %d bytes", MaxRequestBytes)

// readRequest validates and decodes the HTTP request. It returns the body (for putBody) and an
// HTTP status with any error.
func readRequest(r *http.Request, br *bodyReader) ([]byte, *Request, int, error) {
	if r.Method != http.MethodPost {
		return nil, nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed: admission reviews are POSTed", r.Method)
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q not supported: want application/json", ct)
	}
	if r.ContentLength > MaxRequestBytes {
		return nil, nil, http.StatusRequestEntityTooLarge, errBodyTooLarge
	}
	// One byte past the length tells a body over the limit (sent chunked) from one at it.
	limit := MaxRequestBytes + 1
	if r.ContentLength >= 0 {
		limit = int(r.ContentLength) + 1
	}
	body, err := br.read(limit)
	br.doneReading()
	switch {
	case errors.Is(err, errOverloaded):
		return nil, nil, http.StatusServiceUnavailable, err
	case errors.Is(err, errBodyTimeout):
		return nil, nil, http.StatusRequestTimeout, err
	case err != nil:
		return nil, nil, http.StatusBadRequest, fmt.Errorf("reading request body: %w", err)
	case len(body) > MaxRequestBytes:
		return body, nil, http.StatusRequestEntityTooLarge, errBodyTooLarge
	case len(body) == 0:
		return body, nil, http.StatusBadRequest, errors.New("empty request body: want an AdmissionReview")
	}
	rev, err := decodeReview(body)
	if err != nil {
		return body, nil, http.StatusBadRequest, fmt.Errorf("malformed AdmissionReview: %w", err)
	}
	if rev.APIVersion != admissionv1.SchemeGroupVersion.String() || rev.Kind != "AdmissionReview" {
		return body, nil, http.StatusBadRequest, fmt.Errorf("unsupported %q %q: only admission.k8s.io/v1 AdmissionReview is served (set admissionReviewVersions: [v1])", rev.APIVersion, rev.Kind)
	}
	if rev.Request == nil {
		return body, nil, http.StatusBadRequest, errors.New("AdmissionReview has no request")
	}
	if rev.Request.UID == "" {
		return body, nil, http.StatusBadRequest, errors.New("AdmissionReview request has no uid")
	}
	return body, rev.Request, http.StatusOK, nil
}

func isJSON(contentType string) bool {
	if contentType == "application/json" {
		return true // what the apiserver sends; parsing it costs a map per request
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func writeResponse(w http.ResponseWriter, req *Request, resp Response) error {
	buf := bufPool.Get().(*bytes.Buffer)
	defer putBuffer(buf)
	buf.Reset()
	out, err := appendReview(buf.AvailableBuffer(), req.UID, resp)
	if err != nil {
		http.Error(w, "encoding response", http.StatusInternalServerError)
		return fmt.Errorf("encoding response: %w", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// A length, not chunked encoding: a patch response is larger than net/http's 2 KB buffer.
	h.Set("Content-Length", strconv.Itoa(len(out)))
	_, err = w.Write(out)
	buf.Write(out) // keeps an answer that outgrew the buffer's memory for the next one
	return err
}

// appendReview writes the AdmissionReview answer as encoding/json writes an
// admissionv1.AdmissionReview, by hand: it is a handful of fields on every review, and
// reflection over the API types cost more than the node policy itself.
func appendReview(b []byte, uid types.UID, resp Response) ([]byte, error) {
	b = append(b, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","response":{"uid":`...)
	b = jsonappend.String(b, string(uid))
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, resp.Allowed)
	if resp.Status != nil {
		raw, err := json.Marshal(resp.Status)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"status":`...)
		b = append(b, raw...)
	}
	if len(resp.Patch) > 0 {
		b = append(b, `,"patch":"`...)
		b = base64.StdEncoding.AppendEncode(b, resp.Patch)
		b = append(b, `","patchType":"JSONPatch"`...)
	}
	if len(resp.Warnings) > 0 {
		b = append(b, `,"warnings":[`...)
		for i, w := range resp.Warnings {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonappend.String(b, w)
		}
		b = append(b, ']')
	}
	return append(b, "}}\n"...), nil
}
