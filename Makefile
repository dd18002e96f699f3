# overcommit — build, test and run everything from a clean clone.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/overcommit-dev/overcommit/shared/version.Version=$(VERSION)
BIN := $(CURDIR)/bin
GO ?= go

STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)/staticcheck

# Short fuzzing in `make test`: long enough to exercise the decoders, short enough for CI.
FUZZTIME ?= 10s

.PHONY: all build test test-unit test-fuzz test-e2e lint tools demo bench load scale clean

all: build

build: ## Build bin/overcommit-webhook and bin/kubectl-overcommit.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/overcommit-webhook ./webhook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-overcommit ./plugin
	install -m 0755 plugin/kubectl_complete-overcommit $(BIN)/kubectl_complete-overcommit

test: lint test-unit test-fuzz test-e2e ## Everything CI runs.

test-unit: ## Unit and handler tests.
	$(GO) test -race -count=1 ./...

test-fuzz: ## Brief fuzzing of the admission decoders.
	$(GO) test ./webhook/admission -run '^$$' -fuzz '^FuzzServeHTTP$$' -fuzztime $(FUZZTIME)

test-e2e: build tools ## End-to-end tests against a local control plane (real kube-apiserver).
	$(GO) test -tags e2e -count=1 -timeout 25m ./test/e2e/... -args -bin-dir=$(BIN)

lint: $(STATICCHECK) ## gofmt, go vet, staticcheck.
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(STATICCHECK) -tags e2e ./...

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

tools: ## Build and cache the local control plane binaries in bin/ (once per version).
	hack/build-tools.sh

demo: build tools ## Run the demo on a local control plane. KEEP=1 leaves it running.
	$(GO) run ./hack/demo -bin-dir=$(BIN) $(if $(KEEP),-keep)

bench: ## Go benchmarks of the policy and both admission handlers (allocations included).
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./shared/... ./webhook/...

load: build tools ## Drive the webhook over TLS on loopback: flat out, then at the target rates.
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=node,pod
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=node -rate=2000
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=pod -rate=1000

scale: build tools ## 5,000 nodes and 150,000 pods: webhook memory and sync time, plugin timings, kubelet write cost.
	$(GO) run ./hack/scale -bin-dir=$(BIN)

clean:
	rm -rf $(BIN) dist
