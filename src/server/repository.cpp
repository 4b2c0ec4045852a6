#include "server/repository.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/logging.hpp"

namespace orchard::server {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Result<std::vector<int64_t>> int_list(const Json& j, const char* key) {
  if (!j.is_array()) return invalid_argument("[server] config '", key, "' must be an array of integers");
  std::vector<int64_t> out;
  for (const Json& e : j) {
    if (!e.is_number_integer()) return invalid_argument("[server] config '", key, "' has non-integer ", e.dump());
    out.push_back(e.get<int64_t>());
  }
  return out;
}

Result<int64_t> non_negative(const Json& j, const char* key) {
  if (!j.is_number_integer() || (!j.is_number_unsigned() && j.get<int64_t>() < 0))
    return invalid_argument("[server] config '", key, "' must be a non-negative integer, got ", j.dump());
  return j.get<int64_t>();
}

// Returns a string that changes when the model file or the config changes.
std::string fingerprint(const fs::path& file, const fs::path& config) {
  std::string out;
  for (const fs::path& p : {file, config}) {
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    const auto time = fs::last_write_time(p, ec);
    out += p.string() + ":" +
           (ec ? "-" : std::to_string(size) + "@" + std::to_string(time.time_since_epoch().count())) + ";";
  }
  return out;
}

// Returns the highest valid version folder of `dir` that holds a model.onnx, or nullopt.
std::optional<int64_t> highest_version(const fs::path& dir) {
  std::optional<int64_t> best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_directory()) continue;
    const auto v = parse_version(e.path().filename().string());
    if (v && fs::exists(e.path() / "model.onnx") && (!best || *v > *best)) best = v;
  }
  return best;
}

Result<ModelConfig> read_config(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return ModelConfig{};
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("[server] cannot read ", path.string());
  std::stringstream ss;
  ss << in.rdbuf();
  auto c = parse_model_config(ss.str());
  if (!c.ok()) return c.status().with_prefix(path.string() + ": ");
  return c;
}

}  // namespace

Result<ModelConfig> parse_model_config(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument("[server] model config is not a JSON object");
  ModelConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "max_batch_size") {
      ORCHARD_ASSIGN_OR_RETURN(c.max_batch_size, non_negative(v, "max_batch_size"));
    } else if (key == "dynamic_batching") {
      if (!v.is_object()) return invalid_argument("[server] config 'dynamic_batching' must be an object");
      c.dynamic_batching = true;
      for (const auto& [k, w] : v.items()) {
        if (k == "max_queue_delay_microseconds") {
          ORCHARD_ASSIGN_OR_RETURN(c.max_queue_delay_us, non_negative(w, "max_queue_delay_microseconds"));
        } else if (k == "preferred_batch_size") {
          ORCHARD_ASSIGN_OR_RETURN(c.preferred_batch_sizes, int_list(w, "preferred_batch_size"));
        } else {
          return invalid_argument("[server] config 'dynamic_batching' has unknown key '", k, "'");
        }
      }
    } else if (key == "instance_group") {
      if (!v.is_array() || v.empty())
        return invalid_argument("[server] config 'instance_group' must be a non-empty array");
      for (const Json& g : v) {
        if (!g.is_object()) return invalid_argument("[server] config 'instance_group' entries must be objects");
        for (const auto& [k, w] : g.items()) {
          if (k == "count") {
            ORCHARD_ASSIGN_OR_RETURN(int64_t n, non_negative(w, "instance_group.count"));
            if (n < 1 || n > 64)
              return invalid_argument("[server] config instance_group count ", n, " outside [1, 64]");
            c.instance_count += n;
          } else if (k == "kind") {
            if (w != "KIND_CPU" && w != "KIND_AUTO")
              return invalid_argument("[server] config instance_group kind ", w.dump(),
                                      " is not KIND_CPU or KIND_AUTO");
          } else {
            return invalid_argument("[server] config 'instance_group' has unknown key '", k, "'");
          }
        }
      }
    } else if (key == "input_shapes") {
      if (!v.is_object()) return invalid_argument("[server] config 'input_shapes' must be an object");
      for (const auto& [name, list] : v.items()) {
        if (!list.is_array() || list.empty())
          return invalid_argument("[server] config input_shapes '", name, "' must be a non-empty array of shapes");
        for (const Json& shape : list) {
          ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, int_list(shape, "input_shapes"));
          for (int64_t d : dims)
            if (d < 0) return invalid_argument("[server] config input_shapes '", name, "' has negative dim ", d);
          c.input_shapes[name].push_back(std::move(dims));
        }
      }
    } else if (key == "memory_share_mb") {
      ORCHARD_ASSIGN_OR_RETURN(c.memory_share_mb, non_negative(v, "memory_share_mb"));
      if (c.memory_share_mb < 1) return invalid_argument("[server] config 'memory_share_mb' must be >= 1, got 0");
    } else if (key == "inline_execution") {
      if (!v.is_boolean())
        return invalid_argument("[server] config 'inline_execution' must be a boolean, got ", v.dump());
      c.inline_execution = v.get<bool>();
    } else if (key == "backend") {
      if (!v.is_array()) return invalid_argument("[server] config 'backend' must be an array of names");
      for (const Json& b : v) {
        if (!b.is_string()) return invalid_argument("[server] config 'backend' has non-string ", b.dump());
        c.backends.push_back(b.get<std::string>());
      }
    } else {
      return invalid_argument("[server] model config has unknown key '", key, "'");
    }
  }
  if (c.dynamic_batching && c.max_batch_size < 1)
    return invalid_argument("[server] config 'dynamic_batching' needs max_batch_size >= 1, got ", c.max_batch_size);
  for (int64_t p : c.preferred_batch_sizes)
    if (p < 1 || p > c.max_batch_size)
      return invalid_argument("[server] config preferred_batch_size ", p, " outside [1, max_batch_size ",
                              c.max_batch_size, "]");
  return c;
}

ModelRepository::ModelRepository(Manager& manager, fs::path root) : manager_(manager), root_(std::move(root)) {}

ModelRepository::~ModelRepository() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [name, e] : models_) retire(e.serving);
}

Result<std::shared_ptr<ServedModel>> ModelRepository::load_version(const std::string& name, int64_t version,
                                                                   const fs::path& file, const ModelConfig& config) {
  LoadOptions opts;
  opts.name = name;
  opts.session.backend_preference = config.backends;
  opts.memory_limit_mb = config.memory_share_mb;
  if (!config.dynamic_batching) opts.max_concurrent = static_cast<int>(config.instance_count);
  ORCHARD_ASSIGN_OR_RETURN(ModelId id, manager_.load_model(file, opts));
  auto m = std::make_shared<ServedModel>();
  m->name = name;
  m->version = version;
  m->id = id;
  m->config = config;
  auto session = manager_.session(id);
  if (!session.ok()) {
    (void)manager_.unload_model(id);
    return session.status();
  }
  m->session = *session;
  for (const auto& [input, shapes] : config.input_shapes) {
    const ValueInfo* info = nullptr;
    for (const ValueInfo& v : m->session->inputs())
      if (v.name == input) info = &v;
    Status bad;
    if (!info)
      bad = invalid_argument("[server] config input_shapes names '", input, "', which the model does not have");
    for (const auto& dims : shapes)
      if (bad.ok() && info && dims.size() != info->shape.size())
        bad = invalid_argument("[server] config input_shapes '", input, "' has a shape of rank ", dims.size(),
                               "; the input has rank ", info->shape.size());
    if (!bad.ok()) {
      (void)manager_.unload_model(id);
      return bad;
    }
  }
  if (config.dynamic_batching) {
    BatchingConfig bc;
    if (config.instance_count > 0) bc.max_inflight_batches = static_cast<int>(config.instance_count);
    bc.max_batch_size = config.max_batch_size;
    bc.max_queue_delay_us = config.max_queue_delay_us;
    bc.preferred_batch_sizes = config.preferred_batch_sizes;
    auto b = Batcher::create(manager_, id, bc, name, batching_metrics_);
    if (!b.ok()) {
      (void)manager_.unload_model(id);
      return b.status();
    }
    m->batcher = std::shared_ptr<Batcher>(std::move(b).value());
  }
  return m;
}

void ModelRepository::retire(const std::shared_ptr<const ServedModel>& old) {
  if (!old) return;
  // The batcher first: it waits for its batches, which run in the Manager under the old id.
  if (old->batcher) const_cast<ServedModel&>(*old).batcher.reset();
  const Status s = manager_.unload_model(old->id);
  if (!s.ok())
    log(LogLevel::warn, "server", "unload failed",
        {{"model", old->name}, {"version", old->version}, {"error", s.message()}});
}

Status ModelRepository::install(const std::string& name, Result<std::shared_ptr<ServedModel>> loaded,
                                std::string version, std::string fp) {
  std::shared_ptr<const ServedModel> old;
  Status status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = models_[name];
    e.version = version;
    e.fingerprint = std::move(fp);
    if (loaded.ok()) {
      old = std::move(e.serving);
      e.serving = std::move(loaded).value();
      e.state = "READY";
      e.reason.clear();
    } else {
      status = loaded.status();
      e.reason = "version " + version + ": " + status.message();
      e.state = e.serving ? "READY" : "UNAVAILABLE";
      if (e.serving) e.reason += " (still serving version " + std::to_string(e.serving->version) + ")";
    }
  }
  if (!status.ok())
    log(LogLevel::error, "server", "model load failed", {{"model", name}, {"error", status.message()}});
  else
    log(LogLevel::info, "server", "model serving", {{"model", name}, {"version", version}});
  retire(old);
  return status;
}

Status ModelRepository::add_file(const std::string& name, const fs::path& path, const ModelConfig& config) {
  if (!valid_model_name(name)) return invalid_argument("[server] invalid model name '", name, "'");
  std::lock_guard<std::mutex> load_lock(load_mu_);
  return install(name, load_version(name, 1, path, config), "1", fingerprint(path, {}));
}

Status ModelRepository::load(const std::string& name) {
  if (!valid_model_name(name)) return invalid_argument("[server] invalid model name '", name, "'");
  if (root_.empty()) return unsupported("[server] no model repository: cannot load '", name, "' from disk");
  const fs::path dir = root_ / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return not_found("[server] model '", name, "' not found in ", root_.string());
  std::lock_guard<std::mutex> load_lock(load_mu_);
  const auto version = highest_version(dir);
  if (!version) {
    Status s = not_found("[server] model '", name, "' has no <version>/model.onnx in ", dir.string());
    std::lock_guard<std::mutex> lock(mu_);
    Entry& e = models_[name];
    if (!e.serving) e.state = "UNAVAILABLE";
    e.reason = s.message();
    return s;
  }
  const fs::path file = dir / std::to_string(*version) / "model.onnx";
  const fs::path config_path = dir / "config.json";
  const std::string fp = fingerprint(file, config_path);
  auto config = read_config(config_path);
  if (!config.ok()) return install(name, config.status(), std::to_string(*version), fp);
  return install(name, load_version(name, *version, file, *config), std::to_string(*version), fp);
}

Status ModelRepository::unload(const std::string& name) {
  std::lock_guard<std::mutex> load_lock(load_mu_);
  std::shared_ptr<const ServedModel> old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end() || !it->second.serving) return not_found("[server] model '", name, "' is not loaded");
    old = std::move(it->second.serving);
    it->second.state = "UNAVAILABLE";
    it->second.reason = "unloaded";
    it->second.fingerprint.clear();
  }
  retire(old);
  return Status::OK();
}

Status ModelRepository::load_all() {
  if (root_.empty()) return Status::OK();
  std::error_code ec;
  if (!fs::is_directory(root_, ec)) return not_found("[server] model repository ", root_.string(), " is not a folder");
  Status first;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (!valid_model_name(name)) continue;
    Status s = load(name);
    if (first.ok() && !s.ok()) first = s;
  }
  return first;
}

int ModelRepository::poll() {
  if (root_.empty()) return 0;
  int changed = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    if (!valid_model_name(name)) continue;
    const auto version = highest_version(e.path());
    if (!version) continue;
    const std::string fp = fingerprint(e.path() / std::to_string(*version) / "model.onnx", e.path() / "config.json");
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = models_.find(name);
      // Unloaded on request: stays unloaded until loaded on request. Same files as last try: nothing new.
      if (it != models_.end() && (it->second.reason == "unloaded" || it->second.fingerprint == fp)) continue;
    }
    (void)load(name);
    ++changed;
  }
  return changed;
}

Result<std::shared_ptr<const ServedModel>> ModelRepository::find(std::string_view name,
                                                                 std::string_view version) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  if (it == models_.end()) return not_found("[server] unknown model '", name, "'");
  const auto& m = it->second.serving;
  if (!m) return unavailable("[server] model '", name, "' is not ready: ", it->second.reason);
  if (!version.empty() && version != std::to_string(m->version))
    return not_found("[server] model '", name, "' version '", version, "' is not served (serving version ", m->version,
                     ")");
  return m;
}

std::vector<IndexEntry> ModelRepository::index(bool ready_only) const {
  std::vector<IndexEntry> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : models_) {
    if (ready_only && !e.serving) continue;
    out.push_back({name, e.serving ? std::to_string(e.serving->version) : e.version, e.state, e.reason});
  }
  return out;
}

Result<std::vector<ModelStatsSnapshot>> ModelRepository::statistics(std::string_view name,
                                                                    std::string_view version) const {
  std::vector<ModelStatsSnapshot> out;
  // Under mu_: a model still in the map has not been retired, so its batcher is alive while it is read.
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [model, e] : models_) {
    if (!name.empty() && model != name) continue;
    const auto& m = e.serving;
    if (!m) {
      if (name.empty()) continue;
      return unavailable("[server] model '", name, "' is not ready: ", e.reason);
    }
    if (!version.empty() && version != std::to_string(m->version))
      return not_found("[server] model '", name, "' version '", version, "' is not served (serving version ",
                       m->version, ")");
    ModelStatsSnapshot s;
    s.name = model;
    s.version = std::to_string(m->version);
    s.last_inference_ms = m->stats->last_inference_ms.load();
    s.success_count = m->stats->success_count.load();
    s.success_ns = m->stats->success_ns.load();
    s.fail_count = m->stats->fail_count.load();
    s.fail_ns = m->stats->fail_ns.load();
    if (m->batcher) {
      const BatcherStats b = m->batcher->stats();
      s.inference_count = b.inferences;
      s.execution_count = b.executions;
    } else {
      s.inference_count = s.execution_count = s.success_count;
    }
    const PerformanceSummary run = manager_.performance_summary(m->id);
    s.run_count = run.ok;
    s.queue_ns = static_cast<uint64_t>(run.queue_ms_total * 1e6);
    s.compute_ns = static_cast<uint64_t>(run.compute_ms_total * 1e6);
    out.push_back(std::move(s));
  }
  if (!name.empty() && out.empty()) return not_found("[server] unknown model '", name, "'");
  return out;
}

bool ModelRepository::all_ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, e] : models_)
    if (!e.serving && e.reason != "unloaded") return false;
  return !models_.empty();
}

}  // namespace orchard::server
