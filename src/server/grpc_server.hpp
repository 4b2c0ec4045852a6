// gRPC front end of `orchard serve`: inference.GRPCInferenceService (src/server/proto/grpc_service.proto)
// on the gRPC C++ callback API. Infer completions finish the RPC from the Manager's worker thread; model
// load/unload run on one admin thread, never on gRPC's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "orchard/manager.hpp"
#include "server/repository.hpp"

namespace orchard::server {

struct GrpcOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8001;                    // 0: any free port
  int64_t max_message_bytes = 64ll << 20;  // larger requests: RESOURCE_EXHAUSTED
};

class GrpcServer {
 public:
  // Starts serving; `ready` answers ServerReady. Errors name the address that could not be bound.
  static Result<std::unique_ptr<GrpcServer>> start(const GrpcOptions& options, Manager& manager,
                                                   ModelRepository& repository, std::function<bool()> ready);
  // Shuts down at once (drain first for a graceful stop).
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  uint16_t port() const;
  // Stops accepting RPCs and waits up to `deadline` for those in flight; then cancels the rest.
  void drain(std::chrono::milliseconds deadline);

  struct Impl;

 private:
  explicit GrpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard::server
