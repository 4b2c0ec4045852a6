// CUDA graphs for the CUDA backend's partitions (issue 8): a partition's run is captured once per input
// signature and replayed afterwards as one launch instead of one launch per kernel (batch 1 is launch-bound).
// Layer: backends. Used by cuda_backend.cpp; tests read graph_counters().
#pragma once

#include <cuda_runtime_api.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "runtime/backend.hpp"

namespace orchard::cuda {

class CudaBackend;

// Process-wide counts of what the partitions' graphs did (for tests and logs).
struct GraphCounters {
  int64_t captured = 0;  // graphs captured and instantiated
  int64_t replayed = 0;  // runs served by a graph launch (the capturing run included)
  int64_t refused = 0;   // signatures whose capture failed (they run without a graph)
};
// Returns the counts so far.
GraphCounters graph_counters();

// The graphs of one partition, one per input signature: the inputs' dtypes, shapes and places, and the bytes
// of inputs in host memory (kernels read those on the host, shapes and indices, and the capture bakes them in).
// A signature's first run goes without a graph (modules load, cuDNN and cuBLAS choose algorithms, handles are
// made); the second is captured on a private non-blocking stream, every allocation in it from the stream-ordered
// pool (graph memory nodes, all freed inside the graph: its last nodes copy the outputs into pool blocks of the
// signature) and cuBLAS given a workspace allocated in the graph. From then on a run copies its
// device inputs into the graph's input buffers, launches the graph and copies the outputs into fresh tensors,
// all on the run's stream and ordered after the previous replay of the same graph (so concurrent runs may share
// it). A capture fails where a kernel reads device memory on the host or synchronizes; that signature then runs
// without a graph and the reason is logged at debug level. Profiled runs never use graphs (per-node timings).
// The graph's kernels report faults (DeviceFault) into a record of the signature's; each replay then moves a fault
// to the run's stream record, where the run's synchronize() finds it.
class PartitionGraphs {
 public:
  PartitionGraphs(const CudaBackend& backend, std::string label);
  ~PartitionGraphs();
  PartitionGraphs(const PartitionGraphs&) = delete;
  PartitionGraphs& operator=(const PartitionGraphs&) = delete;
  // Runs `inner` (the partition's kernels) for `ctx`, whose stream is the run's CudaStream and this thread's
  // current stream, through a graph when it can.
  Status run(const runtime::Executable& inner, runtime::ExecContext& ctx);

 private:
  struct Entry;
  Status capture(Entry& e, const runtime::Executable& inner, runtime::ExecContext& ctx);
  Status replay(Entry& e, runtime::ExecContext& ctx, bool copy_inputs);

  const CudaBackend& backend_;
  const std::string label_;  // the partition, for logs
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>, std::less<>> entries_;
};

}  // namespace orchard::cuda
