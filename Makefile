# overcommit — build, test and run everything from a clean clone.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

# Evaluated once: every binary and archive of one make run carries the same version.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS := -X github.com/overcommit-dev/overcommit/shared/version.Version=$(VERSION)
BIN := $(CURDIR)/bin
GO ?= go

STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)/staticcheck
ACTIONLINT_VERSION := v1.7.12
ACTIONLINT := $(BIN)/actionlint-$(ACTIONLINT_VERSION)/actionlint

# Short fuzzing in `make test`: long enough to exercise the decoders, short enough for CI.
FUZZTIME ?= 10s

.PHONY: all help build test test-unit test-fuzz test-e2e lint tools demo bench load scale clean

all: build

help: ## List the targets and what each does.
	@awk -F ':.*## ' '/^[a-z][a-z0-9-]*:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build bin/overcommit-webhook and bin/kubectl-overcommit.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/overcommit-webhook ./webhook
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/kubectl-overcommit ./plugin
	install -m 0755 plugin/kubectl_complete-overcommit $(BIN)/kubectl_complete-overcommit

test: lint test-unit test-fuzz test-monitoring test-e2e test-krew test-image ## Everything CI runs.

test-unit: ## Unit and handler tests.
	$(GO) test -race -count=1 ./...

test-fuzz: ## Brief fuzzing of the review decoder, the JSON scanner, the template parser, the policy and the YAML writer.
	$(GO) test ./webhook/admission -run '^$$' -fuzz '^FuzzServeHTTP$$' -fuzztime $(FUZZTIME)
	$(GO) test ./webhook/jsonscan -run '^$$' -fuzz '^FuzzScanner$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/sidecar -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/policy -run '^$$' -fuzz '^FuzzCompute$$' -fuzztime $(FUZZTIME)
	$(GO) test ./plugin/output -run '^$$' -fuzz '^FuzzJSONToYAML$$' -fuzztime $(FUZZTIME)

test-e2e: build tools ## End-to-end tests against a local control plane (real kube-apiserver).
	$(GO) test -tags e2e -count=1 -timeout 25m ./test/e2e/... -args -bin-dir=$(BIN)

lint: $(STATICCHECK) $(ACTIONLINT) ## gofmt, go vet, staticcheck, actionlint (the CI and release workflows).
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(STATICCHECK) -tags e2e ./...
	$(ACTIONLINT) -no-color

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(ACTIONLINT):
	GOBIN=$(dir $@) $(GO) install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# promtool checks and unit-tests the alerting rules of deploy/components/monitoring. Its version
# is the one hack/tools/prometheus/go.mod pins (the module and go.sum it is built from); the
# binary is cached in bin/ per version, built next to its place and renamed so that an
# interrupted build never looks cached.
PROMTOOL_VERSION := $(shell awk '$$1 == "require" && $$2 == "github.com/prometheus/prometheus" { print $$3 }' hack/tools/prometheus/go.mod)
PROMTOOL := $(BIN)/promtool-$(PROMTOOL_VERSION)/promtool

$(PROMTOOL):
	mkdir -p $(dir $@)
	cd hack/tools/prometheus && CGO_ENABLED=0 GOFLAGS=-mod=readonly GOWORK=off \
		$(GO) build -trimpath -ldflags '-s -w' -o $@.tmp github.com/prometheus/prometheus/cmd/promtool
	mv -f $@.tmp $@

# The module downloads are the sources that declare the Kubernetes and controller-runtime metrics
# the rules read, which the test checks the names against.
.PHONY: test-monitoring
test-monitoring: $(PROMTOOL) ## promtool: check the monitoring component's alerting rules and run their unit tests.
	cd hack/tools && GOFLAGS=-mod=readonly GOWORK=off $(GO) mod download k8s.io/apiserver
	$(GO) mod download sigs.k8s.io/controller-runtime
	$(GO) test -count=1 ./deploy/components/monitoring -args -promtool=$(PROMTOOL)

tools: ## Build and cache the local control plane binaries in bin/ (once per version).
	hack/build-tools.sh

demo: build tools ## Run the demo on a local control plane. KEEP=1 leaves it running.
	$(GO) build -o $(BIN)/overcommit-demo ./hack/demo
	$(BIN)/overcommit-demo -bin-dir=$(BIN) $(if $(KEEP),-keep)

bench: ## Go benchmarks of the policy and both admission handlers (allocations included).
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./shared/... ./webhook/...

load: build tools ## Drive the webhook over TLS on loopback: flat out, then at the target rates.
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=node,pod
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=node -rate=2000
	$(GO) run ./hack/load -bin-dir=$(BIN) -kind=pod -rate=1000

scale: build tools ## 5,000 nodes and 150,000 pods: webhook memory and sync time, plugin timings, kubelet write cost.
	$(GO) run ./hack/scale -bin-dir=$(BIN)

# Release packaging. IMAGE is what deploy/ and `kubectl overcommit install --image` point at;
# KREW_VERSION must be semantic (krew requires it), so development builds get v0.0.0-dev-<describe>:
# the dev- prefix keeps an all-digit hash such as 0939244 from reading as a zero-prefixed number.
IMAGE ?= ghcr.io/overcommit-dev/overcommit-webhook:$(VERSION)
KREW_VERSION ?= $(if $(filter v%,$(VERSION)),$(VERSION),v0.0.0-dev-$(VERSION))
KREW_BASE_URL ?= https://github.com/overcommit-dev/overcommit/releases/download/$(KREW_VERSION)
KREW_PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
DIST := $(CURDIR)/dist

.PHONY: image test-image push-image krew test-krew

# The webhook image, built with no container engine (hack/image): static binaries, no base image,
# uid 65532, an OCI layout in dist/image and its digest in dist/image.digest. IMAGE_DIGEST, when
# set (the release sets it from dist/image.digest), is compiled into the plugin, whose `install`
# then references the image by digest.
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64
IMAGE_DIGEST ?=
PLUGIN_LDFLAGS := $(LDFLAGS)$(if $(IMAGE_DIGEST), -X github.com/overcommit-dev/overcommit/shared/version.ImageDigest=$(IMAGE_DIGEST))

image: ## Build the webhook image for IMAGE_PLATFORMS into dist/image (OCI layout; no Docker needed).
	rm -rf $(DIST)/image-bin
	for p in $(IMAGE_PLATFORMS); do \
		os=$${p%/*} arch=$${p#*/}; \
		echo "overcommit-webhook $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' \
			-o $(DIST)/image-bin/$${os}_$${arch}/overcommit-webhook ./webhook; \
	done
	$(GO) run ./hack/image -bin-dir $(DIST)/image-bin -out $(DIST)/image -digest-file $(DIST)/image.digest -version '$(VERSION)' \
		-platforms "$$(tr ' ' , <<<'$(strip $(IMAGE_PLATFORMS))')" -mtime "$$(git log -1 --format=%ct 2>/dev/null || echo 0)"

test-image: image ## Inspect dist/image: architectures, static binaries, entrypoint, non-root user, nothing else in it.
	$(GO) test -tags e2e -count=1 ./hack/image -args -image-dir=$(DIST)/image

push-image: image ## Push dist/image to $(IMAGE) and print the reference by digest.
	$(GO) run ./hack/image -bin-dir $(DIST)/image-bin -out $(DIST)/image -version '$(VERSION)' \
		-platforms "$$(tr ' ' , <<<'$(strip $(IMAGE_PLATFORMS))')" -mtime "$$(git log -1 --format=%ct 2>/dev/null || echo 0)" -push '$(IMAGE)'

krew: ## Build dist/kubectl-overcommit_<os>_<arch>.tar.gz for KREW_PLATFORMS and render dist/overcommit.yaml.
	rm -rf $(DIST)/bin
	for p in $(KREW_PLATFORMS); do \
		os=$${p%/*} arch=$${p#*/} ext=; \
		if [[ $$os == windows ]]; then ext=.exe; fi; \
		echo "kubectl-overcommit $$os/$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(PLUGIN_LDFLAGS) -s -w' \
			-o $(DIST)/bin/$${os}_$${arch}/kubectl-overcommit$$ext ./plugin; \
	done
	$(GO) run ./hack/krew -version '$(KREW_VERSION)' -base-url '$(KREW_BASE_URL)' -bin-dir $(DIST)/bin -out $(DIST) \
		-platforms "$$(tr ' ' , <<<'$(strip $(KREW_PLATFORMS))')" -mtime "$$(git log -1 --format=%ct 2>/dev/null || echo 0)"

# test-krew packages this machine's platform only (cross-compiling all six from a cold build cache
# costs about ten minutes); the manifest's shape for all six is validated with stand-in binaries.
HOST_PLATFORM := $(shell $(GO) env GOOS)/$(shell $(GO) env GOARCH)

test-krew: tools ## Package this platform into dist/host, validate the manifest (all six platforms' shape), install with krew, run through kubectl.
	$(MAKE) --no-print-directory krew KREW_PLATFORMS=$(HOST_PLATFORM) DIST=$(DIST)/host
	$(GO) test -tags e2e -count=1 -v ./hack/krew -args -krew-dist=$(DIST)/host -bin-dir=$(BIN)

clean: ## Remove bin/ (the cached control plane too) and dist/.
	rm -rf $(BIN) dist
