package admission

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Server limits. controller-runtime's webhook server fixes its own (headers may take 32 s and
// 1 MiB, bodies have no deadline) and lets none be changed, so the webhook runs this one.
const (
	// serverReadHeaderTimeout also bounds the TLS handshake (net/http uses the smallest
	// read/write timeout for it).
	serverReadHeaderTimeout = 10 * time.Second
	// serverMaxHeaderBytes: the apiserver sends a handful of short headers.
	serverMaxHeaderBytes = 64 << 10
	// serverIdleTimeout matches the apiserver's client keep-alive.
	serverIdleTimeout = 90 * time.Second
	// serverWriteTimeout bounds a response to a client that does not read it; longer than the
	// apiserver's largest webhook timeout (30 s).
	serverWriteTimeout = 35 * time.Second
	// shutdownGrace is how long in-flight reviews may finish when the server stops.
	shutdownGrace = 30 * time.Second
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Host and Port are where the server listens; an empty Host means all interfaces.
	Host string
	Port int
	// CertDir holds tls.crt and tls.key, reloaded whenever they change.
	CertDir string
	// ClientCAFile, when set, makes the server require a client certificate signed by one of
	// the PEM CAs in it (the apiserver's AdmissionConfiguration kubeconfig presents one). A
	// client without one is refused during the TLS handshake, before any HTTP is read. The file
	// is re-read when it changes.
	ClientCAFile string
	// TLSOpts adjust the TLS configuration (minimum version, ALPN).
	TLSOpts []func(*tls.Config)
	Log     *slog.Logger
}

// Server serves the webhooks over TLS.
type Server struct {
	o   ServerOptions
	mux *http.ServeMux

	mu   sync.Mutex
	addr string // set once listening

	clientCAs *clientCAs
}

// NewServer returns a Server; register handlers, then Start it.
func NewServer(o ServerOptions) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Server{o: o, mux: http.NewServeMux()}
}

// Register serves h on path.
func (s *Server) Register(path string, h http.Handler) { s.mux.Handle(path, h) }

// Addr is the address the server listens on, once it does ("" before).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Start listens and serves until ctx ends, then lets in-flight reviews finish.
func (s *Server) Start(ctx context.Context) error {
	cw, err := certwatcher.New(filepath.Join(s.o.CertDir, "tls.crt"), filepath.Join(s.o.CertDir, "tls.key"))
	if err != nil {
		return fmt.Errorf("loading the serving certificate from %s: %w", s.o.CertDir, err)
	}
	go func() {
		if err := cw.Start(ctx); err != nil {
			s.o.Log.Error("watching the serving certificate", "err", err)
		}
	}()
	cfg := &tls.Config{GetCertificate: cw.GetCertificate, NextProtos: []string{"h2", "http/1.1"}}
	if s.o.ClientCAFile != "" {
		s.clientCAs = &clientCAs{file: s.o.ClientCAFile}
		if _, err := s.clientCAs.pool(); err != nil {
			return err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		// Each handshake takes the pool as the file is now, so a rotated CA needs no restart.
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pool, err := s.clientCAs.pool()
			if err != nil {
				s.o.Log.Error("reading the client CA", "file", s.o.ClientCAFile, "err", err)
				return nil, err
			}
			c := cfg.Clone()
			c.GetConfigForClient = nil
			c.ClientCAs = pool
			return c, nil
		}
	}
	for _, opt := range s.o.TLSOpts {
		opt(cfg)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.o.Host, strconv.Itoa(s.o.Port)))
	if err != nil {
		return fmt.Errorf("listening for webhook requests: %w", err)
	}
	srv := &http.Server{
		Handler:           s.mux,
		TLSConfig:         cfg,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		IdleTimeout:       serverIdleTimeout,
		WriteTimeout:      serverWriteTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug),
	}
	if !containsH2(cfg.NextProtos) {
		// An empty, non-nil map is how net/http is told not to serve HTTP/2.
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.o.Log.Info("serving webhooks", "addr", ln.Addr().String(), "clientCertificates", s.o.ClientCAFile != "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			s.o.Log.Error("shutting down the webhook server", "err", err)
		}
	}()
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving webhooks: %w", err)
	}
	<-done
	return nil
}

func containsH2(protos []string) bool {
	for _, p := range protos {
		if p == "h2" {
			return true
		}
	}
	return false
}

// StartedChecker passes once the server completes TLS handshakes with its serving certificate:
// it dials the server as a client would. With client certificates required it checks that the
// server asked for one; it presents none, so the server closes the connection, which is why the
// check never sends a request.
func (s *Server) StartedChecker() healthz.Checker {
	return func(req *http.Request) error {
		addr := s.Addr()
		if addr == "" {
			return errors.New("the webhook server is not listening yet")
		}
		asked := false
		cfg := &tls.Config{
			// The check proves the server answers TLS with a certificate; whom it names is for
			// the apiserver to verify against the caBundle.
			InsecureSkipVerify: true, //nolint:gosec // see above
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				return &tls.Certificate{}, nil
			},
		}
		ctx := context.Background()
		if req != nil {
			ctx = req.Context()
		}
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("the webhook server does not complete a TLS handshake: %w", err)
		}
		defer conn.Close()
		if len(conn.(*tls.Conn).ConnectionState().PeerCertificates) == 0 {
			return errors.New("the webhook server presented no certificate")
		}
		if s.o.ClientCAFile != "" && !asked {
			return errors.New("the webhook server did not ask for a client certificate")
		}
		return nil
	}
}

// clientCAs is the client CA pool, re-read when its file changes.
type clientCAs struct {
	file string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	cached  *x509.CertPool
}

func (c *clientCAs) pool() (*x509.CertPool, error) {
	st, err := os.Stat(c.file)
	if err != nil {
		return nil, fmt.Errorf("reading the client CA: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && st.ModTime().Equal(c.modTime) && st.Size() == c.size {
		return c.cached, nil
	}
	data, err := os.ReadFile(c.file)
	if err != nil {
		return nil, fmt.Errorf("reading the client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		if c.cached != nil {
			// A file caught mid-write: keep the CAs that worked until it is whole.
			return c.cached, nil
		}
		return nil, fmt.Errorf("the client CA file %s holds no PEM certificate", c.file)
	}
	c.cached, c.modTime, c.size = pool, st.ModTime(), st.Size()
	return pool, nil
}
