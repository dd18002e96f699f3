#!/usr/bin/env bash
# Builds the local control-plane binaries from the Go module proxy into bin/, once per version.
#
# Each tool lands in bin/<tool>-<version>/<tool> and bin/<tool> is a relative symlink to it, so a
# second run finds every versioned binary present and only refreshes the symlinks. Versions come
# from the go.mod files under hack/tools/ (one module per upstream project, so each tool is built
# with the dependency set its own release was tested with).
#
# Usage: hack/build-tools.sh [tool...]   (no arguments: all tools)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$ROOT/bin}
TOOLS=$ROOT/hack/tools
GO=${GO:-go}

export CGO_ENABLED=0
# The tools modules carry their own go.sum; never let a developer's GOFLAGS=-mod=vendor or
# GOWORK reach them.
export GOFLAGS=-mod=readonly
export GOWORK=off

mkdir -p "$BIN"

log() { printf '[tools] %s\n' "$*"; }

# modversion DIR MODULE prints the version of MODULE selected by the go.mod in DIR.
modversion() {
	(cd "$1" && "$GO" list -m -f '{{.Version}}' "$2")
}

# link NAME VERSION points bin/NAME at the versioned binary.
link() {
	ln -sfn "$1-$2/$1" "$BIN/$1"
}

# build MODDIR NAME VERSION PACKAGE [LDFLAGS] builds one binary unless its versioned copy exists.
build() {
	local moddir=$1 name=$2 version=$3 pkg=$4 ldflags=${5:-}
	local dir=$BIN/$name-$version
	if [[ -z $version ]]; then
		log "$name: no version found in the tools module"
		return 1
	fi
	if [[ -x $dir/$name ]]; then
		log "$name $version: cached"
		link "$name" "$version"
		return
	fi
	log "$name $version: building $pkg ..."
	local start=$SECONDS tmp
	mkdir -p "$dir"
	# Build next to the target and rename, so an interrupted build never looks cached.
	tmp=$(mktemp "$dir/.$name.XXXXXX")
	if ! (cd "$moddir" && "$GO" build -trimpath -ldflags "-s -w $ldflags" -o "$tmp" "$pkg"); then
		rm -f "$tmp"
		log "$name $version: build FAILED"
		return 1
	fi
	mv -f "$tmp" "$dir/$name"
	link "$name" "$version"
	log "$name $version: built in $((SECONDS - start))s"
}

k8s_ldflags() {
	local v=$1 major minor flags=""
	major=${v#v}
	major=${major%%.*}
	minor=${v#v*.}
	minor=${minor%%.*}
	# Without these the binaries report v0.0.0-master+$Format:%H$, which clients cannot parse.
	for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		flags+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
	done
	printf '%s' "$flags"
}

build_kubernetes() {
	local v
	v=$(modversion "$TOOLS" k8s.io/kubernetes) || return 1
	local ld
	ld=$(k8s_ldflags "$v")
	# Largest first: the others reuse most of its compiled packages from the build cache.
	for name in kube-apiserver kube-controller-manager kube-scheduler kubemark kubectl; do
		want "$name" || continue
		build "$TOOLS" "$name" "$v" "k8s.io/kubernetes/cmd/$name" "$ld" || return 1
	done
}

build_etcd() {
	want etcd || return 0
	local v
	v=$(modversion "$TOOLS/etcd" go.etcd.io/etcd/server/v3) || return 1
	build "$TOOLS/etcd" etcd "$v" go.etcd.io/etcd/server/v3
}

build_kwok() {
	want kwok || return 0
	local v
	v=$(modversion "$TOOLS/kwok" sigs.k8s.io/kwok) || return 1
	build "$TOOLS/kwok" kwok "$v" sigs.k8s.io/kwok/cmd/kwok "-X sigs.k8s.io/kwok/pkg/consts.Version=$v" || return 1
	copy_kwok_stages "$v"
}

# copy_kwok_stages copies the stage, metric and resource-usage configs that ship in the kwok
# module (data, read by kwok --config) next to the binary: bin/kwok-<ver>/stages/.
copy_kwok_stages() {
	local v=$1 src dst=$BIN/kwok-$1/stages
	if [[ -f $dst/.complete ]]; then
		return
	fi
	# The build above downloaded the module, so go list knows its directory.
	src=$(cd "$TOOLS/kwok" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok) || return 1
	if [[ -z $src || ! -d $src/kustomize ]]; then
		log "kwok $v: cannot find the kwok module in the module cache"
		return 1
	fi
	rm -rf "$dst"
	mkdir -p "$dst" || return 1
	local f
	for f in \
		stage/node/fast/node-initialize.yaml \
		stage/node/heartbeat/node-heartbeat.yaml \
		stage/pod/fast/pod-ready.yaml \
		stage/pod/fast/pod-complete.yaml \
		stage/pod/fast/pod-delete.yaml \
		metrics/resource/metrics-resource.yaml \
		metrics/usage/usage-from-annotation.yaml; do
		# Module cache files are read-only; the copies need not be.
		install -m 0644 "$src/kustomize/$f" "$dst/$(basename "$f")" || return 1
	done
	touch "$dst/.complete" || return 1
	log "kwok $v: stage configs copied to ${dst#"$ROOT"/}"
}

build_metrics_server() {
	want metrics-server || return 0
	local v
	v=$(modversion "$TOOLS/metrics-server" sigs.k8s.io/metrics-server) || return 1
	build "$TOOLS/metrics-server" metrics-server "$v" sigs.k8s.io/metrics-server/cmd/metrics-server \
		"-X k8s.io/client-go/pkg/version.gitVersion=$v"
}

build_krew() {
	local v
	v=$(modversion "$TOOLS/krew" sigs.k8s.io/krew) || return 1
	for name in krew validate-krew-manifest; do
		want "$name" || continue
		build "$TOOLS/krew" "$name" "$v" "sigs.k8s.io/krew/cmd/$name" "-X sigs.k8s.io/krew/internal/version.gitTag=$v" || return 1
	done
}

ALL=(kube-apiserver kube-controller-manager kube-scheduler kubemark kubectl etcd kwok metrics-server krew validate-krew-manifest)
WANT=("$@")
if [[ ${#WANT[@]} -eq 0 ]]; then
	WANT=("${ALL[@]}")
fi
for w in "${WANT[@]}"; do
	if [[ " ${ALL[*]} " != *" $w "* ]]; then
		echo "unknown tool $w; known: ${ALL[*]}" >&2
		exit 2
	fi
done
want() { [[ " ${WANT[*]} " == *" $1 "* ]]; }

start=$SECONDS
# Two lanes: the kubernetes binaries (kube-apiserver alone is about 4.5 minutes of compiling on 2
# cores) and the other modules. go build already keeps both cores busy while compiling, but each
# link is mostly single-threaded; a second lane fills those gaps. More lanes only add memory.
# Job control gives the lane its own process group, so an interrupt can stop all of it.
set -m
build_kubernetes &
k8s_lane=$!
set +m
trap 'kill -TERM -- "-$k8s_lane" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
others_ok=0
build_etcd && build_kwok && build_metrics_server && build_krew || others_ok=$?
k8s_ok=0
wait "$k8s_lane" || k8s_ok=$?
if [[ $others_ok -ne 0 || $k8s_ok -ne 0 ]]; then
	log "some tools failed to build (see above)"
	exit 1
fi
log "all tools ready in $((SECONDS - start))s (bin: ${BIN})"
