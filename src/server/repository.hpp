// Model repository in Triton's layout: ROOT/<model>/<version>/model.onnx plus an optional
// ROOT/<model>/config.json (see docs/serving.md). Loads models into a Manager, serves the highest
// version that loaded, and never replaces a serving version with one that fails to load.
// Uses only include/orchard/.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "orchard/batcher.hpp"
#include "orchard/manager.hpp"
#include "server/route.hpp"

namespace orchard::server {

// The per-model config file (config.json); every field optional. Names follow Triton's ModelConfig.
struct ModelConfig {
  int64_t max_batch_size = 0;  // > 0 with dynamic_batching: batch requests along dim 0
  bool dynamic_batching = false;
  int64_t max_queue_delay_us = 0;              // how long a partial batch may wait for more requests
  std::vector<int64_t> preferred_batch_sizes;  // sizes at which a waiting batch is sent at once
  std::vector<std::string> backends;           // backend preference, e.g. ["cpu"]; empty: the platform chain
  // Orchard's own key: an unbatched request runs on the thread that received it when a Manager slot is
  // free (InferenceOptions::run_inline), saving two thread hand-offs; for models that run in microseconds.
  bool inline_execution = false;
  // instance_group: the sum of the groups' counts; batched models run that many batches at once (default 2),
  // unbatched ones that many requests (LoadOptions::max_concurrent; default: only --max-concurrent limits).
  int64_t instance_count = 0;  // 0: not given
  // Orchard's own key memory_share_mb: the part of the server's memory budget this model may hold (its
  // weights plus its running requests' activations, LoadOptions::memory_limit_mb); 0: not given.
  int64_t memory_share_mb = 0;
  // Orchard's own key input_shapes: the shapes each named input may have (enumerated shapes); other shapes
  // are refused with 400. Inputs not named take any shape the model allows.
  std::map<std::string, std::vector<std::vector<int64_t>>> input_shapes;
};

// Parses config.json text; errors name the bad key or value.
Result<ModelConfig> parse_model_config(std::string_view json);

// Cumulative counts of one served model version, updated by submit_infer (Triton's ModelStatistics).
struct ModelStats {
  std::atomic<uint64_t> success_count{0}, success_ns{0};  // requests answered with outputs, and their time
  std::atomic<uint64_t> fail_count{0}, fail_ns{0};        // requests answered with an error, and their time
  std::atomic<uint64_t> last_inference_ms{0};             // ms since the epoch of the last answer; 0: none yet
};

// A point-in-time copy of one served model's statistics.
struct ModelStatsSnapshot {
  std::string name, version;
  uint64_t last_inference_ms = 0;
  uint64_t inference_count = 0;  // batched: rows executed (batch n counts n); else requests that succeeded
  uint64_t execution_count = 0;  // batched: batches executed; else requests that succeeded
  uint64_t success_count = 0, success_ns = 0, fail_count = 0, fail_ns = 0;
  // From the Manager, over the runs that succeeded (a batched model's runs are its batches): time queued
  // for a slot and time running (input placement, the run and output placement together).
  uint64_t run_count = 0, queue_ns = 0, compute_ns = 0;
};

// One loaded model version that answers requests.
struct ServedModel {
  std::string name;
  int64_t version = 1;
  ModelId id = 0;
  std::shared_ptr<const Session> session;
  std::shared_ptr<Batcher> batcher;  // null when the model does not batch
  ModelConfig config;
  std::shared_ptr<ModelStats> stats = std::make_shared<ModelStats>();
};

// One row of the repository index.
struct IndexEntry {
  std::string name;
  std::string version;  // empty when no version was found
  std::string state;    // READY, UNAVAILABLE, LOADING, UNLOADING
  std::string reason;   // why it is not READY (a load error names the file and what was wrong)
};

class ModelRepository {
 public:
  // `root` empty: no repository folder (models come from add_file only).
  ModelRepository(Manager& manager, std::filesystem::path root);
  ~ModelRepository();
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Serves the model file at `path` as `name`, version 1 (`orchard serve MODEL.onnx`).
  Status add_file(const std::string& name, const std::filesystem::path& path, const ModelConfig& config = {});
  // Loads every model folder of the root; returns the first error (the others still load).
  Status load_all();
  // Loads (or reloads) the highest version of model `name` from the root. A failure leaves the serving
  // version, if any, serving, and is reported here and in the index.
  Status load(const std::string& name);
  // Stops serving `name` and frees it (waits for its in-flight requests).
  Status unload(const std::string& name);
  // Reloads each model whose highest version folder or config changed since it was loaded, and loads
  // new model folders. Returns how many models changed.
  int poll();

  // Returns the serving version of `name` (`version` empty: the serving one; else that exact one).
  Result<std::shared_ptr<const ServedModel>> find(std::string_view name, std::string_view version) const;
  std::vector<IndexEntry> index(bool ready_only) const;
  // Statistics of the serving version of `name` (empty: of every serving model); `version` as for find.
  Result<std::vector<ModelStatsSnapshot>> statistics(std::string_view name, std::string_view version) const;
  // True when every model of the repository has a serving version.
  bool all_ready() const;
  // Metrics of every model's Batcher.
  const std::shared_ptr<BatchingMetrics>& batching_metrics() const { return batching_metrics_; }

 private:
  struct Entry {
    std::shared_ptr<const ServedModel> serving;
    std::string state = "UNAVAILABLE";
    std::string reason;
    std::string version;      // last version seen or tried
    std::string fingerprint;  // of the files that version was loaded from (for poll)
  };
  Result<std::shared_ptr<ServedModel>> load_version(const std::string& name, int64_t version,
                                                    const std::filesystem::path& file, const ModelConfig& config);
  Status install(const std::string& name, Result<std::shared_ptr<ServedModel>> loaded, std::string version,
                 std::string fingerprint);
  void retire(const std::shared_ptr<const ServedModel>& old);

  Manager& manager_;
  const std::filesystem::path root_;
  mutable std::mutex mu_;
  std::mutex load_mu_;  // one load/unload at a time
  std::map<std::string, Entry, std::less<>> models_;
  std::shared_ptr<BatchingMetrics> batching_metrics_ = std::make_shared<BatchingMetrics>();
};

}  // namespace orchard::server
