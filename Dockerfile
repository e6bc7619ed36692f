# Builds the diplog server. Used by docker-compose.yml, which provides PostgreSQL.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/diplog /usr/local/bin/diplog
# Where docker-compose keeps the tree-head signing key (a volume owned by the server's user).
RUN mkdir -p /var/lib/diplog && chown nobody:nogroup /var/lib/diplog
USER nobody
EXPOSE 50051 8080
ENTRYPOINT ["diplog"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--http", "0.0.0.0:8080"]
