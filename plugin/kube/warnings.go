package kube

import (
	"context"
	"sync"

	"k8s.io/client-go/rest"
)

// WarningHandler passes the apiserver's warnings (admission warnings such as the webhook's
// "overcommit: ..." lines) to Print, unless the request's context carries a collector: then they
// belong to that request's answer (preview --server shows them per node).
type WarningHandler struct {
	Print rest.WarningHandler
}

var _ rest.WarningHandlerWithContext = WarningHandler{}

type warningsKey struct{}

// Warnings collects the warnings of the requests made with its context.
type Warnings struct {
	mu   sync.Mutex
	list []string
}

// List returns the warnings collected so far.
func (w *Warnings) List() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.list...)
}

// CollectWarnings returns a context whose requests' warnings go to the returned collector
// instead of the terminal.
func CollectWarnings(ctx context.Context) (context.Context, *Warnings) {
	w := &Warnings{}
	return context.WithValue(ctx, warningsKey{}, w), w
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (h WarningHandler) HandleWarningHeaderWithContext(ctx context.Context, code int, agent, text string) {
	if w, ok := ctx.Value(warningsKey{}).(*Warnings); ok {
		if code == 299 && text != "" {
			w.mu.Lock()
			w.list = append(w.list, text)
			w.mu.Unlock()
		}
		return
	}
	if h.Print != nil {
		h.Print.HandleWarningHeader(code, agent, text)
	}
}
