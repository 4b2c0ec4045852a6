#include "server/rest_handler.hpp"

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/infer_codec.hpp"

namespace orchard::server {
namespace {

using Json = nlohmann::json;

HttpReply error_reply(unsigned status, std::string_view message) {
  return HttpReply{status, error_body(message), "application/json", std::nullopt};
}
HttpReply error_reply(const Status& s) { return error_reply(http_status_for(s.code()), s.message()); }

Json tensor_metadata(const std::vector<ValueInfo>& infos) {
  Json out = Json::array();
  for (const ValueInfo& v : infos) {
    Json shape = Json::array();
    for (const Dim& d : v.shape) shape.push_back(d.fixed() ? d.value : int64_t{-1});
    std::string datatype(kserve_datatype(v.dtype));
    if (v.kind != Value::Kind::tensor) datatype = "";  // sequences/optionals have no KServe type
    out.push_back({{"name", v.name}, {"datatype", datatype}, {"shape", shape}});
  }
  return out;
}

// KServe priority level (0 default, 1 highest, larger lower) to the Manager's (higher first).
int manager_priority(int64_t level) {
  if (level <= 1) return 0;
  return level > 1000000 ? -999999 : static_cast<int>(1 - level);
}

}  // namespace

unsigned http_status_for(StatusCode code) {
  switch (code) {
    case StatusCode::ok: return 200;
    case StatusCode::invalid_argument: return 400;
    case StatusCode::not_found: return 404;
    case StatusCode::unsupported: return 501;
    case StatusCode::resource_exhausted: return 429;
    case StatusCode::out_of_memory: return 503;
    case StatusCode::deadline_exceeded: return 504;
    case StatusCode::cancelled: return 400;
    case StatusCode::unavailable: return 503;
    case StatusCode::internal: return 500;
  }
  return 500;
}

RestHandler::RestHandler(Manager& manager, ModelRepository& repository, std::function<std::string()> metrics_text,
                         std::function<bool()> ready, std::function<void(std::function<void()>)> admin)
    : manager_(manager),
      repository_(repository),
      metrics_text_(std::move(metrics_text)),
      ready_(std::move(ready)),
      admin_(std::move(admin)) {}

HttpReply RestHandler::model_metadata(const ServedModel& m) {
  Json j = {{"name", m.name},
            {"versions", Json::array({std::to_string(m.version)})},
            {"platform", "onnx"},
            {"inputs", tensor_metadata(m.session->inputs())},
            {"outputs", tensor_metadata(m.session->outputs())}};
  return HttpReply{200, j.dump(), "application/json", std::nullopt};
}

void RestHandler::handle(const Route& route, std::string_view body, std::optional<size_t> json_length, ReplyFn reply) {
  switch (route.endpoint) {
    case Endpoint::live: return reply(json_reply(200, "{\"live\":true}"));
    case Endpoint::ready: {
      const bool ok = ready_();
      return reply(json_reply(ok ? 200u : 503u, ok ? "{\"ready\":true}" : "{\"ready\":false}"));
    }
    case Endpoint::server_metadata:
      return reply(json_reply(200,
                              "{\"name\":\"orchard\",\"version\":\"0.1.0\",\"extensions\":[\"binary_tensor_data\","
                              "\"model_repository\",\"schedule_policy\"]}"));
    case Endpoint::metrics:
      return reply(HttpReply{200, metrics_text_(), "text/plain; version=0.0.4; charset=utf-8", std::nullopt});
    case Endpoint::model_metadata:
    case Endpoint::model_ready: {
      auto m = repository_.find(route.model, route.version);
      if (route.endpoint == Endpoint::model_ready) {
        const bool ok = m.ok();
        if (!ok && m.status().code() == StatusCode::not_found) return reply(error_reply(m.status()));
        Json j = {{"name", route.model}, {"ready", ok}};
        return reply(json_reply(ok ? 200u : 503u, j.dump()));
      }
      if (!m.ok()) return reply(error_reply(m.status()));
      return reply(model_metadata(**m));
    }
    case Endpoint::infer: return infer(route, body, json_length, std::move(reply));
    case Endpoint::repository_index: {
      bool ready_only = false;
      if (!body.empty()) {
        Json j = Json::parse(body.begin(), body.end(), nullptr, false);
        if (j.is_discarded() || !j.is_object()) return reply(error_reply(400, "[server] index body must be a JSON object"));
        if (auto it = j.find("ready"); it != j.end()) {
          if (!it->is_boolean()) return reply(error_reply(400, "[server] index 'ready' must be a boolean"));
          ready_only = it->get<bool>();
        }
      }
      Json out = Json::array();
      for (const IndexEntry& e : repository_.index(ready_only)) {
        Json row = {{"name", e.name}, {"state", e.state}, {"reason", e.reason}};
        if (!e.version.empty()) row["version"] = e.version;
        out.push_back(std::move(row));
      }
      return reply(json_reply(200, out.dump(-1, ' ', false, Json::error_handler_t::replace)));
    }
    case Endpoint::repository_load:
    case Endpoint::repository_unload: {
      const bool load = route.endpoint == Endpoint::repository_load;
      admin_([this, load, model = route.model, reply = std::move(reply)] {
        const Status s = load ? repository_.load(model) : repository_.unload(model);
        reply(s.ok() ? json_reply(200, "{}") : error_reply(s.code() == StatusCode::not_found ? 404 : 400, s.message()));
      });
      return;
    }
    case Endpoint::count_: break;
  }
  reply(error_reply(500, "[server] unhandled route"));
}

void RestHandler::infer(const Route& route, std::string_view body, std::optional<size_t> json_length, ReplyFn reply) {
  auto found = repository_.find(route.model, route.version);
  if (!found.ok()) return reply(error_reply(found.status()));
  std::shared_ptr<const ServedModel> model = *found;
  auto decoded = decode_infer_request(body, json_length);
  if (!decoded.ok()) return reply(error_reply(decoded.status()));
  InferRequest& req = *decoded;

  const auto& declared = model->session->inputs();
  for (const auto& [name, value] : req.inputs) {
    const ValueInfo* info = nullptr;
    for (const ValueInfo& v : declared)
      if (v.name == name) info = &v;
    if (!info) return reply(error_reply(400, "[server] model '" + model->name + "' has no input '" + name + "'"));
    if (info->dtype != value.tensor().dtype())
      return reply(error_reply(400, "[server] input '" + name + "' of model '" + model->name + "' is " +
                                        std::string(kserve_datatype(info->dtype)) + ", got " +
                                        std::string(kserve_datatype(value.tensor().dtype()))));
  }
  // Which outputs go back, in which order, binary or JSON.
  auto selected = std::make_shared<std::vector<std::pair<std::string, bool>>>();
  const auto& outs = model->session->outputs();
  if (req.outputs.empty()) {
    for (const ValueInfo& v : outs) selected->emplace_back(v.name, req.binary_outputs);
  } else {
    for (const RequestedOutput& o : req.outputs) {
      bool known = false;
      for (const ValueInfo& v : outs) known |= v.name == o.name;
      if (!known) return reply(error_reply(400, "[server] model '" + model->name + "' has no output '" + o.name + "'"));
      selected->emplace_back(o.name, o.binary.value_or(req.binary_outputs));
    }
  }
  InferenceOptions options;
  options.priority = manager_priority(req.priority);
  if (req.timeout_us > 0) options.timeout_ms = (req.timeout_us + 999) / 1000;
  auto done = [model, selected, id = std::move(req.id), reply](Result<NamedValues> r) {
    if (!r.ok()) return reply(error_reply(r.status()));
    NamedValues chosen;
    std::vector<bool> binary;
    for (const auto& [name, bin] : *selected) {
      for (auto& nv : r.value())
        if (nv.first == name) chosen.push_back(nv);
      binary.push_back(bin);
    }
    auto body = encode_infer_response(model->name, std::to_string(model->version), id, chosen, binary);
    if (!body.ok()) return reply(error_reply(body.status()));
    HttpReply out{200, std::move(body->body), "application/json", body->json_length};
    if (out.json_length) out.content_type = "application/octet-stream";
    reply(std::move(out));
  };
  if (model->batcher) model->batcher->submit(std::move(req.inputs), options, std::move(done));
  else manager_.execute(model->id, std::move(req.inputs), options, std::move(done));
}

}  // namespace orchard::server
