// KServe v2 REST routing: request target -> endpoint, model and version, with name validation (no path
// traversal into the repository). Pure functions with no dependency beyond the standard library, so the
// fuzz targets link them alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace orchard::server {

enum class Endpoint : unsigned char {
  live,
  ready,
  server_metadata,
  model_metadata,
  model_ready,
  infer,
  repository_index,
  repository_load,
  repository_unload,
  metrics,
  model_stats,   // GET /v2/models[/{m}[/versions/{v}]]/stats (model empty: every model)
  model_config,  // GET /v2/models/{m}[/versions/{v}]/config
  count_         // count_: the number of endpoints
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

// Returns whether `name` is a valid model name: [A-Za-z0-9_.-], 1..128 chars, not starting with '.'.
bool valid_model_name(std::string_view name);
// Returns the version number of `text` when it is a decimal without leading zeros (1..18 digits).
std::optional<int64_t> parse_version(std::string_view text);
// Parses an Inference-Header-Content-Length value (decimal byte count); nullopt when it is not one.
std::optional<size_t> parse_byte_count(std::string_view text);

}  // namespace orchard::server
