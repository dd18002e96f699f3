// Package version carries the build version of both binaries, set with -ldflags at build time.
package version

// Version is overwritten by `make build` (-X .../shared/version.Version=...).
var Version = "dev"

// ImageDigest is the digest ("sha256:...") of the webhook image released with this build, set by
// the release (`make release-plugin`), which computes it before building the plugin: the image is
// reproducible, so its digest is known before it is pushed. Empty in development builds.
var ImageDigest = ""
