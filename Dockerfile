# Builds the diplog server. Used by docker-compose.yml, which provides PostgreSQL.
FROM rust:1.95-bookworm AS build
WORKDIR /src

# Dependencies first, in a layer of their own: a change to diplog's own code then rebuilds only
# diplog. The manifest, the lock file and what the build script compiles (the protos), with an
# empty crate in place of the sources.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto ./proto
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# diplog itself. The sources are newer than the empty crate's build, so cargo rebuilds it.
COPY src ./src
COPY migrations ./migrations
COPY scenarios ./scenarios
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    # The release profile keeps line tables for profiling (about 140 MB); the image needs none.
    && strip target/release/diplog

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/diplog /usr/local/bin/diplog
# Where docker-compose keeps the tree-head signing key (a volume owned by the server's user).
RUN mkdir -p /var/lib/diplog && chown nobody:nogroup /var/lib/diplog
USER nobody
EXPOSE 50051 8080
# The standard gRPC health service, asked by diplog itself (no token needed): healthy while the
# server serves and its database answers.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["diplog", "health", "--server", "http://127.0.0.1:50051"]
ENTRYPOINT ["diplog"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--http", "0.0.0.0:8080"]
