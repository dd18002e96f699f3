// Package freeport finds free TCP ports on 127.0.0.1 for the components that tests and the
// programs under hack/ start.
package freeport

import (
	"fmt"
	"net"
)

// Ports returns n distinct ports that were free on 127.0.0.1 a moment ago. Another process may
// take one before the caller binds it; two runs on one machine still coexist because the kernel
// hands out ephemeral ports round-robin.
func Ports(n int) ([]int, error) {
	// Hold every listener until all ports are known, so the kernel cannot return one twice.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Port returns one port that was free on 127.0.0.1 a moment ago (see Ports).
func Port() (int, error) {
	ports, err := Ports(1)
	if err != nil {
		return 0, err
	}
	return ports[0], nil
}
