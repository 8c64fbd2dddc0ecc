# The hal-sim binary in a small image, for sweeps run on a cluster
# (deploy/hal-sim-sweep-job.yaml). Build from the workspace root:
#
#   docker build -f deploy/hal-sim.Dockerfile -t hal-sim:latest .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p hal-sim

FROM debian:bookworm-slim
COPY --from=build /src/target/release/hal-sim /usr/local/bin/hal-sim
USER 65534:65534
ENTRYPOINT ["/usr/local/bin/hal-sim"]
