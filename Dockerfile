# The dcs-migration-operator image, the one shipped: `make image` (tools/image.sh) builds it with podman from a
# context it assembles in target/image/context, with no registry pull and no command run at build time:
#   dcs-migration-operator   the release binary, statically linked (glibc, -C target-feature=+crt-static), built
#                            on the host without the crash-points feature
#   ca-certificates.crt      the host's CA bundle (Debian's ca-certificates), for HTTPS to the DCS API
#   passwd, group            one user and group, 65532 (nonroot)
#   nsswitch.conf            hosts: files dns — static glibc resolves names itself, from /etc/hosts and DNS
# Nothing else: no shell, no package manager, no libraries.
FROM scratch
ARG VERSION
LABEL org.opencontainers.image.title="dcs-migration-operator" \
      org.opencontainers.image.description="Kubernetes operator for Huawei Cloud DCS (Redis) data-migration tasks" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY passwd group nsswitch.conf /etc/
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dcs-migration-operator /usr/local/bin/dcs-migration-operator
# The chart also sets runAsUser 65532 and a read-only root filesystem.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/dcs-migration-operator"]
CMD ["run", "--metrics-addr", "0.0.0.0:8080", "--probe-addr", "0.0.0.0:8081"]
