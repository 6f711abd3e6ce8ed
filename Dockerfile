# syntax=docker/dockerfile:1
# The dcs-migration-operator image: a static (musl) release build of the operator on distroless/static, non-root.
#
#   docker build -t dcs-migration-operator:0.1.0 .
#
# The release build has no `crash-points` feature (chaos-test hooks, tests only). TLS is rustls on aws-lc-rs, whose
# aws-lc-sys ships pregenerated bindings for x86_64-unknown-linux-musl and builds its C part with musl-gcc (no cmake).

FROM rust:1.95-bookworm AS builder
ARG TARGET=x86_64-unknown-linux-musl
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "$TARGET"
WORKDIR /src
# Dependencies first, so that a source change does not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src/bin benches \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/dcs-simulator.rs \
 && touch src/lib.rs \
 && for b in signing simulator_throughput; do echo 'fn main() {}' > "benches/$b.rs"; done \
 && cargo build --release --locked --target "$TARGET" --bin dcs-migration-operator \
 && rm -rf src benches
COPY src ./src
COPY benches ./benches
# touch: make cargo see the real sources as newer than the stub build above.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --target "$TARGET" --bin dcs-migration-operator \
 && cp "target/$TARGET/release/dcs-migration-operator" /dcs-migration-operator \
 && /dcs-migration-operator version

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="dcs-migration-operator" \
      org.opencontainers.image.description="Kubernetes operator for Huawei Cloud DCS (Redis) data-migration tasks" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
COPY --from=builder /dcs-migration-operator /usr/local/bin/dcs-migration-operator
# distroless's nonroot user; the chart also sets runAsUser 65532 and a read-only root filesystem.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/dcs-migration-operator"]
CMD ["run", "--metrics-addr", "0.0.0.0:8080", "--probe-addr", "0.0.0.0:8081"]
