// Splitting a kernel's work over the intra-op pool: the grain a task should have, ranges split by it, and
// element-wise maps built on them.
#pragma once

#include <algorithm>
#include <cstdint>

#include "backends/cpu/element_types.hpp"
#include "orchard/thread_pool.hpp"
#include "runtime/op_kernel.hpp"

namespace orchard::cpu {

using runtime::OpContext;

inline constexpr int64_t kGrainElems = 1 << 15;  // elements a parallel task should touch at least

// Returns a parallel_for grain (items per task) for items that each touch `work` elements.
inline int64_t grain_for(int64_t work) { return std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, work)); }

// Calls body(begin, end) over [0, n): in chunks of kGrainElems on `pool` when n is large, else inline.
template <class F>
void parallel_range(ThreadPool& pool, int64_t n, const F& body) {
  if (n >= 2 * kGrainElems) {
    pool.parallel_for(n, kGrainElems, body);
  } else if (n > 0) {
    body(int64_t{0}, n);
  }
}

// y[i] = f(x[i]) into a new output 0 of dtype out_dt and x's shape.
template <class In, class Out, class F>
Status unary_map(OpContext& ctx, const Tensor& x, DType out_dt, const F& f) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_dt, x.shape()));
  const In* in = x.data<In>();
  Out* out = y.data<Out>();
  parallel_range(ctx.pool(), x.numel(), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = f(in[i]);
  });
  return Status::OK();
}

// A unary op on input 0 whose output has its dtype: y = store(fn(load(x))), for the dtypes in Set.
template <unsigned Set, class F>
Status unary_same(OpContext& ctx, const F& fn) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  return dispatch<Set>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    return unary_map<T, T>(ctx, *x, x->dtype(), [&](T v) { return store<T>(fn(load(v))); });
  });
}

}  // namespace orchard::cpu
