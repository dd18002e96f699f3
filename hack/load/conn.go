package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection over TLS that carries one request at a time, as
// each connection in the apiserver's webhook client pool does. It writes a request prepared
// once and parses the answer with net/http's own reader: the load generator shares the two
// cores with the webhook, so every microsecond it spends is one the webhook does not get, and
// http.Client's per-request machinery (a goroutine hand-off each way, header maps, buffers)
// costs about as much as the review itself.
type conn struct {
	addr    string
	cfg     *tls.Config
	tls     *tls.Conn
	r       *bufio.Reader
	request []byte
	body    bytes.Buffer
}

func dial(ctx context.Context, addr string, cfg *tls.Config, path string, review []byte) (*conn, error) {
	head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n",
		path, addr, len(review))
	c := &conn{addr: addr, cfg: cfg, request: append([]byte(head), review...)}
	return c, c.redial(ctx)
}

// redial replaces the connection: after an error its state is unknown.
func (c *conn) redial(ctx context.Context) error {
	if c.tls != nil {
		c.close()
	}
	d := tls.Dialer{Config: c.cfg}
	nc, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return fmt.Errorf("connecting to the webhook: %w", err)
	}
	c.tls = nc.(*tls.Conn)
	c.r = bufio.NewReaderSize(nc, 16<<10)
	return nil
}

// do sends the review and returns the response body, valid until the next call.
func (c *conn) do(timeout time.Duration) ([]byte, error) {
	if err := c.tls.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if _, err := c.tls.Write(c.request); err != nil {
		return nil, fmt.Errorf("sending: %w", err)
	}
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the response: %w", err)
	}
	c.body.Reset()
	_, err = c.body.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading the response body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(c.body.String()))
	}
	if resp.Close {
		return nil, fmt.Errorf("the webhook closed the keep-alive connection")
	}
	return c.body.Bytes(), nil
}

func (c *conn) close() {
	if c.tls != nil {
		_ = c.tls.Close()
	}
}

// dialAll opens n connections.
func dialAll(ctx context.Context, n int, addr string, cfg *tls.Config, path string, review []byte) ([]*conn, error) {
	conns := make([]*conn, 0, n)
	for range n {
		c, err := dial(ctx, addr, cfg, path, review)
		if err != nil {
			c.close()
			for _, c := range conns {
				c.close()
			}
			return nil, err
		}
		conns = append(conns, c)
	}
	return conns, nil
}
