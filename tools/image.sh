#!/usr/bin/env bash
# Build the shipped image (Dockerfile) with podman, with no registry pull, and save it as a docker-archive:
#   dcs-migration-operator:<crate version>  →  target/image/dcs-migration-operator.tar
# (`make image`). Installs podman and runc from Debian when missing (as root). Prints the archive's path.
#
# The binary is a static glibc build on the host (no musl target can be installed here), in its own target
# directory (target/x86_64-unknown-linux-gnu/release: RUSTFLAGS with --target leave the normal builds alone).
#
# podman on these machines: the runc runtime (crun fails on the hybrid cgroup layout), cgroupfs (systemd is not
# pid 1), file events (no journald), and explicit ulimits for containers (root lacks CAP_SYS_RESOURCE: the nofile
# hard limit is 20000 and podman's default 1048576 fails; nproc likewise). `podman_cmd` prints that podman command
# line, for the tests that run the image.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
name=dcs-migration-operator
target=x86_64-unknown-linux-gnu

podman_cmd() {
  echo podman --runtime runc --cgroup-manager cgroupfs --events-backend file
}
if [[ ${1:-} == --podman-command ]]; then podman_cmd; exit 0; fi

log() { echo "image: $*" >&2; }

if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  log "installing podman and runc from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman runc ca-certificates >&2
fi
ca=/etc/ssl/certs/ca-certificates.crt
[[ -s $ca ]] || { log "no CA bundle at $ca (Debian's ca-certificates)"; exit 1; }

version=$(cd "$repo" && cargo metadata --format-version 1 --no-deps --offline |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "'$name'"))')

log "building the static release binary ($target, +crt-static)"
(cd "$repo" && RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --target "$target" --bin "$name")
binary=$repo/target/$target/release/$name
# Static: no program interpreter, so it runs in an image with no libc.
headers=$(readelf -l "$binary")
if [[ $headers == *"program interpreter"* ]]; then
  log "$binary is dynamically linked"; exit 1
fi

out=$repo/target/image
context=$out/context
rm -rf "$context"; mkdir -p "$context"
# Without its symbol table (2.4 of 13.8 MB): panics keep their messages, backtraces lose function names.
strip -o "$context/$name" "$binary"
cp "$ca" "$repo"/image/{passwd,group,nsswitch.conf} "$context/"

read -r -a podman <<< "$(podman_cmd)"
log "podman build $name:$version"
"${podman[@]}" build --pull=never --network=none --build-arg "VERSION=$version" -f "$repo/Dockerfile" \
  -t "$name:$version" "$context" >&2
rm -f "$out/$name.tar"
"${podman[@]}" save --format docker-archive -o "$out/$name.tar" "$name:$version" >&2
log "$name:$version: $(du -h "$out/$name.tar" | cut -f1) archive, $("${podman[@]}" image inspect --format '{{.Size}}' "$name:$version") bytes"
echo "$out/$name.tar"
