# syntax=docker/dockerfile:1
# overcommit-webhook: a static binary on distroless/static:nonroot (no shell, no libc, uid 65532).
# Build with `make image`; cross-builds for multi-arch images go through BuildKit's TARGETOS and
# TARGETARCH, so the compiler always runs natively on the build host.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first: this layer stays cached while only our sources change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY shared/ shared/
COPY webhook/ webhook/
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
	go build -trimpath -ldflags "-s -w -X github.com/overcommit-dev/overcommit/shared/version.Version=${VERSION}" \
	-o /out/overcommit-webhook ./webhook

FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.source="https://github.com/overcommit-dev/overcommit" \
	org.opencontainers.image.title="overcommit-webhook" \
	org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/overcommit-webhook /overcommit-webhook
# Numeric, so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/overcommit-webhook"]
