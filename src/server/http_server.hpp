// HTTP/1.1 front end of `orchard serve` on Boost.Beast: one io_context and one SO_REUSEPORT acceptor per
// thread, keep-alive and pipelining (requests on a connection are answered in order), size caps,
// a connection cap, idle timeouts, every rejection counted by reason, and a graceful drain.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "orchard/manager.hpp"
#include "server/repository.hpp"
#include "server/rest_handler.hpp"

namespace orchard::server {

struct HttpOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;                           // 0: any free port (see HttpServer::port)
  int threads = 2;                                // I/O threads, each with its own io_context and acceptor
  uint64_t max_body_bytes = 64ull << 20;          // larger bodies: 413
  uint32_t max_header_bytes = 16 << 10;           // request line + headers; larger: 431
  uint32_t max_url_bytes = 8 << 10;               // request target; longer: 414
  int max_connections = 4096;                     // open connections; more are answered 503 and closed
  std::chrono::milliseconds idle_timeout{60000};  // a connection silent this long is closed
  bool access_log = false;                        // one info log record per request
};

// Appends the HTTP/1.1 response head for `r` with a body of `body_bytes` to `out`: status line, Server,
// Content-Type, Inference-Header-Content-Length (binary outputs), Connection: close (when not keep-alive),
// Content-Length, as Beast serializes them.
void append_response_head(std::string& out, const HttpReply& r, bool keep_alive, size_t body_bytes);

class HttpServer {
 public:
  // Binds and starts serving. Errors name the address that could not be bound.
  static Result<std::unique_ptr<HttpServer>> start(const HttpOptions& options, Manager& manager,
                                                   ModelRepository& repository);
  // Stops at once (drain first for a graceful stop).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Returns the bound port.
  uint16_t port() const;
  // Stops accepting, answers in-flight requests (closing their connections after), waits up to `deadline`
  // for them, then stops. Returns how many requests were still in flight at the deadline.
  int64_t drain(std::chrono::milliseconds deadline);
  // True when not draining and every model of the repository serves (what /v2/health/ready answers).
  bool ready() const;
  // Returns the server's, the Manager's and the batchers' metrics in Prometheus text format.
  std::string metrics_text() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orchard::server
