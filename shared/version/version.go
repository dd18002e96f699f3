// Package version carries the build version of both binaries, set with -ldflags at build time.
package version

// Version is overwritten by `make build` (-X .../shared/version.Version=...).
var Version = "dev"
