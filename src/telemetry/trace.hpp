// Traces in the Chrome trace event JSON format (opens in Perfetto and chrome://tracing): complete events
// ("ph":"X") with microsecond timestamps, plus process/thread name metadata. Depends only on
// include/orchard/ (NodeProfile from session.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "orchard/session.hpp"
#include "orchard/status.hpp"

namespace orchard::telemetry {

using TraceArgs = std::vector<std::pair<std::string, std::string>>;

// One complete event: something named that ran on (pid, tid) from ts_ns for dur_ns.
struct TraceEvent {
  std::string name;
  std::string cat;       // category, e.g. "node", "queue", "request"
  int64_t ts_ns = 0;     // start on the trace's timeline (written in microseconds)
  int64_t dur_ns = 0;
  int64_t pid = 1, tid = 1;
  TraceArgs args;        // shown in the viewer's details pane
};

// An interval on the trace's timeline.
struct TraceInterval {
  int64_t start_ns = 0, duration_ns = 0;
};

// How one request's node profile is placed on a trace (see profile_trace_events).
struct RequestTraceOptions {
  int64_t run_start_ns = 0;                 // the run's start; NodeProfile::start_ns is relative to it
  std::optional<TraceInterval> queue_wait;  // time spent queued before the run, on the same timeline
  int64_t pid = 1, tid = 1;
  std::string request_name = "run";         // name of an event spanning the run; empty: none
  TraceArgs request_args;                   // e.g. {"model", "resnet"}, {"request", "42"}
};

// Track (thread id) offsets of a request's partition and copy events from its kernel events' track.
inline constexpr int64_t kPartitionTrack = int64_t{1} << 20;
inline constexpr int64_t kCopyTrack = int64_t{2} << 20;

// Returns the events of one request: a "queue_wait" event (cat "queue") when `options.queue_wait` is set,
// an event spanning the run (cat "request") when options.request_name is not empty, and one event per
// node (cat "node"; named after the node, or its op when unnamed) with args op, backend and shapes
// (the input shapes, e.g. "[1,3,224,224], [64,3,7,7]").
std::vector<TraceEvent> profile_trace_events(std::span<const NodeProfile> nodes, const RequestTraceOptions& options);

// Collects events and writes them as {"traceEvents":[...],"displayTimeUnit":"ms"}. Thread-safe.
class TraceWriter {
 public:
  void add(TraceEvent event);
  // Adds profile_trace_events(nodes, options).
  void add_profile(std::span<const NodeProfile> nodes, const RequestTraceOptions& options);
  // Names a process or thread in the viewer (metadata events).
  void set_process_name(int64_t pid, std::string name);
  void set_thread_name(int64_t pid, int64_t tid, std::string name);
  // Returns the number of complete events.
  size_t size() const;
  void clear();

  // Returns the trace as JSON: strings escaped (invalid UTF-8 bytes become U+FFFD), times in microseconds.
  std::string json() const;
  // Writes json() to `path`; the error names the path.
  Status write(const std::filesystem::path& path) const;

 private:
  struct Meta {
    std::string kind;  // "process_name" or "thread_name"
    int64_t pid, tid;
    std::string name;
  };
  mutable std::mutex mu_;
  std::vector<TraceEvent> events_;
  std::vector<Meta> meta_;
};

}  // namespace orchard::telemetry
