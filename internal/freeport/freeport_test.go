package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestPorts: the ports are distinct and each can be bound right after.
func TestPorts(t *testing.T) {
	for _, n := range []int{0, 1, 8} {
		ports, err := Ports(n)
		if err != nil {
			t.Fatalf("Ports(%d): %v", n, err)
		}
		if len(ports) != n {
			t.Fatalf("Ports(%d): %d ports", n, len(ports))
		}
		seen := map[int]bool{}
		for _, p := range ports {
			if p <= 0 || seen[p] {
				t.Fatalf("Ports(%d) = %v: zero or repeated port", n, ports)
			}
			seen[p] = true
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				t.Fatalf("port %d of Ports(%d) is not free: %v", p, n, err)
			}
			l.Close()
		}
	}
}

func TestPort(t *testing.T) {
	p, err := Port()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}
