// Reading a kernel's inputs and attributes beyond single tensors: integer lists held in tensors, graph
// attributes (If, Loop, Scan bodies), and tensors that outlive the kernel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::cpu {

// Reads element i of a numeric tensor as double / int64 (for shape-like inputs of any integer type).
double element_as_double(const Tensor& t, int64_t i);
int64_t element_as_int(const Tensor& t, int64_t i);
// Returns the elements of an integer tensor as int64 values (e.g. a shape or axes input).
Result<std::vector<int64_t>> tensor_to_ints(const Tensor& t, std::string_view what);

// Returns a tensor of the request's tensor memory (charged to its budget; out_of_memory past it) that
// keeps the request's allocator alive like an output, for values that may outlive the kernel (sequence
// items, Loop/Scan results and slices). It is allocated through output `slot` (clamped to the node's
// outputs), so the kernel must set that output with set_output before it returns.
inline Result<Tensor> make_request_tensor(runtime::OpContext& ctx, size_t slot, DType dt, const Shape& shape) {
  if (ctx.num_outputs() == 0) return Tensor::create(dt, shape, ctx.allocator());  // nothing can outlive the kernel
  return ctx.make_output(std::min(slot, ctx.num_outputs() - 1), dt, shape);
}

// Returns graph attribute `name` of `node`, or invalid_argument when it is absent.
Result<const graph::Graph*> graph_attr(const graph::Node& node, std::string_view name);
// Compiles graph attribute `name` of the node being created; errors name the attribute.
Result<std::shared_ptr<const runtime::CompiledGraph>> compile_graph_attr(const runtime::KernelCreateContext& ctx,
                                                                        std::string_view name);

}  // namespace orchard::cpu
