# orchard serve in a container: Debian 12 with the packages scripts/setup.sh installs, a release build,
# KServe v2 REST on 8000 and gRPC on 8001. Models are mounted at /models (Triton layout, docs/serving.md).
#   docker build -t orchard-serve .
#   docker run -p 8000:8000 -p 8001:8001 -v $PWD/models:/models orchard-serve
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN scripts/setup.sh && cmake --preset release -DORCHARD_BUILD_TESTS=OFF -DORCHARD_BUILD_BENCH=OFF \
    && cmake --build --preset release --target orchard_cli

FROM debian:12
RUN apt-get update && apt-get install -y --no-install-recommends \
      libonnx1 libprotobuf32 libgrpc++1.51 curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/release/orchard /usr/local/bin/orchard
EXPOSE 8000 8001
USER nobody
HEALTHCHECK CMD curl -sf http://127.0.0.1:8000/v2/health/ready || exit 1
ENTRYPOINT ["/usr/local/bin/orchard", "serve", "--host", "0.0.0.0", "--port", "8000", "--grpc-port", "8001"]
CMD ["--model-repository", "/models", "--poll-secs", "10"]
