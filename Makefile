# dcs-migration-operator — every entry point a user or CI needs.
#   make demo        control plane + DCS simulator + operator, examples applied until Ready (make demo-down stops it)
#   make test        every test (CI runs exactly this)
#   make image       the shipped container image, saved as target/image/dcs-migration-operator.tar
#   make control-plane   build/reuse kube-apiserver, etcd and helm for the tests (cached)
#   make bench       the benchmarks (long: the operator at 100 and 1,000 beside a Kopf peer, 2,000 imports, 10,000)
#   make chaos       the long chaos suite (make test runs a short form)
#   make crds        regenerate crds/ from the Rust types (a test fails when they drift)

SHELL := /bin/bash
CACHE_DIR ?= $(HOME)/.cache/dcs-migration-operator
VENV := $(CACHE_DIR)/venv
PYTHON_REQUIREMENTS := tests/python/requirements.txt
export CARGO_TERM_COLOR ?= never
# Tests build the operator with its crash points armed (tests/crash_safety.rs kills it at them).
TEST_FEATURES := --features crash-points

.PHONY: all build test test-rust test-python control-plane python-deps demo demo-down bench chaos crds deploy reference image test-as-chart-identity

all: build

build:
	cargo build --bins

# The CRD is generated from the Rust types; the chart's copy, deploy/ and docs/reference.md follow it.
crds: build
	target/debug/dcs-migration-operator crd > crds/dcs.migration.io_redismigrations.yaml
	scripts/render-deploy
	DCS_UPDATE_DOCS=1 cargo test --test reference_docs

deploy:
	scripts/render-deploy

reference:
	DCS_UPDATE_DOCS=1 cargo test --test reference_docs

# The shipped image (Dockerfile) built with podman, no registry pull: dcs-migration-operator:<crate version>, saved
# as target/image/dcs-migration-operator.tar (tools/image.sh installs podman and runc from Debian when missing).
image:
	tools/image.sh

# The controller suite with the operator authenticated as the chart's own ServiceAccount.
test-as-chart-identity: control-plane
	DCS_E2E_AS_CHART_SA=1 cargo test $(TEST_FEATURES) --test controller

control-plane:
	scripts/control-plane build

python-deps: $(VENV)/.installed

$(VENV)/.installed: $(PYTHON_REQUIREMENTS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PYTHON_REQUIREMENTS)
	touch $@

# The image first: tests/image.rs runs it.
test: control-plane python-deps image test-rust test-as-chart-identity test-python

test-rust:
	cargo test $(TEST_FEATURES) --no-fail-fast --lib --bins --tests

test-python: python-deps
	cargo build $(TEST_FEATURES) --bin dcs-simulator
	DCS_SIMULATOR_BIN=$(CURDIR)/target/debug/dcs-simulator $(VENV)/bin/python -m pytest -q tests/python

demo: build control-plane
	scripts/demo up

demo-down:
	scripts/demo down

# The long chaos suite: >= 50 random kills, minutes of fault storms (CHAOS_SEED=N replays the kills).
# make test runs the same files in their short form.
chaos: control-plane
	CHAOS_FULL=1 cargo test $(TEST_FEATURES) --no-fail-fast --test chaos --test chaos_control_plane --test hostile -- --nocapture

bench: control-plane
	mkdir -p bench-results
	set -o pipefail; cargo bench --bench signing | tee bench-results/signing.txt
	set -o pipefail; cargo bench --bench simulator_throughput | tee bench-results/simulator_throughput.txt
	BENCH_RESOURCES=100 BENCH_PEER=1 cargo bench --bench operator_scale
	BENCH_RESOURCES=1000 BENCH_PEER=1 cargo bench --bench operator_scale
	BENCH_RESOURCES=2000 BENCH_MIX=imports cargo bench --bench operator_scale
	BENCH_RESOURCES=10000 cargo bench --bench operator_scale
	scripts/bench-report