// Running a float32 partition in float16 on an accelerator (SessionOptions::precision = float16), for any kernel
// backend: the partition is compiled from a converted copy of its graph (constants, declared value types and the
// nodes that make float32 values), and the executable casts its float32 inputs to float16 and its float16
// outputs back to float32 at the partition's edge, so other partitions and the caller see the model's types.
// Layer: backends (used by the CUDA backend and by the simulated device of the tests).
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "runtime/backend.hpp"

namespace orchard::backends {

// A partition as compiled in float16.
struct HalfPartition {
  // A copy of the partition's graph: the float32 constants its nodes read are float16 (the others are left
  // out), every float32 tensor type (value_info, graph inputs and outputs) is float16, Cast(to=float) casts to
  // float16, and ConstantOfShape's float32 value is float16. Kernels created from it see the types they get.
  std::shared_ptr<graph::Graph> graph;
  runtime::PartitionSpec spec;    // the partition over `graph`
  std::vector<bool> keep_half;    // per output: the model declares it float16 (not cast back to float32)
};

// Returns the float16 form of `spec` (its graph is not changed).
HalfPartition make_half_partition(const runtime::PartitionSpec& spec);

// Casts tensor `t` in the backend's memory to dtype `to` (float32 ↔ float16), queued on the run's stream.
using DeviceCast = std::function<Result<Tensor>(const Tensor& t, DType to, runtime::ExecContext& ctx)>;

// Returns `t` (float32 or float16, host memory) cast to `to` in memory from `alloc`.
Result<Tensor> cast_float_on_host(const Tensor& t, DType to, Allocator& alloc);

// Compiles `ctx`'s partition in float16 with `compile` (the backend's own compile) and wraps the result so that
// float32 inputs are cast to float16 before it runs (`cast` for device memory, on the host for inputs the
// partition reads on the host) and float16 outputs the model does not declare float16 are cast back.
// `drop_host_constants`: the kernels hold no pointer into the graph's constants (they were uploaded), so the
// converted host copies are freed after compiling.
Result<std::unique_ptr<runtime::Executable>> compile_half(
    const runtime::CompileContext& ctx,
    const std::function<Result<std::unique_ptr<runtime::Executable>>(const runtime::CompileContext&)>& compile,
    DeviceCast cast, bool drop_host_constants);

}  // namespace orchard::backends
