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

namespace orchard::server {

enum class Endpoint : unsigned char {
  live, ready, server_metadata, model_metadata, model_ready, infer, repository_index, repository_load,
  repository_unload, metrics, count_  // count_: the number of endpoints
};
// Returns the endpoint's label in metrics, e.g. "infer".
std::string_view endpoint_name(Endpoint e);

// A routed request target.
struct Route {
  Endpoint endpoint = Endpoint::live;
  std::string model, version;  // for model routes
};

// An error reply: HTTP status and message.
struct HttpError {
  unsigned status = 400;
  std::string message;
  std::string reason;  // label of the rejection counter: not_found, method_not_allowed, invalid_name, ...
};

// Routes `method` ("GET", "POST", ...) and `target` (path and optional query). Errors: 404 unknown path,
// 405 wrong method, 400 invalid model name or version.
std::variant<Route, HttpError> parse_route(std::string_view method, std::string_view target);

// Returns the HTTP status for an Orchard status code (invalid_argument 400, not_found 404, ...).
unsigned http_status_for(StatusCode code);

struct HttpReply {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::optional<size_t> json_length;  // Inference-Header-Content-Length, for binary outputs
};
using ReplyFn = std::function<void(HttpReply)>;
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

  Manager& manager_;
  ModelRepository& repository_;
  std::function<std::string()> metrics_text_;
  std::function<bool()> ready_;
  std::function<void(std::function<void()>)> admin_;
};

}  // namespace orchard::server
