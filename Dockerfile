# Both Skein binaries in one small image:
#   docker build -t skein .
#   docker run skein                                   # the collector
#   docker run --entrypoint /usr/local/bin/skein-agent skein --help
FROM rust:1.88-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin skein-collector --bin skein-agent \
 && mkdir -p /out /state \
 && cp target/release/skein-collector target/release/skein-agent /out/

# Distroless: glibc and CA certificates, no shell, runs as non-root.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/skein-collector /usr/local/bin/skein-collector
COPY --from=build /out/skein-agent /usr/local/bin/skein-agent
COPY --from=build --chown=65532:65532 /state /var/lib/skein-agent
COPY --from=build --chown=65532:65532 /state /var/lib/skein
WORKDIR /var/lib/skein
EXPOSE 4317 4318 16686 13133
ENTRYPOINT ["/usr/local/bin/skein-collector"]
CMD ["--data-dir", "/var/lib/skein"]
