# syntax=docker/dockerfile:1
# The operator's image: `webstack run` (the controller) by default; every other `webstack`
# command works too (`docker run IMAGE plan -f ...`).

FROM rust:1-bookworm AS build
WORKDIR /src
# The whole workspace must resolve for --locked: every member's manifest, the test crate's
# library sources (its manifest names them) and the small xtask crate; only the operator is built.
COPY Cargo.toml Cargo.lock ./
COPY operator/ operator/
COPY tests/Cargo.toml tests/Cargo.toml
COPY tests/src/ tests/src/
COPY xtask/ xtask/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin webstack -p webstack-operator \
    && install -D -m 0755 target/release/webstack /out/webstack

# glibc, libgcc and CA certificates, no shell; runs as the `nonroot` user (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="webstack-operator" \
      org.opencontainers.image.description="Runs a whole AWS web-application architecture, declared as one WebStack resource, from Kubernetes" \
      org.opencontainers.image.source="https://github.com/webstack-io/webstack-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/webstack /usr/local/bin/webstack
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/webstack"]
CMD ["run"]
