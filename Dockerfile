# The egressc CLI image: egressc, kustomize and a shell, as uid 999 — what the Argo CD plugin
# sidecar (deploy/argocd) runs, and usable as a CLI image (`docker run IMAGE check /mesh`).
#
#   docker build -t ghcr.io/your-org/egressc:latest .
#
# then set that name in deploy/argocd/repo-server-patch.yaml.

# A static binary: Alpine's Rust targets musl, linked statically.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin egressc

# kustomize's own image: a static binary at /app/kustomize.
FROM registry.k8s.io/kustomize/kustomize:v5.5.0 AS kustomize

# sh (the plugin's scripts), mktemp and cp come with Alpine's busybox.
FROM alpine:3.22
COPY --from=build /src/target/release/egressc /usr/local/bin/egressc
COPY --from=kustomize /app/kustomize /usr/local/bin/kustomize
# Argo CD runs plugin sidecars as uid 999; HOME in the writable /tmp.
ENV HOME=/tmp
USER 999:999
WORKDIR /tmp
ENTRYPOINT ["egressc"]
