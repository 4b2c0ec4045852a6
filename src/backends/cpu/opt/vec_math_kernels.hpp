// The vectorised float32 kernel families (variants of priority 1 beside the reference kernels; they use
// the loops of vec_math.hpp for the best ISA of this CPU) and what they share: a variant declines at
// create what it never handles (another dtype, an old opset), and hands every other case it does not cover
// (a broadcast or axis pattern, a dtype learnt only at run time) to the op's reference kernel, which it
// creates beside itself.
#pragma once

#include <memory>
#include <span>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/opt/vec_math.hpp"

namespace orchard::cpu::opt {

std::span<const KernelDef> elementwise_vec_kernels();  // elementwise_vec.cpp: Add..Div, unary math, Clip, Pow, Gelu
std::span<const KernelDef> softmax_vec_kernels();      // softmax_vec.cpp: Softmax, LogSoftmax
std::span<const KernelDef> norm_vec_kernels();         // norm_vec.cpp: LayerNormalization, BatchNormalization
std::span<const KernelDef> reduce_vec_kernels();       // reduce_vec.cpp: ReduceSum, ReduceMean over trailing axes
std::span<const KernelDef> pool_vec_kernels();         // pool_vec.cpp: GlobalAveragePool, MaxPool (2-D)
std::span<const KernelDef> transpose_vec_kernels();    // transpose_vec.cpp: Transpose as batched 2-D transposes

// Returns a KernelDef line for a float32 variant of priority 1.
constexpr KernelDef vec_def(std::string_view domain, std::string_view op, int since, int until, KernelFactory create) {
  KernelDef d{domain, op, since, until, create};
  d.dtypes = runtime::DTypeSet{DType::float32};
  d.priority = 1;
  return d;
}

// Creates the node's reference kernel (the priority-0 portable line of its op and opset).
Result<std::unique_ptr<OpKernel>> create_reference(const KernelCreateContext& ctx);

// True when input i is absent, float32, or of a type the model does not declare.
bool maybe_f32(const KernelCreateContext& ctx, size_t i);

// Base of the variants: holds the reference kernel that run() hands uncovered cases to.
class VecKernel : public OpKernel {
 public:
  explicit VecKernel(std::unique_ptr<OpKernel> reference) : reference_(std::move(reference)) {}

 protected:
  Status run_reference(OpContext& ctx) const { return reference_->run(ctx); }

 private:
  std::unique_ptr<OpKernel> reference_;
};

// Factory of a variant K: K::accepts(ctx) returns whether it takes the node (false: the backend tries the
// reference kernel), then K(ctx, reference kernel) is built.
template <class K>
Result<std::unique_ptr<OpKernel>> make_vec(const KernelCreateContext& ctx) {
  if (!K::accepts(ctx))
    return unsupported("[cpu] ", ctx.node.op_type, ": the vectorised variant does not take this node");
  ORCHARD_ASSIGN_OR_RETURN(std::unique_ptr<OpKernel> reference, create_reference(ctx));
  return std::unique_ptr<OpKernel>(new K(ctx, std::move(reference)));
}

// Calls body(begin, end) over [0, items): on `pool` in chunks of at least kGrainElems elements when the
// total (items * per_item elements) is large, else inline.
template <class F>
void parallel_items(ThreadPool& pool, int64_t items, int64_t per_item, const F& body) {
  if (items <= 0) return;
  if (items > 1 && items * per_item >= 2 * kGrainElems) {
    pool.parallel_for(items, grain_for(per_item), body);
  } else {
    body(int64_t{0}, items);
  }
}

}  // namespace orchard::cpu::opt
