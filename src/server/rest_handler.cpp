#include "server/rest_handler.hpp"

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "server/infer_codec.hpp"
#include "server/inference.hpp"

namespace orchard::server {
namespace {

using Json = nlohmann::json;

HttpReply error_reply(unsigned status, std::string_view message) {
  return HttpReply{status, error_body(message), "application/json", std::nullopt};
}
HttpReply error_reply(const Status& s) { return error_reply(http_status_for(s.code()), s.message()); }

// Room for a typical small-model reply (the digits answer is ~250 bytes) without regrowing.
constexpr size_t kReplyReserve = 512;

// True when `outputs` already are `names`, in order (the usual case: the client asked for every output).
bool is_selection(const NamedValues& outputs, const std::vector<std::string>& names) {
  if (outputs.size() != names.size()) return false;
  for (size_t i = 0; i < names.size(); ++i)
    if (outputs[i].first != names[i]) return false;
  return true;
}

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

}  // namespace

unsigned http_status_for(StatusCode code) {
  switch (code) {
    case StatusCode::ok:
      return 200;
    case StatusCode::invalid_argument:
      return 400;
    case StatusCode::not_found:
      return 404;
    case StatusCode::unsupported:
      return 501;
    case StatusCode::resource_exhausted:
      return 429;
    case StatusCode::out_of_memory:
      return 503;
    case StatusCode::deadline_exceeded:
      return 504;
    case StatusCode::cancelled:
      return 400;
    case StatusCode::unavailable:
      return 503;
    case StatusCode::internal:
      return 500;
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

// GET .../config: the model's configuration in Triton's ModelConfig JSON form.
HttpReply RestHandler::model_config(const ServedModel& m) {
  const ModelConfig& c = m.config;
  const int64_t batch = c.dynamic_batching ? c.max_batch_size : 0;
  auto tensors = [batch](const std::vector<ValueInfo>& infos) {
    Json out = Json::array();
    for (const ConfigTensor& t : config_tensors(infos, batch))
      out.push_back({{"name", t.name}, {"data_type", t.data_type_name}, {"dims", t.dims}});
    return out;
  };
  Json j = {{"name", m.name},
            {"platform", "onnx"},
            {"max_batch_size", batch},
            {"input", tensors(m.session->inputs())},
            {"output", tensors(m.session->outputs())},
            {"backend", c.backends},
            {"inline_execution", c.inline_execution}};
  if (c.instance_count > 0) j["instance_group"] = Json::array({{{"count", c.instance_count}, {"kind", "KIND_CPU"}}});
  if (c.memory_share_mb > 0) j["memory_share_mb"] = c.memory_share_mb;
  if (!c.input_shapes.empty()) j["input_shapes"] = c.input_shapes;
  if (c.dynamic_batching)
    j["dynamic_batching"] = {{"max_queue_delay_microseconds", c.max_queue_delay_us},
                             {"preferred_batch_size", c.preferred_batch_sizes}};
  return HttpReply{200, j.dump(), "application/json", std::nullopt};
}

void RestHandler::handle(const Route& route, std::string_view body, std::optional<size_t> json_length, ReplyFn reply) {
  switch (route.endpoint) {
    case Endpoint::live:
      return reply(json_reply(200, "{\"live\":true}"));
    case Endpoint::ready: {
      const bool ok = ready_();
      return reply(json_reply(ok ? 200u : 503u, ok ? "{\"ready\":true}" : "{\"ready\":false}"));
    }
    case Endpoint::server_metadata:
      return reply(json_reply(200,
                              "{\"name\":\"orchard\",\"version\":\"0.1.0\",\"extensions\":[\"binary_tensor_data\","
                              "\"model_repository\",\"schedule_policy\",\"statistics\",\"model_configuration\"]}"));
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
    case Endpoint::infer:
      return infer(route, body, json_length, std::move(reply));
    case Endpoint::model_stats: {
      auto stats = repository_.statistics(route.model, route.version);
      if (!stats.ok()) return reply(error_reply(stats.status()));
      Json list = Json::array();
      for (const ModelStatsSnapshot& s : *stats) {
        auto duration = [](uint64_t count, uint64_t ns) { return Json{{"count", count}, {"ns", ns}}; };
        list.push_back(
            {{"name", s.name},
             {"version", s.version},
             {"last_inference", s.last_inference_ms},
             {"inference_count", s.inference_count},
             {"execution_count", s.execution_count},
             {"inference_stats",
              {{"success", duration(s.success_count, s.success_ns)},
               {"fail", duration(s.fail_count, s.fail_ns)},
               {"queue", duration(s.run_count, s.queue_ns)},
               {"compute_infer", duration(s.run_count, s.compute_ns)}}},
             {"batch_stats", Json::array()}});
      }
      return reply(json_reply(200, Json{{"model_stats", list}}.dump()));
    }
    case Endpoint::model_config: {
      auto m = repository_.find(route.model, route.version);
      if (!m.ok()) return reply(error_reply(m.status()));
      return reply(model_config(**m));
    }
    case Endpoint::repository_index: {
      bool ready_only = false;
      if (!body.empty()) {
        Json j = Json::parse(body.begin(), body.end(), nullptr, false);
        if (j.is_discarded() || !j.is_object())
          return reply(error_reply(400, "[server] index body must be a JSON object"));
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
    case Endpoint::count_:
      break;
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
  std::vector<std::string> requested;
  for (const RequestedOutput& o : req.outputs) requested.push_back(o.name);
  auto names = check_infer(*model, req.inputs, requested);
  if (!names.ok()) return reply(error_reply(names.status()));
  std::vector<bool> binary;
  for (size_t i = 0; i < names->size(); ++i)
    binary.push_back(req.outputs.empty() ? req.binary_outputs : req.outputs[i].binary.value_or(req.binary_outputs));
  auto done = [model, names = std::move(names).value(), binary = std::move(binary), id = std::move(req.id),
               reply](Result<NamedValues> r) {
    if (!r.ok()) return reply(error_reply(r.status()));
    NamedValues selected;
    const NamedValues* outputs = &*r;
    if (!is_selection(*r, names)) outputs = &(selected = select_outputs(*r, names));
    HttpReply out;
    out.body.reserve(kReplyReserve);
    const Status s = append_infer_response(out.body, out.json_length, model->name, std::to_string(model->version), id,
                                           *outputs, binary);
    if (!s.ok()) return reply(error_reply(s));
    if (out.json_length) out.content_type = "application/octet-stream";
    reply(std::move(out));
  };
  submit_infer(manager_, *model, std::move(req.inputs), req.priority, req.timeout_us, std::move(done));
}

}  // namespace orchard::server
