// Reductions (ReduceSum ... ReduceLogSumExp), ArgMax/ArgMin, CumSum and TopK.
// A reduction views its input as coalesced groups of kept and reduced dims; the trailing group is read as
// a contiguous block (kept: accumulated column-wise; reduced: one running value), so the common
// [outer, reduced, inner] layouts stream through memory. Work is split over output rows.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

constexpr int64_t kLanes = 8;  // partial accumulators of a contiguous reduced run

// How a reduction walks its input.
struct ReducePlan {
  Shape out_shape;
  int64_t outer = 1;  // output elements / inner
  int64_t inner = 1;  // trailing kept contiguous block (1 when the trailing group is reduced)
  int64_t run = 1;    // trailing reduced contiguous block (1 when the trailing group is kept)
  std::vector<int64_t> kept_dims, kept_strides;  // kept groups before `inner`
  std::vector<int64_t> red_dims, red_strides;    // reduced groups before `run`
  int64_t count = 1;  // input elements folded into each output
};

ReducePlan make_plan(const Shape& in, const std::vector<bool>& reduced, bool keepdims) {
  ReducePlan p;
  const auto strides = strides_of(in);
  struct Group {
    bool reduced;
    int64_t size;
    int64_t stride;
  };
  std::vector<Group> groups;
  for (size_t d = 0; d < in.rank(); ++d) {
    if (reduced[d]) {
      p.count *= in[d];
      if (keepdims) p.out_shape.push_back(1);
    } else {
      p.out_shape.push_back(in[d]);
    }
    if (in[d] == 1) continue;  // size-1 dims never change the walk
    if (!groups.empty() && groups.back().reduced == reduced[d]) {
      groups.back().size *= in[d];
      groups.back().stride = strides[d];
    } else {
      groups.push_back({reduced[d], in[d], strides[d]});
    }
  }
  if (!groups.empty()) {
    if (groups.back().reduced) p.run = groups.back().size;
    else p.inner = groups.back().size;
    groups.pop_back();
  }
  for (const Group& g : groups) {
    (g.reduced ? p.red_dims : p.kept_dims).push_back(g.size);
    (g.reduced ? p.red_strides : p.kept_strides).push_back(g.stride);
  }
  for (int64_t d : p.kept_dims) p.outer *= d;
  return p;
}

// Accumulator of additive reductions: double for floats, wrapping uint64 for integers.
template <class T>
using sum_t = std::conditional_t<is_float_v<T>, double, uint64_t>;

template <class T>
sum_t<T> to_sum(T x) {
  if constexpr (is_float_v<T>) return static_cast<double>(load(x));
  else return static_cast<uint64_t>(x);  // modulo 2^64, so sums and products wrap like two's complement
}

template <class T>
T from_sum(sum_t<T> a) {
  if constexpr (is_float_v<T>) return store<T>(a);
  else return static_cast<T>(a);  // modulo conversion (C++20)
}

template <class T>
struct SumOp {
  using A = sum_t<T>;
  static A init() { return A(0); }
  static A step(A a, T x) { return a + to_sum(x); }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t) { return from_sum<T>(a); }
};

template <class T>
struct MeanOp {
  using A = sum_t<T>;
  static A init() { return A(0); }
  static A step(A a, T x) { return a + to_sum(x); }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t n) {
    if constexpr (is_float_v<T>) {
      return store<T>(a / static_cast<double>(n));
    } else {
      if (n == 0) return T(0);
      if constexpr (std::is_signed_v<T>) return static_cast<T>(static_cast<int64_t>(a) / n);
      else return static_cast<T>(a / static_cast<uint64_t>(n));
    }
  }
};

template <class T>
struct ProdOp {
  using A = sum_t<T>;
  static A init() { return A(1); }
  static A step(A a, T x) { return a * to_sum(x); }
  static A merge(A a, A b) { return a * b; }
  static T finish(A a, int64_t) { return from_sum<T>(a); }
};

template <class T>
struct SumSquareOp {
  using A = sum_t<T>;
  static A init() { return A(0); }
  static A step(A a, T x) {
    const A v = to_sum(x);
    return a + v * v;
  }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t) { return from_sum<T>(a); }
};

template <class T>
struct L1Op {
  using A = sum_t<T>;
  static A init() { return A(0); }
  static A step(A a, T x) {
    if constexpr (is_float_v<T>) return a + std::abs(to_sum(x));
    else if constexpr (std::is_signed_v<T>) return a + (x < 0 ? A(0) - to_sum(x) : to_sum(x));
    else return a + to_sum(x);
  }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t) { return from_sum<T>(a); }
};

template <class T>
struct L2Op {
  using A = double;
  static A init() { return 0.0; }
  static A step(A a, T x) {
    const double v = static_cast<double>(load(x));
    return a + v * v;
  }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t) { return saturate_cast<T>(std::sqrt(a)); }
};

template <class T>
struct LogSumOp {
  using A = double;
  static A init() { return 0.0; }
  static A step(A a, T x) { return a + static_cast<double>(load(x)); }
  static A merge(A a, A b) { return a + b; }
  static T finish(A a, int64_t) { return saturate_cast<T>(std::log(a)); }
};

// log(sum(exp(x))) computed online: m is the running max, s the sum of exp(x - m).
struct LseAcc {
  double m = -std::numeric_limits<double>::infinity();
  double s = 0.0;
};

template <class T>
struct LogSumExpOp {
  using A = LseAcc;
  static A init() { return {}; }
  static A step(A a, T x) {
    const double v = static_cast<double>(load(x));
    if (std::isnan(v) || std::isnan(a.m)) return {std::numeric_limits<double>::quiet_NaN(), 1.0};
    if (v > a.m) {
      a.s = a.s * std::exp(a.m - v) + 1.0;
      a.m = v;
    } else if (v == a.m) {
      a.s += 1.0;
    } else {
      a.s += std::exp(v - a.m);
    }
    return a;
  }
  static A merge(A a, A b) {
    if (a.s == 0.0) return b;
    if (b.s == 0.0) return a;
    if (std::isnan(a.m) || std::isnan(b.m)) return {std::numeric_limits<double>::quiet_NaN(), 1.0};
    const double m = std::max(a.m, b.m);
    if (std::isinf(m)) return {m, a.s + b.s};  // both +inf, or both -inf sums of zeros
    return {m, a.s * std::exp(a.m - m) + b.s * std::exp(b.m - m)};
  }
  static T finish(A a, int64_t) {
    if (a.s == 0.0) return saturate_cast<T>(-std::numeric_limits<double>::infinity());
    return saturate_cast<T>(a.m + std::log(a.s));
  }
};

template <class C>
bool is_nan(C v) {
  if constexpr (std::is_floating_point_v<C>) return std::isnan(v);
  else return false;
}

template <class T>
struct MaxOp {
  using A = compute_t<T>;
  static A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  }
  static A step(A a, T x) { return merge(a, load(x)); }
  // NaN wins: once a is NaN, neither comparison is true.
  static A merge(A a, A v) { return v > a || is_nan(v) ? v : a; }
  static T finish(A a, int64_t) { return store<T>(a); }
};

template <class T>
struct MinOp {
  using A = compute_t<T>;
  static A init() {
    if constexpr (std::numeric_limits<A>::has_infinity) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
  static A step(A a, T x) { return merge(a, load(x)); }
  static A merge(A a, A v) { return v < a || is_nan(v) ? v : a; }
  static T finish(A a, int64_t) { return store<T>(a); }
};

template <class Op, class T>
void run_reduce(const ReducePlan& p, const T* x, T* y, ThreadPool& pool) {
  using A = typename Op::A;
  pool.parallel_for(p.outer, grain_for(p.count * p.inner), [&](int64_t begin, int64_t end) {
    std::vector<A> acc(static_cast<size_t>(p.inner > 1 ? p.inner : 0));
    for (int64_t o = begin; o < end; ++o) {
      const T* base = x + offset_of(o, p.kept_dims, p.kept_strides);
      if (p.inner > 1) {
        std::fill(acc.begin(), acc.end(), Op::init());
        A* a = acc.data();
        const int64_t n = p.inner;
        for_each_offset(p.red_dims, p.red_strides, [&](int64_t off) {
          const T* src = base + off;
          for (int64_t i = 0; i < n; ++i) a[i] = Op::step(a[i], src[i]);
        });
        T* dst = y + o * n;
        for (int64_t i = 0; i < n; ++i) dst[i] = Op::finish(a[i], p.count);
      } else {
        // Independent lanes break the dependency chain of one running value (and let it vectorise).
        A lanes[kLanes];
        std::fill(lanes, lanes + kLanes, Op::init());
        const int64_t n = p.run;
        for_each_offset(p.red_dims, p.red_strides, [&](int64_t off) {
          const T* src = base + off;
          int64_t i = 0;
          for (; i + kLanes <= n; i += kLanes) {
            for (int64_t j = 0; j < kLanes; ++j) lanes[j] = Op::step(lanes[j], src[i + j]);
          }
          for (; i < n; ++i) lanes[0] = Op::step(lanes[0], src[i]);
        });
        A a = lanes[0];
        for (int64_t j = 1; j < kLanes; ++j) a = Op::merge(a, lanes[j]);
        y[o] = Op::finish(a, p.count);
      }
    }
  });
}

// Reduce<Op>: axes from the `axes` attribute, or (AxesInput: ReduceSum from opset 13, the others from
// 18) from the optional input 1, where noop_with_empty_axes applies.
template <template <class> class Op, bool AxesInput>
class ReduceKernel final : public OpKernel {
 public:
  explicit ReduceKernel(const KernelCreateContext& c)
      : axes_from_input_(AxesInput),
        keepdims_(c.node.attr_int("keepdims", 1) != 0),
        noop_with_empty_axes_(c.node.attr_int("noop_with_empty_axes", 0) != 0),
        attr_axes_(c.node.attr_ints("axes")) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    std::vector<int64_t> axes = attr_axes_;
    if (axes_from_input_ && ctx.has_input(1)) {
      ORCHARD_ASSIGN_OR_RETURN(axes, tensor_to_ints(ctx.input(1), "axes"));
    }
    const int64_t rank = static_cast<int64_t>(x->rank());
    std::vector<bool> reduced(static_cast<size_t>(rank), false);
    if (axes.empty()) {
      if (!(axes_from_input_ && noop_with_empty_axes_)) reduced.assign(static_cast<size_t>(rank), true);
    } else {
      ORCHARD_ASSIGN_OR_RETURN(axes, normalize_axes(std::move(axes), rank));
      for (int64_t a : axes) reduced[static_cast<size_t>(a)] = true;
    }
    const ReducePlan plan = make_plan(x->shape(), reduced, keepdims_);
    return dispatch<kNumeric>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
      using T = decltype(tag);
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), plan.out_shape));
      if (y.numel() == 0) return Status::OK();
      run_reduce<Op<T>>(plan, x->data<T>(), y.data<T>(), ctx.pool());
      return Status::OK();
    });
  }

 private:
  bool axes_from_input_;
  bool keepdims_;
  bool noop_with_empty_axes_;
  std::vector<int64_t> attr_axes_;
};

// ArgMax (Max = true) / ArgMin: int64 index of the first (or, with select_last_index, last) extreme.
template <bool Max>
Status arg_extreme(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node.attr_int("axis", 0), rank));
  const bool keepdims = node.attr_int("keepdims", 1) != 0;
  const bool last = node.attr_int("select_last_index", 0) != 0;
  const AxisView v = view_around(x->shape(), axis);
  if (v.n == 0) return invalid_argument("cannot take ", node.op_type, " over axis ", axis, " of size 0 in ", x->description());
  Shape out_shape;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis) out_shape.push_back(x->dim(static_cast<size_t>(d)));
    else if (keepdims) out_shape.push_back(1);
  }
  return dispatch<kNumeric>(x->dtype(), node.op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int64, out_shape));
    if (y.numel() == 0) return Status::OK();
    const T* px = x->data<T>();
    int64_t* py = y.data<int64_t>();
    auto better = [last](C cand, C best) {
      if constexpr (Max) return last ? cand >= best : cand > best;
      else return last ? cand <= best : cand < best;
    };
    ctx.pool().parallel_for(v.outer, grain_for(v.n * v.inner), [&](int64_t begin, int64_t end) {
      std::vector<C> best(static_cast<size_t>(v.inner));
      for (int64_t o = begin; o < end; ++o) {
        const T* src = px + o * v.n * v.inner;
        int64_t* dst = py + o * v.inner;
        for (int64_t i = 0; i < v.inner; ++i) {
          best[static_cast<size_t>(i)] = load(src[i]);
          dst[i] = 0;
        }
        for (int64_t r = 1; r < v.n; ++r) {
          const T* row = src + r * v.inner;
          for (int64_t i = 0; i < v.inner; ++i) {
            const C c = load(row[i]);
            if (better(c, best[static_cast<size_t>(i)])) {
              best[static_cast<size_t>(i)] = c;
              dst[i] = r;
            }
          }
        }
      }
    });
    return Status::OK();
  });
}

Status argmax(OpContext& ctx) { return arg_extreme<true>(ctx); }
Status argmin(OpContext& ctx) { return arg_extreme<false>(ctx); }

// Adds in T with wrap-around for integers (signed overflow would be undefined).
template <class C>
C wrapping_add(C a, C b) {
  if constexpr (std::is_integral_v<C>) {
    using U = std::make_unsigned_t<C>;
    return static_cast<C>(static_cast<U>(static_cast<U>(a) + static_cast<U>(b)));
  } else {
    return a + b;
  }
}

Status cumsum(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* axis_t, ctx.input_tensor(1));
  if (axis_t->numel() != 1) return invalid_argument("axis must hold one value, got ", axis_t->description());
  ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> axis_v, tensor_to_ints(*axis_t, "axis"));
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(axis_v[0], rank));
  const bool exclusive = ctx.node().attr_int("exclusive", 0) != 0;
  const bool reverse = ctx.node().attr_int("reverse", 0) != 0;
  const AxisView v = view_around(x->shape(), axis);
  return dispatch<kFloats | kInts>(x->dtype(), "CumSum", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    if (y.numel() == 0) return Status::OK();
    const T* px = x->data<T>();
    T* py = y.data<T>();
    ctx.pool().parallel_for(v.outer, grain_for(v.n * v.inner), [&](int64_t begin, int64_t end) {
      std::vector<C> acc(static_cast<size_t>(v.inner));
      for (int64_t o = begin; o < end; ++o) {
        std::fill(acc.begin(), acc.end(), C(0));
        for (int64_t s = 0; s < v.n; ++s) {
          const int64_t r = reverse ? v.n - 1 - s : s;
          const T* src = px + (o * v.n + r) * v.inner;
          T* dst = py + (o * v.n + r) * v.inner;
          for (int64_t i = 0; i < v.inner; ++i) {
            C& a = acc[static_cast<size_t>(i)];
            if (exclusive) {
              dst[i] = store<T>(a);
              a = wrapping_add(a, load(src[i]));
            } else {
              a = wrapping_add(a, load(src[i]));
              dst[i] = store<T>(a);
            }
          }
        }
      }
    });
    return Status::OK();
  });
}

// Strict "a ranks below b" with NaN above every number (a total order, safe for std::sort).
template <class C>
bool value_less(C a, C b) {
  if constexpr (std::is_floating_point_v<C>) {
    if (std::isnan(a)) return false;
    if (std::isnan(b)) return true;
  }
  return a < b;
}

// TopK: k from the attribute (opset < 10) or input 1; ties keep the lower index first.
template <bool KInput>
Status topk(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  int64_t k = 0;
  if constexpr (!KInput) {
    if (!node.attr("k")) return invalid_argument("attribute k is required");
    k = node.attr_int("k", 0);
  } else {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* kt, ctx.input_tensor(1));
    if (kt->numel() != 1) return invalid_argument("K must hold one value, got ", kt->description());
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> kv, tensor_to_ints(*kt, "K"));
    k = kv[0];
  }
  const int64_t rank = static_cast<int64_t>(x->rank());
  ORCHARD_ASSIGN_OR_RETURN(const int64_t axis, normalize_axis(node.attr_int("axis", -1), rank));
  const bool largest = node.attr_int("largest", 1) != 0;
  const AxisView v = view_around(x->shape(), axis);
  if (k < 0 || k > v.n) return invalid_argument("k ", k, " is out of range for axis ", axis, " of size ", v.n, " in ", x->description());
  Shape out_shape = x->shape();
  out_shape[static_cast<size_t>(axis)] = k;
  return dispatch<kNumeric>(x->dtype(), "TopK", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor values, ctx.make_output(0, x->dtype(), out_shape));
    ORCHARD_ASSIGN_OR_RETURN(Tensor indices, ctx.make_output(1, DType::int64, out_shape));
    if (values.numel() == 0) return Status::OK();
    const T* px = x->data<T>();
    T* pv = values.data<T>();
    int64_t* pi = indices.data<int64_t>();
    using Item = std::pair<C, int64_t>;
    auto before = [largest](const Item& a, const Item& b) {
      if (largest ? value_less(b.first, a.first) : value_less(a.first, b.first)) return true;
      if (largest ? value_less(a.first, b.first) : value_less(b.first, a.first)) return false;
      return a.second < b.second;
    };
    ctx.pool().parallel_for(v.outer * v.inner, grain_for(v.n), [&](int64_t begin, int64_t end) {
      std::vector<Item> items(static_cast<size_t>(v.n));
      for (int64_t s = begin; s < end; ++s) {
        const int64_t o = s / v.inner, i = s % v.inner;
        const T* src = px + o * v.n * v.inner + i;
        for (int64_t r = 0; r < v.n; ++r) items[static_cast<size_t>(r)] = {load(src[r * v.inner]), r};
        std::partial_sort(items.begin(), items.begin() + k, items.end(), before);
        T* dv = pv + o * k * v.inner + i;
        int64_t* di = pi + o * k * v.inner + i;
        for (int64_t j = 0; j < k; ++j) {
          dv[j * v.inner] = store<T>(items[static_cast<size_t>(j)].first);
          di[j * v.inner] = items[static_cast<size_t>(j)].second;
        }
      }
    });
    return Status::OK();
  });
}

// Each reduction: axes from the attribute through opset 17, from input 1 since opset 18.
#define ORCHARD_REDUCE(name, op) \
  {"", name, 1, 17, make<ReduceKernel<op, false>>}, {"", name, 18, kVerifiedOpset, make<ReduceKernel<op, true>>}

constexpr KernelDef kKernels[] = {
    {"", "ReduceSum", 1, 12, make<ReduceKernel<SumOp, false>>},
    {"", "ReduceSum", 13, kVerifiedOpset, make<ReduceKernel<SumOp, true>>},
    ORCHARD_REDUCE("ReduceMean", MeanOp),
    ORCHARD_REDUCE("ReduceMax", MaxOp),
    ORCHARD_REDUCE("ReduceMin", MinOp),
    ORCHARD_REDUCE("ReduceProd", ProdOp),
    ORCHARD_REDUCE("ReduceL1", L1Op),
    ORCHARD_REDUCE("ReduceL2", L2Op),
    ORCHARD_REDUCE("ReduceLogSum", LogSumOp),
    ORCHARD_REDUCE("ReduceLogSumExp", LogSumExpOp),
    ORCHARD_REDUCE("ReduceSumSquare", SumSquareOp),
    {"", "ArgMax", 1, kVerifiedOpset, stateless<argmax>},
    {"", "ArgMin", 1, kVerifiedOpset, stateless<argmin>},
    {"", "CumSum", 11, kVerifiedOpset, stateless<cumsum>},
    {"", "TopK", 1, 9, stateless<topk<false>>},
    {"", "TopK", 10, kVerifiedOpset, stateless<topk<true>>},
};

#undef ORCHARD_REDUCE

}  // namespace

std::span<const KernelDef> reduction_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
