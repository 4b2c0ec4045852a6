// KServe v2 REST endpoints: URL routing (a pure function, fuzzed) and the handlers that answer each
// route from the ModelRepository and the Manager. Transport-free: the HTTP server hands in a parsed
// request and gets the reply through a callback, possibly later from a Manager worker thread.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "orchard/manager.hpp"
#include "server/repository.hpp"
#include "server/route.hpp"

namespace orchard::server {

// Returns the HTTP status for an Orchard status code (invalid_argument 400, not_found 404, ...).
unsigned http_status_for(StatusCode code);

struct HttpReply {
  unsigned status = 200;
  std::string body;
  std::string_view content_type = "application/json";  // a string literal
  std::optional<size_t> json_length;                   // Inference-Header-Content-Length, for binary outputs
};
// Receives the reply; the body may be read only during the call.
using ReplyFn = std::function<void(HttpReply&&)>;
// Returns a JSON reply with `status` and `body`.
inline HttpReply json_reply(unsigned status, std::string body) {
  return HttpReply{status, std::move(body), "application/json", std::nullopt};
}

class RestHandler {
 public:
  // `metrics_text` returns the /metrics page; `ready` whether the server is ready; `admin` runs slow
  // repository work (load/unload) off the I/O threads.
  RestHandler(Manager& manager, ModelRepository& repository, std::function<std::string()> metrics_text,
              std::function<bool()> ready, std::function<void(std::function<void()>)> admin);

  // Answers one request; `reply` is called exactly once (maybe later, on another thread).
  void handle(const Route& route, std::string_view body, std::optional<size_t> json_length, ReplyFn reply);

 private:
  void infer(const Route& route, std::string_view body, std::optional<size_t> json_length, ReplyFn reply);
  HttpReply model_metadata(const ServedModel& m);
  HttpReply model_config(const ServedModel& m);

  Manager& manager_;
  ModelRepository& repository_;
  std::function<std::string()> metrics_text_;
  std::function<bool()> ready_;
  std::function<void(std::function<void()>)> admin_;
};

}  // namespace orchard::server
