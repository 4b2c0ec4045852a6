#include "server/route.hpp"

#include <charconv>
#include <vector>

namespace orchard::server {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  parts.reserve(8);  // every route has at most 7 parts: one allocation per request
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

HttpError err(unsigned status, std::string message, std::string reason) {
  return HttpError{status, std::move(message), std::move(reason)};
}

}  // namespace

std::string_view endpoint_name(Endpoint e) {
  switch (e) {
    case Endpoint::live:
      return "live";
    case Endpoint::ready:
      return "ready";
    case Endpoint::server_metadata:
      return "server_metadata";
    case Endpoint::model_metadata:
      return "model_metadata";
    case Endpoint::model_ready:
      return "model_ready";
    case Endpoint::infer:
      return "infer";
    case Endpoint::repository_index:
      return "repository_index";
    case Endpoint::repository_load:
      return "repository_load";
    case Endpoint::repository_unload:
      return "repository_unload";
    case Endpoint::metrics:
      return "metrics";
    case Endpoint::model_stats:
      return "model_stats";
    case Endpoint::model_config:
      return "model_config";
    case Endpoint::count_:
      break;
  }
  return "unknown";
}

std::variant<Route, HttpError> parse_route(std::string_view method, std::string_view target) {
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  if (path.empty() || path[0] != '/') return err(400, "[server] request target must start with '/'", "bad_request");
  const auto parts = split_path(path);
  const bool get = method == "GET", post = method == "POST";
  auto need = [&](bool ok, Route r) -> std::variant<Route, HttpError> {
    if (!ok)
      return err(405, "[server] method " + std::string(method) + " not allowed on " + std::string(path),
                 "method_not_allowed");
    return r;
  };
  if (parts.size() == 1 && parts[0] == "metrics") return need(get, {Endpoint::metrics, "", ""});
  if (parts.empty() || parts[0] != "v2") return err(404, "[server] no route for " + std::string(path), "not_found");
  if (parts.size() == 1) return need(get, {Endpoint::server_metadata, "", ""});
  if (parts.size() == 3 && parts[1] == "health") {
    if (parts[2] == "live") return need(get, {Endpoint::live, "", ""});
    if (parts[2] == "ready") return need(get, {Endpoint::ready, "", ""});
  }
  if (parts[1] == "repository") {
    if (parts.size() == 3 && parts[2] == "index") return need(post, {Endpoint::repository_index, "", ""});
    if (parts.size() == 5 && parts[2] == "models" && (parts[4] == "load" || parts[4] == "unload")) {
      if (!valid_model_name(parts[3]))
        return err(400, "[server] invalid model name '" + std::string(parts[3]) + "'", "invalid_name");
      return need(post, {parts[4] == "load" ? Endpoint::repository_load : Endpoint::repository_unload,
                         std::string(parts[3]), ""});
    }
  }
  if (parts.size() == 3 && parts[1] == "models" && parts[2] == "stats")
    return need(get, {Endpoint::model_stats, "", ""});
  if (parts[1] == "models" && parts.size() >= 3) {
    Route r;
    if (!valid_model_name(parts[2]))
      return err(400, "[server] invalid model name '" + std::string(parts[2]) + "'", "invalid_name");
    r.model = parts[2];
    size_t i = 3;
    if (parts.size() >= 5 && parts[3] == "versions") {
      if (!parse_version(parts[4]))
        return err(400, "[server] invalid model version '" + std::string(parts[4]) + "'", "invalid_name");
      r.version = parts[4];
      i = 5;
    }
    if (parts.size() == i) {
      r.endpoint = Endpoint::model_metadata;
      return need(get, r);
    }
    if (parts.size() == i + 1 && parts[i] == "ready") {
      r.endpoint = Endpoint::model_ready;
      return need(get, r);
    }
    if (parts.size() == i + 1 && (parts[i] == "stats" || parts[i] == "config")) {
      r.endpoint = parts[i] == "stats" ? Endpoint::model_stats : Endpoint::model_config;
      return need(get, r);
    }
    if (parts.size() == i + 1 && parts[i] == "infer") {
      r.endpoint = Endpoint::infer;
      return need(post, r);
    }
  }
  return err(404, "[server] no route for " + std::string(path), "not_found");
}

bool valid_model_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name[0] == '.') return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

std::optional<int64_t> parse_version(std::string_view text) {
  if (text.empty() || text.size() > 18 || text[0] == '0') return std::nullopt;
  int64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<size_t> parse_byte_count(std::string_view text) {
  size_t n = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return n;
}

}  // namespace orchard::server
