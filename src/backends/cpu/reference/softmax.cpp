// Softmax, LogSoftmax, Hardmax, NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
// Softmax-like ops view the input as [outer, n, inner] (n the normalised extent) and work on tiles of
// up to kTile columns of a [n, inner] block, so both axis = -1 and outer axes stream through memory.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

constexpr int64_t kTile = 64;            // columns of a [n, inner] block handled together

enum class Mode { softmax, log_softmax, hardmax };

// Applies `mode` along n for columns [c0, c0 + w) of the block at `x` (row stride `inner`), writing `y`.
// `work` holds n * w values.
template <Mode M, class T>
void normalize_tile(const T* x, T* y, int64_t n, int64_t inner, int64_t c0, int64_t w, compute_t<T>* work,
                    compute_t<T>* best, compute_t<T>* sum) {
  using C = compute_t<T>;
  for (int64_t c = 0; c < w; ++c) best[c] = -std::numeric_limits<C>::infinity();
  std::vector<int64_t> arg;
  if constexpr (M == Mode::hardmax) arg.assign(static_cast<size_t>(w), 0);
  for (int64_t r = 0; r < n; ++r) {
    const T* row = x + r * inner + c0;
    C* wr = work + r * w;
    for (int64_t c = 0; c < w; ++c) {
      const C v = load(row[c]);
      wr[c] = v;
      if constexpr (M == Mode::hardmax) {
        if (v > best[c] || (r == 0)) {
          best[c] = v;
          arg[static_cast<size_t>(c)] = r;
        }
      } else {
        best[c] = std::max(best[c], v);
      }
    }
  }
  if constexpr (M == Mode::hardmax) {
    for (int64_t r = 0; r < n; ++r) {
      T* out = y + r * inner + c0;
      for (int64_t c = 0; c < w; ++c) out[c] = store<T>(C(arg[static_cast<size_t>(c)] == r ? 1 : 0));
    }
    return;
  }
  for (int64_t c = 0; c < w; ++c) sum[c] = 0;
  // An all -inf column gives max -inf; subtracting 0 instead keeps exp(-inf) = 0 rather than NaN.
  for (int64_t c = 0; c < w; ++c) {
    if (std::isinf(best[c]) && best[c] < 0) best[c] = 0;
  }
  for (int64_t r = 0; r < n; ++r) {
    C* wr = work + r * w;
    for (int64_t c = 0; c < w; ++c) {
      const C d = wr[c] - best[c];
      const C e = std::exp(d);
      sum[c] += e;
      wr[c] = M == Mode::softmax ? e : d;
    }
  }
  if constexpr (M == Mode::softmax) {
    for (int64_t c = 0; c < w; ++c) sum[c] = C(1) / sum[c];
    for (int64_t r = 0; r < n; ++r) {
      const C* wr = work + r * w;
      T* out = y + r * inner + c0;
      for (int64_t c = 0; c < w; ++c) out[c] = store<T>(wr[c] * sum[c]);
    }
  } else {
    for (int64_t c = 0; c < w; ++c) sum[c] = std::log(sum[c]);
    for (int64_t r = 0; r < n; ++r) {
      const C* wr = work + r * w;
      T* out = y + r * inner + c0;
      for (int64_t c = 0; c < w; ++c) out[c] = store<T>(wr[c] - sum[c]);
    }
  }
}

// Applies `mode` to one contiguous row of n values (the inner == 1 case). `work` holds n values.
template <Mode M, class T>
void normalize_row(const T* x, T* y, int64_t n, compute_t<T>* work) {
  using C = compute_t<T>;
  constexpr int64_t kLanes = 8;  // independent partial maxima / sums
  for (int64_t i = 0; i < n; ++i) work[i] = load(x[i]);
  if constexpr (M == Mode::hardmax) {
    int64_t arg = 0;
    for (int64_t i = 1; i < n; ++i) {
      if (work[i] > work[arg]) arg = i;
    }
    for (int64_t i = 0; i < n; ++i) y[i] = store<T>(C(i == arg ? 1 : 0));
    return;
  }
  C lanes[kLanes];
  std::fill(lanes, lanes + kLanes, -std::numeric_limits<C>::infinity());
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t j = 0; j < kLanes; ++j) lanes[j] = std::max(lanes[j], work[i + j]);
  }
  for (; i < n; ++i) lanes[0] = std::max(lanes[0], work[i]);
  C m = lanes[0];
  for (int64_t j = 1; j < kLanes; ++j) m = std::max(m, lanes[j]);
  if (std::isinf(m) && m < 0) m = 0;  // all -inf: exp(-inf - 0) = 0 rather than NaN
  C sum = 0;
  for (int64_t k = 0; k < n; ++k) {
    const C e = std::exp(work[k] - m);
    sum += e;
    if constexpr (M == Mode::softmax) work[k] = e;
  }
  if constexpr (M == Mode::softmax) {
    const C inv = C(1) / sum;
    for (int64_t k = 0; k < n; ++k) y[k] = store<T>(work[k] * inv);
  } else {
    const C log_sum = std::log(sum);
    for (int64_t k = 0; k < n; ++k) y[k] = store<T>((work[k] - m) - log_sum);
  }
}

// Runs `mode` over every [n, inner] block of `x` into `y` (same layout), in parallel tiles.
template <Mode M, class T>
void normalize_blocks(const T* x, T* y, const AxisView& v, ThreadPool& pool) {
  using C = compute_t<T>;
  if (v.outer * v.n * v.inner == 0) return;
  if (v.inner == 1) {
    pool.parallel_for(v.outer, grain_for(v.n), [&](int64_t begin, int64_t end) {
      std::vector<C> work(static_cast<size_t>(v.n));
      for (int64_t o = begin; o < end; ++o) normalize_row<M>(x + o * v.n, y + o * v.n, v.n, work.data());
    });
    return;
  }
  const int64_t tiles = (v.inner + kTile - 1) / kTile;
  const int64_t per_tile = v.n * std::min(v.inner, kTile);
  pool.parallel_for(v.outer * tiles, grain_for(per_tile),
                    [&](int64_t begin, int64_t end) {
                      const int64_t wmax = std::min(v.inner, kTile);
                      std::vector<C> work(static_cast<size_t>(v.n * wmax)), best(static_cast<size_t>(wmax)),
                          sum(static_cast<size_t>(wmax));
                      for (int64_t t = begin; t < end; ++t) {
                        const int64_t o = t / tiles, c0 = (t % tiles) * kTile;
                        const int64_t w = std::min(kTile, v.inner - c0);
                        const int64_t base = o * v.n * v.inner;
                        normalize_tile<M>(x + base, y + base, v.n, v.inner, c0, w, work.data(), best.data(),
                                          sum.data());
                      }
                    });
}

// Softmax-like ops. Before opset 13 the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
// (axis defaults to 1); from 13 the op runs along the one axis (default -1).
template <Mode M, bool Coerce2D>
Status softmax_like(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const int64_t rank = static_cast<int64_t>(x->rank());
  const int64_t axis_attr = ctx.node().attr_int("axis", Coerce2D ? 1 : -1);
  AxisView v;
  if (Coerce2D) {
    // The 2-D coercion accepts axis == rank (everything in the outer dim).
    if (axis_attr < -rank || axis_attr > rank) {
      return invalid_argument("axis ", axis_attr, " is out of range for rank ", rank);
    }
    const int64_t axis = axis_attr < 0 ? axis_attr + rank : axis_attr;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? v.outer : v.n) *= x->dim(static_cast<size_t>(d));
  } else {
    ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(axis_attr, rank));
    v = view_around(x->shape(), axis);
  }
  return dispatch<kFloats>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    normalize_blocks<M>(x->data<T>(), y.data<T>(), v, ctx.pool());
    return Status::OK();
  });
}

enum class Reduction { none, sum, mean };

Result<Reduction> parse_reduction(const graph::Node& node) {
  const std::string r = node.attr_string("reduction", "mean");
  if (r == "none") return Reduction::none;
  if (r == "sum") return Reduction::sum;
  if (r == "mean") return Reduction::mean;
  return invalid_argument("reduction '", r, "' is not one of none, sum, mean");
}

// The shared checks and layout of the two losses: input [N, C, d1..dk], target [N, d1..dk].
struct LossLayout {
  int64_t n = 0, c = 0, d = 1;
  Shape target_shape;
};

Result<LossLayout> loss_layout(const Tensor& input, const Tensor& target, const Tensor* weight) {
  if (input.rank() < 2) return invalid_argument("input must have rank >= 2 (N, C, ...), got ", input.description());
  if (target.dtype() != DType::int32 && target.dtype() != DType::int64) {
    return invalid_argument("target must be int32 or int64, got ", target.description());
  }
  LossLayout l;
  l.n = input.dim(0);
  l.c = input.dim(1);
  bool ok = target.rank() + 1 == input.rank() && target.dim(0) == l.n;
  for (size_t k = 2; ok && k < input.rank(); ++k) {
    ok = target.dim(k - 1) == input.dim(k);
    l.d *= input.dim(k);
  }
  if (!ok) return invalid_argument("target ", target.description(), " does not match input ", input.description());
  if (weight && (weight->rank() != 1 || weight->dim(0) != l.c)) {
    return invalid_argument("weight must have shape [", l.c, "], got ", weight->description());
  }
  if (weight && weight->dtype() != input.dtype()) {
    return invalid_argument("weight ", weight->description(), " must have the input's element type ", dtype_name(input.dtype()));
  }
  l.target_shape = target.shape();
  return l;
}

// The inputs and attributes of both losses: input 0 [N, C, d...], target [N, d...], optional weight [C].
struct LossArgs {
  const Tensor* input = nullptr;
  const Tensor* target = nullptr;
  const Tensor* weight = nullptr;
  LossLayout layout;
  Reduction reduction = Reduction::mean;
  bool has_ignore = false;
  int64_t ignore_index = 0;
};

Result<LossArgs> loss_args(OpContext& ctx) {
  LossArgs a;
  ORCHARD_ASSIGN_OR_RETURN(a.input, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(a.target, ctx.input_tensor(1));
  a.weight = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  ORCHARD_ASSIGN_OR_RETURN(a.layout, loss_layout(*a.input, *a.target, a.weight));
  ORCHARD_ASSIGN_OR_RETURN(a.reduction, parse_reduction(ctx.node()));
  a.has_ignore = ctx.node().attr("ignore_index") != nullptr;
  a.ignore_index = ctx.node().attr_int("ignore_index", 0);
  return a;
}

// Negative log-likelihood of `logp` ([N, C, D] in compute type) at the target into output 0 of ctx.
template <class T>
Status nll_from(OpContext& ctx, const compute_t<T>* logp, const LossArgs& a) {
  const Tensor& target = *a.target;
  const Tensor* weight = a.weight;
  const LossLayout& l = a.layout;
  const Reduction reduction = a.reduction;
  const bool has_ignore = a.has_ignore;
  const int64_t ignore_index = a.ignore_index;
  const int64_t items = l.n * l.d;
  std::vector<double> loss(static_cast<size_t>(reduction == Reduction::none ? items : 0));
  double total = 0.0, weight_sum = 0.0;
  for (int64_t i = 0; i < items; ++i) {
    const int64_t b = i / l.d, p = i % l.d;
    const int64_t t = element_as_int(target, i);
    double li = 0.0;
    if (!(has_ignore && t == ignore_index)) {
      if (t < 0 || t >= l.c) return invalid_argument("target value ", t, " is out of range [0, ", l.c, ")");
      const double w = weight ? static_cast<double>(load(weight->data<T>()[t])) : 1.0;
      li = -w * static_cast<double>(logp[(b * l.c + t) * l.d + p]);
      weight_sum += w;
    }
    if (reduction == Reduction::none) loss[static_cast<size_t>(i)] = li;
    total += li;
  }
  const DType dt = dtype_of<T>();
  if (reduction == Reduction::none) {
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dt, l.target_shape));
    T* py = y.data<T>();
    for (int64_t i = 0; i < items; ++i) py[i] = store<T>(loss[static_cast<size_t>(i)]);
    return Status::OK();
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dt, Shape{}));
  y.data<T>()[0] = store<T>(reduction == Reduction::sum ? total : total / weight_sum);
  return Status::OK();
}

Status nll_loss(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const LossArgs a, loss_args(ctx));
  return dispatch<kFloats>(a.input->dtype(), "NegativeLogLikelihoodLoss", [&](auto tag) -> Status {
    using T = decltype(tag);
    std::vector<compute_t<T>> tmp;
    return nll_from<T>(ctx, as_compute<T>(*a.input, tmp), a);
  });
}

Status softmax_cross_entropy(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const LossArgs a, loss_args(ctx));
  const Tensor* scores = a.input;
  const LossLayout& l = a.layout;
  return dispatch<kFloats>(scores->dtype(), "SoftmaxCrossEntropyLoss", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    // log_softmax over C in the compute type; output 1 (log_prob) gets it rounded to T.
    const AxisView v{l.n, l.c, l.d};
    std::vector<C> logp(static_cast<size_t>(scores->numel())), tmp;
    normalize_blocks<Mode::log_softmax>(as_compute<T>(*scores, tmp), logp.data(), v, ctx.pool());
    ORCHARD_RETURN_IF_ERROR(nll_from<T>(ctx, logp.data(), a));
    if (ctx.has_output(1)) {
      ORCHARD_ASSIGN_OR_RETURN(Tensor lp, ctx.make_output(1, scores->dtype(), scores->shape()));
      T* out = lp.data<T>();
      for (size_t i = 0; i < logp.size(); ++i) out[i] = store<T>(logp[i]);
    }
    return Status::OK();
  });
}

constexpr KernelDef kKernels[] = {
    {"", "Softmax", 1, 12, stateless<softmax_like<Mode::softmax, true>>},
    {"", "Softmax", 13, kVerifiedOpset, stateless<softmax_like<Mode::softmax, false>>},
    {"", "LogSoftmax", 1, 12, stateless<softmax_like<Mode::log_softmax, true>>},
    {"", "LogSoftmax", 13, kVerifiedOpset, stateless<softmax_like<Mode::log_softmax, false>>},
    {"", "Hardmax", 1, 12, stateless<softmax_like<Mode::hardmax, true>>},
    {"", "Hardmax", 13, kVerifiedOpset, stateless<softmax_like<Mode::hardmax, false>>},
    {"", "NegativeLogLikelihoodLoss", 12, kVerifiedOpset, stateless<nll_loss>},
    {"", "SoftmaxCrossEntropyLoss", 12, kVerifiedOpset, stateless<softmax_cross_entropy>},
};

}  // namespace

std::span<const KernelDef> softmax_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
