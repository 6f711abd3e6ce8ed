#!/usr/bin/env bash
# Build (or reuse) the test control plane's binaries and print the directory that holds them:
#   kube-apiserver  built from tools/k8s (k8s.io/kubernetes, pinned in tools/k8s/go.mod), version stamped, and from
#   kube-controller-manager, kube-scheduler, kubelet   the same module, for the test node (control-plane up --node)
#   helm            built from tools/helm (helm.sh/helm/v3, pinned in tools/helm/go.mod), kube version stamped
#   etcd            copied from the etcd-bin-vendored-linux-amd64 crate (a dev-dependency in Cargo.toml)
#   promtool        built from tools/promtool (github.com/prometheus/prometheus, pinned), for the alerts' unit tests
#   pause.tar       the node's sandbox image (docker-archive, its name in pause.image): Kubernetes' own pause.c from
#                   the same module, compiled static with gcc, in a FROM scratch image built with podman
# into ${XDG_CACHE_HOME:-~/.cache}/dcs-migration-operator/k8s-<version>/ behind a stamp file (Kubernetes, helm and
# etcd versions, `go version`, hashes of the wrapper go.mod/go.sum files and of this script), so that a warm run
# builds nothing. Called by `scripts/control-plane build` (and `make control-plane`).
#
#   tools/build.sh            build if needed; print the binary dir on stdout
#   tools/build.sh --check    build nothing; print the binary dir if it is complete and current, else exit 3
#
# Environment: DCS_CONTROL_PLANE_CACHE overrides the cache root; GOFLAGS/GOPROXY as usual. Progress goes to stderr.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0

# No `producer | head -n1` in this script: under pipefail, head exiting first kills the producer with SIGPIPE and
# the pipeline fails with 141 at random (a cold `make demo` failed about one time in eight). Producers stop
# themselves (sed's q) or the whole output is read first.
mod_version() { # module go.mod → version of a required module (the first require line)
  sed -n "s#^[[:space:]]*\(require[[:space:]]\{1,\}\)\{0,1\}$2[[:space:]]\{1,\}\(v[^[:space:]]*\).*#\2#;T;p;q" "$1"
}
k8s_version=$(mod_version "$repo/tools/k8s/go.mod" 'k8s\.io/kubernetes')
helm_version=$(mod_version "$repo/tools/helm/go.mod" 'helm\.sh/helm/v3')
[[ $k8s_version =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || { echo "cannot read the k8s.io/kubernetes version from tools/k8s/go.mod" >&2; exit 1; }
k8s_minor=${BASH_REMATCH[1]}
[[ -n $helm_version ]] || { echo "cannot read the helm version from tools/helm/go.mod" >&2; exit 1; }
# The etcd crate version, from Cargo.lock (cheap; `cargo metadata` only runs when etcd must be copied).
etcd_version() {
  awk '/^name = "etcd-bin-vendored-linux-amd64"$/ {getline; gsub(/version = |"/, ""); print; exit}' "$repo/Cargo.lock" 2>/dev/null || true
}

cache_root=${DCS_CONTROL_PLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dcs-migration-operator}
bin_dir="$cache_root/k8s-$k8s_version"
make_stamp() {
  echo "kubernetes $k8s_version"
  echo "helm $helm_version"
  echo "etcd $(etcd_version)"
  go version
  (cd "$repo" && sha256sum tools/k8s/go.mod tools/k8s/go.sum tools/helm/go.mod tools/helm/go.sum tools/promtool/go.mod \
    tools/promtool/go.sum tools/build.sh)
  echo "gcc $(gcc -dumpfullversion 2>/dev/null)"
}
stamp=$(make_stamp)
k8s_commands=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
binaries=("${k8s_commands[@]}" etcd helm promtool)

current() {
  [[ -f $bin_dir/stamp && $(cat "$bin_dir/stamp") == "$stamp" ]] || return 1
  local b; for b in "${binaries[@]}"; do [[ -x $bin_dir/$b ]] || return 1; done
  [[ -s $bin_dir/pause.tar && -s $bin_dir/pause.image ]]
}
if current; then echo "$bin_dir"; exit 0; fi
if [[ ${1:-} == --check ]]; then
  echo "the control-plane binaries in $bin_dir are missing or stale: run \`make control-plane\`" >&2
  exit 3
fi

mkdir -p "$bin_dir"
exec 9>"$bin_dir/.build.lock"
flock 9 # another build of the same version: wait for it, then reuse its result
if current; then echo "$bin_dir"; exit 0; fi
rm -f "$bin_dir/stamp"
log() { echo "control-plane build: $*" >&2; }
timed() { local t0=$SECONDS; "$@"; log "  took $((SECONDS - t0))s"; }

# kube-apiserver. The replace list must still be the one derived from Kubernetes' go.mod.
"$repo/tools/k8s/update-go-mod.sh" --check
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done
log "downloading modules for kube-apiserver $k8s_version"
(cd "$repo/tools/k8s" && timed go mod download) # no-op when GOMODCACHE is warm
log "compiling ${k8s_commands[*]} $k8s_version (cold GOCACHE on 2 cores: about 3-6 min for kube-apiserver, more for the
  node's binaries; seconds with a warm one)"
rm -rf "$bin_dir/.k8s.tmp"; mkdir -p "$bin_dir/.k8s.tmp"
(cd "$repo/tools/k8s" && timed nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags "$ldflags" \
  -o "$bin_dir/.k8s.tmp/" "${k8s_commands[@]/#/k8s.io/kubernetes/cmd/}")
for b in "${k8s_commands[@]}"; do mv -f "$bin_dir/.k8s.tmp/$b" "$bin_dir/$b"; done
rmdir "$bin_dir/.k8s.tmp"

# helm, with its default .Capabilities.KubeVersion set from its client-go minor (as helm's own Makefile does).
client_go=$(cd "$repo/tools/helm" && go list -mod=readonly -m -f '{{.Version}}' k8s.io/client-go)
[[ $client_go =~ ^v0\.([0-9]+)\. ]] || { echo "unexpected k8s.io/client-go version in tools/helm: $client_go" >&2; exit 1; }
helm_k8s_minor=${BASH_REMATCH[1]}
ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$helm_k8s_minor"
done
# One Go tool from its wrapper module under tools/: go_tool MODULE_DIR NAME PACKAGE LDFLAGS.
go_tool() {
  local module=$1 name=$2 package=$3 flags=$4
  log "downloading modules for $name"
  (cd "$repo/tools/$module" && timed go mod download)
  log "compiling $name"
  (cd "$repo/tools/$module" && timed nice -n 10 go build -mod=readonly -buildvcs=false -trimpath -ldflags "$flags" \
    -o "$bin_dir/$name.tmp" "$package")
  mv -f "$bin_dir/$name.tmp" "$bin_dir/$name"
}
log "helm $helm_version (kube version 1.$helm_k8s_minor)"
go_tool helm helm helm.sh/helm/v3/cmd/helm "$ldflags"

# promtool (no replace lines upstream: a wrapper module pins the version).
go_tool promtool promtool github.com/prometheus/prometheus/cmd/promtool "-s -w"

# etcd: the static binary shipped in the etcd-bin-vendored-linux-amd64 crate's source.
log "locating etcd (crate etcd-bin-vendored-linux-amd64) with cargo metadata"
metadata=$(cd "$repo" && cargo metadata --format-version 1)
manifest_re='"manifest_path":"([^"]*/etcd-bin-vendored-linux-amd64-[0-9][^"/]*/Cargo.toml)"'
manifest=""
[[ $metadata =~ $manifest_re ]] && manifest=${BASH_REMATCH[1]}
[[ -n $manifest && -x $(dirname "$manifest")/bin/etcd ]] || {
  echo "no bin/etcd found via cargo metadata: is etcd-bin-vendored-linux-amd64 in Cargo.toml's [dev-dependencies]?" >&2
  exit 1
}
cp -f "$(dirname "$manifest")/bin/etcd" "$bin_dir/etcd.tmp"
mv -f "$bin_dir/etcd.tmp" "$bin_dir/etcd"

# The sandbox image, from the same module's build/pause (no registry: the node never pulls).
log "building the sandbox image (pause.c, gcc -static, podman)"
if ! command -v gcc >/dev/null || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null ||
    { echo "the sandbox image needs gcc, podman and runc (Debian: apt-get install gcc libc6-dev podman runc)" >&2; exit 1; }
  log "installing gcc, podman and runc from Debian"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev podman runc >&2
fi
pause_image=localhost/dcs-control-plane/pause:$k8s_version
pause_src=$(cd "$repo/tools/k8s" && go list -mod=readonly -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c
pause_ctx=$bin_dir/.pause.tmp
rm -rf "$pause_ctx"; mkdir -p "$pause_ctx"
gcc -Os -Wall -Werror -static -DVERSION="$k8s_version" -o "$pause_ctx/pause" "$pause_src"
printf '%s\n' 'FROM scratch' 'COPY pause /pause' 'USER 65535:65535' 'ENTRYPOINT ["/pause"]' > "$pause_ctx/Containerfile"
read -r -a podman <<< "$("$repo/tools/image.sh" --podman-command)"
"${podman[@]}" build --pull=never --network=none -q -t "$pause_image" "$pause_ctx" >&2
rm -f "$bin_dir/pause.tar.tmp"
"${podman[@]}" save --format docker-archive -o "$bin_dir/pause.tar.tmp" "$pause_image" >&2
"${podman[@]}" rmi "$pause_image" >/dev/null
mv -f "$bin_dir/pause.tar.tmp" "$bin_dir/pause.tar"
echo "$pause_image" > "$bin_dir/pause.image"
rm -rf "$pause_ctx"

for b in "${k8s_commands[@]}"; do "$bin_dir/$b" --version >&2; done
etcd_banner=$("$bin_dir/etcd" --version)
echo "${etcd_banner%%$'\n'*}" >&2
"$bin_dir/helm" version --short >&2
"$bin_dir/promtool" --version >&2
make_stamp > "$bin_dir/stamp" # again: cargo metadata may just have added etcd to Cargo.lock
echo "$bin_dir"
