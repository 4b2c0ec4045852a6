// Elementwise arithmetic, math functions, comparison, logic, selection (Where, Clip, Shrink) and Identity.
// Binary ops broadcast numpy-style from opset 7; before that, B is broadcast onto A by the `broadcast` and
// `axis` attributes. Integer arithmetic wraps like two's-complement hardware; float16/bfloat16 compute in float.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// py[i] = f(pa[i], pb[i]) over the broadcast of shapes sa and sb (== `out`). py may alias pa when sa == out.
template <class A, class B, class Out, class F>
void apply_binary(OpContext& ctx, const A* pa, const Shape& sa, const B* pb, const Shape& sb, Out* py, const Shape& out,
                  const F& f) {
  for_each_run<2>(ctx.pool(), out, {&sa, &sb},
                  [&](int64_t o, const std::array<int64_t, 2>& off, int64_t n, const std::array<int64_t, 2>& st) {
                    const A* x = pa + off[0];
                    const B* y = pb + off[1];
                    Out* dst = py + o;
                    if (st[0] == 1 && st[1] == 1) {
                      for (int64_t k = 0; k < n; ++k) dst[k] = f(x[k], y[k]);
                    } else {
                      for (int64_t k = 0; k < n; ++k) dst[k] = f(x[k * st[0]], y[k * st[1]]);
                    }
                  });
}

// A unary predicate on floats: y (bool) = fn(load(x)).
template <class F>
Status unary_predicate(OpContext& ctx, const F& fn) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  return dispatch<kFloats>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    return unary_map<T, bool>(ctx, *x, DType::boolean, [&](T v) { return static_cast<bool>(fn(load(v))); });
  });
}

// ---- binary operands -------------------------------------------------------------------------------

struct Operands {
  const Tensor* a;
  const Tensor* b;
  Shape b_shape;  // B's shape as broadcast against A (differs from b->shape() for legacy `axis` broadcast)
};

// Returns inputs 0 and 1, checking they share a dtype (when same_dtype), with B's shape adjusted for the
// opset < 7 form `broadcast=1, axis=k`: B's dims line up with A's from dim k.
Result<Operands> binary_operands(OpContext& ctx, bool same_dtype = true) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
  if (same_dtype && a->dtype() != b->dtype()) {
    return invalid_argument("inputs have different element types: ", a->description(), " and ", b->description());
  }
  Operands ops{a, b, b->shape()};
  const graph::Node& node = ctx.node();
  if (node.opset < 7 && node.attr_int("broadcast", 0) != 0) {
    if (const graph::Attribute* ax = node.attr("axis")) {
      const int64_t rank_a = static_cast<int64_t>(a->rank());
      const int64_t rank_b = static_cast<int64_t>(b->rank());
      const int64_t axis = ax->i < 0 ? ax->i + rank_a : ax->i;
      if (axis < 0 || axis + rank_b > rank_a) {
        return invalid_argument("broadcast axis ", ax->i, " does not fit B ", b->shape().to_string(), " into A ",
                                a->shape().to_string());
      }
      std::vector<int64_t> dims(static_cast<size_t>(rank_a), 1);
      for (int64_t d = 0; d < rank_b; ++d) dims[static_cast<size_t>(axis + d)] = b->shape()[static_cast<size_t>(d)];
      ops.b_shape = Shape(std::move(dims));
    }
  }
  return ops;
}

// out = f(load(a), load(b)) stored as Out, for A and B of the same element type T.
template <class T, class Out, class F>
Status binary_same(OpContext& ctx, const Operands& ops, DType out_dt, const F& f) {
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&ops.a->shape(), &ops.b_shape}));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_dt, shape));
  apply_binary(ctx, ops.a->data<T>(), ops.a->shape(), ops.b->data<T>(), ops.b_shape, y.data<Out>(), shape,
               [&](const T& x, const T& z) { return store<Out>(f(load(x), load(z))); });
  return Status::OK();
}

// The unsigned type integer arithmetic on C wraps in (at least unsigned int, so no promotion to int).
template <class C>
using wrap_t = std::make_unsigned_t<decltype(C{} + C{})>;

// ---- arithmetic ------------------------------------------------------------------------------------

template <class Op>
Status arithmetic(OpContext& ctx, const Op& op) {
  ORCHARD_ASSIGN_OR_RETURN(Operands ops, binary_operands(ctx));
  const DType dt = ops.a->dtype();
  return dispatch<kNumeric>(dt, ctx.node().op_type, [&](auto tag) {
    using T = decltype(tag);
    return binary_same<T, T>(ctx, ops, dt, op);
  });
}

Status add(OpContext& ctx) {
  return arithmetic(ctx, [](auto x, auto y) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<wrap_t<C>>(x) + static_cast<wrap_t<C>>(y));
    else return x + y;
  });
}

Status sub(OpContext& ctx) {
  return arithmetic(ctx, [](auto x, auto y) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<wrap_t<C>>(x) - static_cast<wrap_t<C>>(y));
    else return x - y;
  });
}

Status mul(OpContext& ctx) {
  return arithmetic(ctx, [](auto x, auto y) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) return static_cast<C>(static_cast<wrap_t<C>>(x) * static_cast<wrap_t<C>>(y));
    else return x * y;
  });
}

Status div(OpContext& ctx) {
  return arithmetic(ctx, [](auto x, auto y) {
    using C = decltype(x);
    if constexpr (std::is_integral_v<C>) {
      if (y == 0) return C(0);  // integer division by zero is undefined in ONNX; give 0
      if constexpr (std::is_signed_v<C>) {
        if (y == C(-1)) return static_cast<C>(wrap_t<C>(0) - static_cast<wrap_t<C>>(x));  // no INT_MIN / -1 trap
      }
      return static_cast<C>(x / y);  // truncates toward zero
    } else {
      return x / y;
    }
  });
}

// Mod: fmod=0 takes the divisor's sign (Python %), fmod=1 the dividend's (C fmod). x mod 0 is 0 for integers.
class ModKernel final : public OpKernel {
 public:
  explicit ModKernel(const KernelCreateContext& c) : fmod_(c.node.attr_int("fmod", 0) != 0) {}
  static Status validate(const KernelCreateContext& c) {
    const int64_t f = c.node.attr_int("fmod", 0);
    if (f != 0 && f != 1) return invalid_argument("fmod must be 0 or 1, got ", f);
    return Status::OK();
  }

  Status run(OpContext& ctx) const override {
    const bool fmod = fmod_;
    return arithmetic(ctx, [fmod](auto x, auto y) {
      using C = decltype(x);
      if constexpr (std::is_integral_v<C>) {
        if (y == 0) return C(0);
        if constexpr (std::is_signed_v<C>) {
          if (y == C(-1)) return C(0);
        }
        C r = static_cast<C>(x % y);
        if constexpr (std::is_signed_v<C>) {
          if (!fmod && r != 0 && ((r < 0) != (y < 0))) r = static_cast<C>(r + y);
        }
        return r;
      } else {
        C r = std::fmod(x, y);
        if (!fmod && r != 0 && ((r < 0) != (y < 0))) r += y;
        return r;
      }
    });
  }

 private:
  bool fmod_;
};

// Integer power by squaring, wrapping on overflow; negative exponents give the truncated 1 / x^-e.
template <class T>
T int_pow(T base, int64_t e) {
  if (e < 0) {
    if (base == 1) return T(1);
    if constexpr (std::is_signed_v<T>) {
      if (base == -1) return (e & 1) ? T(-1) : T(1);
    }
    return T(0);
  }
  using U = wrap_t<T>;
  U result = 1, b = static_cast<U>(base);
  auto n = static_cast<uint64_t>(e);
  while (n) {
    if (n & 1) result = static_cast<U>(result * b);
    b = static_cast<U>(b * b);
    n >>= 1;
  }
  return static_cast<T>(result);
}

// Pow: the exponent may have another numeric type than the base (opset 12+). Integer exponents are kept
// exact (int64); float exponents computed in double. The result has the base's type.
template <class T, class E>
Status pow_typed(OpContext& ctx, const Operands& ops, const std::vector<E>& exps) {
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&ops.a->shape(), &ops.b_shape}));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, ops.a->dtype(), shape));
  apply_binary(ctx, ops.a->data<T>(), ops.a->shape(), exps.data(), ops.b_shape, y.data<T>(), shape,
               [](const T& base, E e) -> T {
                 if constexpr (std::is_integral_v<T> && std::is_integral_v<E>) {
                   return int_pow<T>(base, e);
                 } else if constexpr (std::is_integral_v<T>) {
                   return wrapping_cast<T>(std::pow(static_cast<double>(base), static_cast<double>(e)));
                 } else {
                   return store<T>(std::pow(static_cast<double>(load(base)), static_cast<double>(e)));
                 }
               });
  return Status::OK();
}

Status pow_op(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(Operands ops, binary_operands(ctx, /*same_dtype=*/false));
  const Tensor& b = *ops.b;
  const bool int_exp = dtype_is_integer(b.dtype());
  if (!int_exp && !dtype_is_float(b.dtype())) {
    return unsupported("Pow: exponent element type ", dtype_name(b.dtype()), " is not supported");
  }
  // The exponent as int64 or double (one copy), so that the base needs one instantiation per exponent kind.
  std::vector<int64_t> iexp;
  std::vector<double> fexp;
  if (int_exp) {
    iexp.resize(static_cast<size_t>(b.numel()));
    for (int64_t i = 0; i < b.numel(); ++i) iexp[static_cast<size_t>(i)] = element_as_int(b, i);
  } else {
    fexp.resize(static_cast<size_t>(b.numel()));
    for (int64_t i = 0; i < b.numel(); ++i) fexp[static_cast<size_t>(i)] = element_as_double(b, i);
  }
  return dispatch<kNumeric>(ops.a->dtype(), "Pow base", [&](auto tag) -> Status {
    using T = decltype(tag);
    return int_exp ? pow_typed<T>(ctx, ops, iexp) : pow_typed<T>(ctx, ops, fexp);
  });
}

// ---- unary math ------------------------------------------------------------------------------------

template <class C>
C abs_value(C v) {
  if constexpr (std::is_unsigned_v<C>) return v;
  else if constexpr (std::is_integral_v<C>) return v < 0 ? static_cast<C>(wrap_t<C>(0) - static_cast<wrap_t<C>>(v)) : v;
  else return std::fabs(v);
}

Status abs_op(OpContext& ctx) {
  return unary_same<kNumeric>(ctx, [](auto v) { return abs_value(v); });
}

Status neg(OpContext& ctx) {
  return unary_same<kFloats | kSignedInts>(ctx, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_integral_v<C>) return static_cast<C>(wrap_t<C>(0) - static_cast<wrap_t<C>>(v));
    else return -v;
  });
}

Status sign(OpContext& ctx) {
  return unary_same<kNumeric>(ctx, [](auto v) {
    using C = decltype(v);
    if constexpr (std::is_floating_point_v<C>) {
      if (std::isnan(v)) return v;
    }
    if constexpr (std::is_unsigned_v<C>) return static_cast<C>(v != 0);
    else return static_cast<C>(static_cast<int>(v > C(0)) - static_cast<int>(v < C(0)));
  });
}

// Rounds to the nearest integer, ties to even (independent of the FP rounding mode).
template <class C>
C round_half_even(C v) {
  const C r = std::round(v);
  if (std::fabs(v - std::trunc(v)) == C(0.5)) return C(2) * std::round(v / C(2));
  return r;
}

// Unary float math: one line per op.
#define ORCHARD_FLOAT_UNARY(name, expr)                                 \
  Status name(OpContext& ctx) {                                         \
    return unary_same<kFloats>(ctx, [](auto v) -> decltype(v) { return expr; }); \
  }
ORCHARD_FLOAT_UNARY(reciprocal, decltype(v)(1) / v)
ORCHARD_FLOAT_UNARY(sqrt_op, std::sqrt(v))
ORCHARD_FLOAT_UNARY(exp_op, std::exp(v))
ORCHARD_FLOAT_UNARY(log_op, std::log(v))
ORCHARD_FLOAT_UNARY(ceil_op, std::ceil(v))
ORCHARD_FLOAT_UNARY(floor_op, std::floor(v))
ORCHARD_FLOAT_UNARY(round_op, round_half_even(v))
ORCHARD_FLOAT_UNARY(erf_op, std::erf(v))
ORCHARD_FLOAT_UNARY(sin_op, std::sin(v))
ORCHARD_FLOAT_UNARY(cos_op, std::cos(v))
ORCHARD_FLOAT_UNARY(tan_op, std::tan(v))
ORCHARD_FLOAT_UNARY(asin_op, std::asin(v))
ORCHARD_FLOAT_UNARY(acos_op, std::acos(v))
ORCHARD_FLOAT_UNARY(atan_op, std::atan(v))
ORCHARD_FLOAT_UNARY(sinh_op, std::sinh(v))
ORCHARD_FLOAT_UNARY(cosh_op, std::cosh(v))
ORCHARD_FLOAT_UNARY(tanh_op, std::tanh(v))
ORCHARD_FLOAT_UNARY(asinh_op, std::asinh(v))
ORCHARD_FLOAT_UNARY(acosh_op, std::acosh(v))
ORCHARD_FLOAT_UNARY(atanh_op, std::atanh(v))
#undef ORCHARD_FLOAT_UNARY

Status isnan_op(OpContext& ctx) {
  return unary_predicate(ctx, [](auto v) { return std::isnan(v); });
}

class IsInfKernel final : public OpKernel {
 public:
  explicit IsInfKernel(const KernelCreateContext& c)
      : pos_(c.node.attr_int("detect_positive", 1) != 0), neg_(c.node.attr_int("detect_negative", 1) != 0) {}
  Status run(OpContext& ctx) const override {
    const bool pos = pos_, ng = neg_;
    return unary_predicate(ctx, [pos, ng](auto v) { return std::isinf(v) && (v > 0 ? pos : ng); });
  }

 private:
  bool pos_, neg_;
};

// ---- variadic Max / Min / Sum / Mean ---------------------------------------------------------------

enum class Fold { max, min, sum, mean };

template <Fold K>
Status variadic(OpContext& ctx) {
  std::vector<const Tensor*> xs;
  std::vector<const Shape*> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
    if (!xs.empty() && t->dtype() != xs[0]->dtype()) {
      return invalid_argument("inputs have different element types: ", xs[0]->description(), " and ",
                              t->description());
    }
    xs.push_back(t);
    shapes.push_back(&t->shape());
  }
  if (xs.empty()) return invalid_argument("needs at least one input");
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes(shapes));
  const DType dt = xs[0]->dtype();
  constexpr unsigned kSet = (K == Fold::mean) ? unsigned{kFloats} : unsigned{kNumeric};
  return dispatch<kSet>(dt, ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dt, shape));
    T* py = y.data<T>();
    auto op = [](const T& a, const T& b) -> T {
      const C x = load(a), z = load(b);
      if constexpr (K == Fold::sum || K == Fold::mean) {
        if constexpr (std::is_integral_v<C>) return static_cast<T>(static_cast<wrap_t<C>>(x) + static_cast<wrap_t<C>>(z));
        else return store<T>(x + z);
      } else {
        if constexpr (std::is_floating_point_v<C>) {
          if (std::isnan(x)) return a;
          if (std::isnan(z)) return b;
        }
        if constexpr (K == Fold::max) return z > x ? b : a;
        else return z < x ? b : a;
      }
    };
    if (xs.size() == 1) {
      const T* px = xs[0]->data<T>();
      parallel_range(ctx.pool(), y.numel(), [&](int64_t b, int64_t e) { std::copy(px + b, px + e, py + b); });
    } else {
      apply_binary(ctx, xs[0]->data<T>(), xs[0]->shape(), xs[1]->data<T>(), xs[1]->shape(), py, shape, op);
      for (size_t i = 2; i < xs.size(); ++i) apply_binary(ctx, py, shape, xs[i]->data<T>(), xs[i]->shape(), py, shape, op);
    }
    if constexpr (K == Fold::mean) {
      const C n = static_cast<C>(xs.size());
      parallel_range(ctx.pool(), y.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) py[i] = store<T>(load(py[i]) / n);
      });
    }
    return Status::OK();
  });
}

// ---- comparison and logic --------------------------------------------------------------------------

template <unsigned Set, class F>
Status compare(OpContext& ctx, const F& f) {
  ORCHARD_ASSIGN_OR_RETURN(Operands ops, binary_operands(ctx));
  return dispatch<Set>(ops.a->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, std::string>) {
      ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&ops.a->shape(), &ops.b_shape}));
      ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::boolean, shape));
      apply_binary(ctx, ops.a->data<T>(), ops.a->shape(), ops.b->data<T>(), ops.b_shape, y.data<bool>(), shape,
                   [&](const T& x, const T& z) { return static_cast<bool>(f(x, z)); });
      return Status::OK();
    } else {
      return binary_same<T, bool>(ctx, ops, DType::boolean, f);
    }
  });
}

Status equal(OpContext& ctx) {
  return compare<kAll>(ctx, [](const auto& x, const auto& y) { return x == y; });
}
Status greater(OpContext& ctx) {
  return compare<kNumeric>(ctx, [](auto x, auto y) { return x > y; });
}
Status less(OpContext& ctx) {
  return compare<kNumeric>(ctx, [](auto x, auto y) { return x < y; });
}
Status greater_or_equal(OpContext& ctx) {
  return compare<kNumeric>(ctx, [](auto x, auto y) { return x >= y; });
}
Status less_or_equal(OpContext& ctx) {
  return compare<kNumeric>(ctx, [](auto x, auto y) { return x <= y; });
}

template <class F>
Status logical(OpContext& ctx, const F& f) {
  ORCHARD_ASSIGN_OR_RETURN(Operands ops, binary_operands(ctx));
  return dispatch<kBool>(ops.a->dtype(), ctx.node().op_type,
                         [&](bool) { return binary_same<bool, bool>(ctx, ops, DType::boolean, f); });
}

Status and_op(OpContext& ctx) {
  return logical(ctx, [](bool x, bool y) { return x && y; });
}
Status or_op(OpContext& ctx) {
  return logical(ctx, [](bool x, bool y) { return x || y; });
}
Status xor_op(OpContext& ctx) {
  return logical(ctx, [](bool x, bool y) { return x != y; });
}
Status not_op(OpContext& ctx) {
  return unary_same<kBool>(ctx, [](bool v) { return !v; });
}

class BitShiftKernel final : public OpKernel {
 public:
  explicit BitShiftKernel(const KernelCreateContext& c) : left_(c.node.attr_string("direction", "") == "LEFT") {}
  static Status validate(const KernelCreateContext& c) {
    const std::string d = c.node.attr_string("direction", "");
    if (d != "LEFT" && d != "RIGHT") return invalid_argument("direction must be \"LEFT\" or \"RIGHT\", got \"", d, "\"");
    return Status::OK();
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(Operands ops, binary_operands(ctx));
    const bool left = left_;
    return dispatch<kUnsignedInts>(ops.a->dtype(), "BitShift", [&](auto tag) -> Status {
      using T = decltype(tag);
      return binary_same<T, T>(ctx, ops, ops.a->dtype(), [left](T x, T n) -> T {
        if (n >= sizeof(T) * 8) return T(0);  // shifting out every bit (undefined in C++)
        return left ? static_cast<T>(x << n) : static_cast<T>(x >> n);
      });
    });
  }

 private:
  bool left_;
};

// ---- Where, Clip, Shrink ---------------------------------------------------------------------------

Status where(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* c, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(1));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* y, ctx.input_tensor(2));
  if (c->dtype() != DType::boolean) return invalid_argument("condition must be bool, got ", c->description());
  if (x->dtype() != y->dtype()) {
    return invalid_argument("X and Y have different element types: ", x->description(), " and ", y->description());
  }
  ORCHARD_ASSIGN_OR_RETURN(Shape shape, broadcast_shapes({&c->shape(), &x->shape(), &y->shape()}));
  return dispatch<kAll>(x->dtype(), "Where", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor out, ctx.make_output(0, x->dtype(), shape));
    const bool* pc = c->data<bool>();
    const T* px = x->data<T>();
    const T* py = y->data<T>();
    T* dst = out.data<T>();
    for_each_run<3>(ctx.pool(), shape, {&c->shape(), &x->shape(), &y->shape()},
                    [&](int64_t o, const std::array<int64_t, 3>& off, int64_t n, const std::array<int64_t, 3>& st) {
                      for (int64_t k = 0; k < n; ++k) {
                        dst[o + k] = pc[off[0] + k * st[0]] ? px[off[1] + k * st[1]] : py[off[2] + k * st[2]];
                      }
                    });
    return Status::OK();
  });
}

// Clip: bounds are attributes `min`/`max` before opset 11, optional scalar inputs 1 and 2 from opset 11.
// NaN stays NaN; with min > max every element becomes max (like numpy.clip).
Status clip(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  return dispatch<kNumeric>(x->dtype(), "Clip", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if (node.opset < 11) {
      if constexpr (std::is_floating_point_v<C>) {
        if (node.attr("min")) lo = static_cast<C>(node.attr_float("min", 0.0f));
        if (node.attr("max")) hi = static_cast<C>(node.attr_float("max", 0.0f));
      } else {
        return unsupported("Clip before opset 11: element type ", dtype_name(x->dtype()), " is not supported");
      }
    } else {
      for (size_t i = 1; i <= 2; ++i) {
        if (!ctx.has_input(i)) continue;
        ORCHARD_ASSIGN_OR_RETURN(const Tensor* bound, ctx.input_tensor(i));
        if (bound->dtype() != x->dtype() || bound->numel() != 1) {
          return invalid_argument(i == 1 ? "min" : "max", " must be a one-element ", dtype_name(x->dtype()),
                                  " tensor, got ", bound->description());
        }
        (i == 1 ? lo : hi) = load(bound->data<T>()[0]);
      }
    }
    return unary_map<T, T>(ctx, *x, x->dtype(), [lo, hi](T v) {
      C c = load(v);
      if (c < lo) c = lo;
      if (c > hi) c = hi;
      return store<T>(c);
    });
  });
}

// Shrink: x < -lambd gives x + bias, x > lambd gives x - bias, else 0.
class ShrinkKernel final : public OpKernel {
 public:
  explicit ShrinkKernel(const KernelCreateContext& c)
      : lambd_(c.node.attr_float("lambd", 0.5f)), bias_(c.node.attr_float("bias", 0.0f)) {}
  Status run(OpContext& ctx) const override {
    const double lambd = lambd_, bias = bias_;
    return unary_same<kNumeric>(ctx, [lambd, bias](auto v) {
      using C = decltype(v);
      const double d = static_cast<double>(v);
      if (d < -lambd) return static_cast<C>(d + bias);
      if (d > lambd) return static_cast<C>(d - bias);
      return C(0);
    });
  }

 private:
  double lambd_, bias_;
};

// Identity passes its input through (tensor, sequence or optional) without copying.
Status identity(OpContext& ctx) {
  if (!ctx.has_input(0)) return invalid_argument("input 0 is missing");
  ctx.set_output(0, ctx.value(0));
  return Status::OK();
}

// Ops with a `broadcast` attribute before opset 7 take it (with `axis`) in their opset 1 kernel; one kernel
// serves all versions where only types were added.
constexpr KernelDef kKernels[] = {
    {"", "Add", 1, kVerifiedOpset, stateless<add>},
    {"", "Sub", 1, kVerifiedOpset, stateless<sub>},
    {"", "Mul", 1, kVerifiedOpset, stateless<mul>},
    {"", "Div", 1, kVerifiedOpset, stateless<div>},
    {"", "Pow", 1, kVerifiedOpset, stateless<pow_op>},
    {"", "Mod", 10, kVerifiedOpset, make<ModKernel>},
    {"", "Abs", 1, kVerifiedOpset, stateless<abs_op>},
    {"", "Neg", 1, kVerifiedOpset, stateless<neg>},
    {"", "Sign", 9, kVerifiedOpset, stateless<sign>},
    {"", "Reciprocal", 1, kVerifiedOpset, stateless<reciprocal>},
    {"", "Sqrt", 1, kVerifiedOpset, stateless<sqrt_op>},
    {"", "Exp", 1, kVerifiedOpset, stateless<exp_op>},
    {"", "Log", 1, kVerifiedOpset, stateless<log_op>},
    {"", "Ceil", 1, kVerifiedOpset, stateless<ceil_op>},
    {"", "Floor", 1, kVerifiedOpset, stateless<floor_op>},
    {"", "Round", 11, kVerifiedOpset, stateless<round_op>},
    {"", "Erf", 9, kVerifiedOpset, stateless<erf_op>},
    {"", "Sin", 7, kVerifiedOpset, stateless<sin_op>},
    {"", "Cos", 7, kVerifiedOpset, stateless<cos_op>},
    {"", "Tan", 7, kVerifiedOpset, stateless<tan_op>},
    {"", "Asin", 7, kVerifiedOpset, stateless<asin_op>},
    {"", "Acos", 7, kVerifiedOpset, stateless<acos_op>},
    {"", "Atan", 7, kVerifiedOpset, stateless<atan_op>},
    {"", "Sinh", 9, kVerifiedOpset, stateless<sinh_op>},
    {"", "Cosh", 9, kVerifiedOpset, stateless<cosh_op>},
    {"", "Tanh", 1, kVerifiedOpset, stateless<tanh_op>},
    {"", "Asinh", 9, kVerifiedOpset, stateless<asinh_op>},
    {"", "Acosh", 9, kVerifiedOpset, stateless<acosh_op>},
    {"", "Atanh", 9, kVerifiedOpset, stateless<atanh_op>},
    {"", "IsNaN", 9, kVerifiedOpset, stateless<isnan_op>},
    {"", "IsInf", 10, kVerifiedOpset, make<IsInfKernel>},
    {"", "Max", 1, kVerifiedOpset, stateless<variadic<Fold::max>>},
    {"", "Min", 1, kVerifiedOpset, stateless<variadic<Fold::min>>},
    {"", "Sum", 1, kVerifiedOpset, stateless<variadic<Fold::sum>>},
    {"", "Mean", 1, kVerifiedOpset, stateless<variadic<Fold::mean>>},
    {"", "Equal", 1, kVerifiedOpset, stateless<equal>},
    {"", "Equal", 19, 19, stateless<equal>},  // opset 19 adds strings (tests/backends/cpu/elementwise_test.cpp)
    {"", "Greater", 1, kVerifiedOpset, stateless<greater>},
    {"", "Less", 1, kVerifiedOpset, stateless<less>},
    {"", "GreaterOrEqual", 12, kVerifiedOpset, stateless<greater_or_equal>},
    {"", "LessOrEqual", 12, kVerifiedOpset, stateless<less_or_equal>},
    {"", "And", 1, kVerifiedOpset, stateless<and_op>},
    {"", "Or", 1, kVerifiedOpset, stateless<or_op>},
    {"", "Xor", 1, kVerifiedOpset, stateless<xor_op>},
    {"", "Not", 1, kVerifiedOpset, stateless<not_op>},
    {"", "BitShift", 11, kVerifiedOpset, make<BitShiftKernel>},
    {"", "Where", 9, kVerifiedOpset, stateless<where>},
    {"", "Clip", 1, kVerifiedOpset, stateless<clip>},
    {"", "Shrink", 9, kVerifiedOpset, make<ShrinkKernel>},
    {"", "Identity", 1, kVerifiedOpset, stateless<identity>},
};

}  // namespace

std::span<const KernelDef> elementwise_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
