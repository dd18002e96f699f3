package main

import (
	"net/http"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// livenessCheck is the webhook server's TLS check (a handshake with the serving certificate) once
// the server has been started (serving closed), and passes before: a replica still waiting for
// its certificate is not ready, but restarting it would not bring the certificate sooner. A
// server that stopped answering TLS after it started fails the liveness probe and the kubelet
// restarts the container.
func livenessCheck(serving <-chan struct{}, tlsCheck healthz.Checker) healthz.Checker {
	return func(req *http.Request) error {
		select {
		case <-serving:
			return tlsCheck(req)
		default:
			return nil
		}
	}
}
