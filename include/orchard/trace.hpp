// Per-node profiles as Chrome trace JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "orchard/session.hpp"
#include "orchard/status.hpp"

namespace orchard {

struct TraceInfo {
  std::string name = "run";   // the event spanning the run
  int64_t queue_wait_ns = 0;  // time queued before the run (shown as a "queue_wait" event before it); 0: none
  std::vector<std::pair<std::string, std::string>> args;  // shown on the run event, e.g. {"model", "resnet"}
};

// Writes one run's profile (RunOptions::profile, with SessionOptions::profiling on) to `path`:
// one event per node with its op, backend and input shapes.
Status write_chrome_trace(const std::filesystem::path& path, std::span<const NodeProfile> nodes, const TraceInfo& info = {});

}  // namespace orchard
