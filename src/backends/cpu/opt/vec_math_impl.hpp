// The loops of vec_math.hpp written once with GCC vector extensions, for one ISA file to include after
// defining ORCHARD_VEC_BYTES (the vector width in bytes: 64 AVX-512, 32 AVX2, 16 SSE2/NEON). Everything
// has internal linkage and uses only compiler builtins, so no copy built for one ISA can leak to another.
// Accuracy (float32, measured by tests/backends/cpu/vec_math_test.cpp over dense sweeps): exp, erf,
// sigmoid, tanh, log within a few ulp. Polynomials were fitted for this file (weighted least squares
// iterated toward minimax on the stated intervals).
#pragma once

#ifndef ORCHARD_VEC_BYTES
#error "define ORCHARD_VEC_BYTES before including vec_math_impl.hpp"
#endif

#include <cstdint>

#include "backends/cpu/opt/vec_math.hpp"

namespace orchard::cpu {
namespace {

typedef float vf __attribute__((vector_size(ORCHARD_VEC_BYTES)));
typedef int32_t vi __attribute__((vector_size(ORCHARD_VEC_BYTES)));
constexpr int64_t W = ORCHARD_VEC_BYTES / 4;

inline vf splat(float s) { return vf{} + s; }
inline vi splat_i(int32_t s) { return vi{} + s; }
inline vf load(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
// Loads n < W values, the other lanes `fill`.
inline vf load_part(const float* p, int64_t n, float fill) {
  vf v = splat(fill);
  float buf[W];
  store(buf, v);
  __builtin_memcpy(buf, p, static_cast<__SIZE_TYPE__>(n) * sizeof(float));
  return load(buf);
}
inline void store_part(float* p, vf v, int64_t n) {
  float buf[W];
  store(buf, v);
  __builtin_memcpy(p, buf, static_cast<__SIZE_TYPE__>(n) * sizeof(float));
}
inline vf as_f(vi v) { return (vf)v; }  // same-size vector casts reinterpret the bits
inline vi as_i(vf v) { return (vi)v; }
// Selects a where m (all ones) else b.
inline vf select(vi m, vf a, vf b) { return m ? a : b; }
inline vf vabs(vf x) { return as_f(as_i(x) & 0x7fffffff); }
inline vf copysign_of(vf mag, vf sign) { return as_f((as_i(mag) & 0x7fffffff) | (as_i(sign) & int32_t(0x80000000u))); }
// Clamps x to [lo, hi]; NaN stays NaN.
inline vf clamp(vf x, float lo, float hi) {
  x = select(x > lo, x, select(x != x, x, splat(lo)));
  return select(x < hi, x, select(x != x, x, splat(hi)));
}
inline float hmax(vf v) {
  float m = v[0];
  for (int64_t i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float hsum(vf v) {
  float s = 0;
  for (int64_t i = 0; i < W; ++i) s += v[i];
  return s;
}

// e^r of x = n ln2 + r (Cody-Waite, |r| <= ln2 / 2) by a degree-6 polynomial; n is returned in `n` (a float
// holding an integer). x is clamped by the caller.
inline vf exp_reduced(vf x, vf& n) {
  const vf magic = splat(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
  n = (x * 1.44269504f + magic) - magic;
  vf r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vf p = splat(0.00138368423f);
  p = p * r + 0.00837481581f;
  p = p * r + 0.0416682251f;
  p = p * r + 0.166664198f;
  p = p * r + 0.499999911f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

// e^x: e^r times 2^n applied in two halves so results in the subnormal range and up to overflow come out
// right. NaN stays NaN.
inline vf exp_v(vf x) {
  x = clamp(x, -104.0f, 89.0f);
  vf n;
  const vf p = exp_reduced(x, n);
  vi ni = __builtin_convertvector(select(n == n, n, splat(0.0f)), vi);
  const vi n1 = ni >> 1;
  const vi n2 = ni - n1;
  return p * as_f((n1 + 127) << 23) * as_f((n2 + 127) << 23);
}

// ln x: x = m 2^e with m in [sqrt(1/2), sqrt 2), ln(1 + f) = f - f^2/2 + f^3 P(f). Subnormals are scaled
// first; x < 0 and NaN give NaN, 0 gives -inf, +inf gives +inf.
inline vf log_v(vf x) {
  const vi sub = (x < 1.17549435e-38f) & (x > 0.0f);
  const vf xs = select(sub, x * 8388608.0f, x);  // * 2^23
  const vi bits = as_i(xs);
  vi e = ((bits >> 23) & 0xff) - 127 - (sub & 23);
  vf m = as_f((bits & 0x7fffff) | 0x3f800000);
  const vi big = m > 1.41421356f;
  m = select(big, m * 0.5f, m);
  e = e + (big & 1);
  const vf f = m - 1.0f;
  vf p = splat(-0.0763443187f);
  p = p * f + 0.127615526f;
  p = p * f - 0.131601959f;
  p = p * f + 0.142017618f;
  p = p * f - 0.166233569f;
  p = p * f + 0.200012267f;
  p = p * f - 0.250008225f;
  p = p * f + 0.333333313f;
  const vf ef = __builtin_convertvector(e, vf);
  const vf f2 = f * f;
  vf y = f2 * f * p - 0.5f * f2 + ef * -2.12194440e-4f;
  y = (f + y) + ef * 0.693359375f;
  y = select(x == __builtin_inff(), x, y);
  y = select(x == 0.0f, splat(-__builtin_inff()), y);
  return select((x < 0.0f) | (x != x), splat(__builtin_nanf("")), y);
}

// 1 / d for finite d >= 1. With AVX-512 or AVX2: the hardware estimate (14 / 12 bits) refined by Newton steps
// (one / two); else a division.
inline vf recip_ge1(vf d) {
#if ORCHARD_VEC_BYTES == 64 && defined(__AVX512F__)
  vf y = __builtin_ia32_rcp14ps512_mask(d, vf{}, static_cast<unsigned short>(0xffff));
  return y + y * (1.0f - d * y);
#elif ORCHARD_VEC_BYTES == 32 && defined(__AVX__)
  vf y = __builtin_ia32_rcpps256(d);
  y = y + y * (1.0f - d * y);
  return y + y * (1.0f - d * y);
#else
  return 1.0f / d;
#endif
}

// 1 / (1 + e^-x), with e^-x computed as exp_v does but for -x clamped to [-88, 88] and 2^n applied in one step
// (e^-x below 2^-126 flushes to 0, where 1 + e^-x is 1 anyway): 1 + e^-x stays finite, so the reciprocal needs
// no special case and the clamps no NaN care. x < -88 (sigmoid below 6.1e-39) gives 0; NaN stays NaN.
inline vf sigmoid_v(vf x) {
  vf t = -x;
  t = t < 88.0f ? t : splat(88.0f);
  t = t > -88.0f ? t : splat(-88.0f);
  vf n;
  const vf p = exp_reduced(t, n);
  const vf e = p * as_f((__builtin_convertvector(n, vi) + 127) << 23);
  const vf y = recip_ge1(1.0f + e);
  return select(x != x, x, select(x < -88.0f, vf{}, y));
}

// tanh: |x| < 0.625 by x + x^3 P(x^2); else 1 - 2 / (e^{2|x|} + 1) with x's sign.
inline vf tanh_v(vf x) {
  const vf a = vabs(x);
  const vf x2 = x * x;
  vf p = splat(0.00214296323f);
  p = p * x2 - 0.00817739964f;
  p = p * x2 + 0.0217007045f;
  p = p * x2 - 0.0539467633f;
  p = p * x2 + 0.133332059f;
  p = p * x2 - 0.333333313f;
  const vf small = x + x * x2 * p;
  const vf large = copysign_of(1.0f - 2.0f / (exp_v(a + a) + 1.0f), x);
  return select(a < 0.625f, small, large);
}

// erf: |x| < 1 by x P(x^2); else 1 - e^{-x^2} R(|x|) (R fitted to erfc(x) e^{x^2} on [1, 3.925], past
// which erf rounds to 1), with x's sign.
inline vf erf_v(vf x) {
  const vf a = vabs(x);
  const vf x2 = x * x;
  vf p = splat(7.85402517e-05f);
  p = p * x2 - 0.000801024726f;
  p = p * x2 + 0.00518833427f;
  p = p * x2 - 0.0268538166f;
  p = p * x2 + 0.112835854f;
  p = p * x2 - 0.37612626f;
  p = p * x2 + 1.12837911f;
  const vf small = x * p;
  const vf c = clamp(a, 1.0f, 3.925f);
  const vf t = c - 2.4625f;
  vf r = splat(0.000106843116f);
  r = r * t + 0.000193009429f;
  r = r * t + 0.000488447491f;
  r = r * t - 0.000777036184f;
  r = r * t + 0.00243752473f;
  r = r * t - 0.00848748069f;
  r = r * t + 0.0258492958f;
  r = r * t - 0.0762455836f;
  r = r * t + 0.2136309f;
  const vf one_minus = select(c >= 3.925f, splat(1.0f), 1.0f - exp_v(-(c * c)) * r);  // erf(3.925) rounds to 1
  const vf large = copysign_of(one_minus, x);
  return select(a < 1.0f, small, large);
}

inline vf gelu_erf_v(vf x) { return 0.5f * x * (1.0f + erf_v(x * 0.707106781f)); }
inline vf gelu_tanh_v(vf x) { return 0.5f * x * (1.0f + tanh_v(0.797884561f * (x + 0.044715f * x * x * x))); }

inline vf sqrt_v(vf x) {
  vf y = x;
  for (int64_t i = 0; i < W; ++i) y[i] = __builtin_sqrtf(x[i]);
  return y;
}

template <UnaryOp Op>
inline vf unary_v(vf x, float p0, float p1) {
  if constexpr (Op == UnaryOp::relu)
    return select(x > 0.0f, x, splat(0.0f));
  else if constexpr (Op == UnaryOp::neg)
    return -x;
  else if constexpr (Op == UnaryOp::abs)
    return vabs(x);
  else if constexpr (Op == UnaryOp::sqrt)
    return sqrt_v(x);
  else if constexpr (Op == UnaryOp::pow_half)
    return select(x == -__builtin_inff(), -x, sqrt_v(x)) + 0.0f;
  else if constexpr (Op == UnaryOp::reciprocal)
    return 1.0f / x;
  else if constexpr (Op == UnaryOp::square)
    return x * x;
  else if constexpr (Op == UnaryOp::cube)
    return x * x * x;
  else if constexpr (Op == UnaryOp::exp)
    return exp_v(x);
  else if constexpr (Op == UnaryOp::log)
    return log_v(x);
  else if constexpr (Op == UnaryOp::sigmoid)
    return sigmoid_v(x);
  else if constexpr (Op == UnaryOp::tanh)
    return tanh_v(x);
  else if constexpr (Op == UnaryOp::erf)
    return erf_v(x);
  else if constexpr (Op == UnaryOp::silu)
    return x * sigmoid_v(x);
  else if constexpr (Op == UnaryOp::gelu_erf)
    return gelu_erf_v(x);
  else if constexpr (Op == UnaryOp::gelu_tanh)
    return gelu_tanh_v(x);
  else if constexpr (Op == UnaryOp::hardswish)
    return x * clamp(x * (1.0f / 6.0f) + 0.5f, 0.0f, 1.0f);
  else if constexpr (Op == UnaryOp::hardsigmoid)
    return clamp(x * p0 + p1, 0.0f, 1.0f);
  else if constexpr (Op == UnaryOp::leaky_relu)
    return select(x >= 0.0f, x, x * p0);
  else if constexpr (Op == UnaryOp::clip)
    return clamp(x, p0, p1);
  (void)p0;
  (void)p1;
}

template <UnaryOp Op>
void unary_loop(float p0, float p1, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + W <= n; i += W) store(y + i, unary_v<Op>(load(x + i), p0, p1));
  if (i < n) store_part(y + i, unary_v<Op>(load_part(x + i, n - i, 0.0f), p0, p1), n - i);
}

void unary(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n) {
  switch (op) {
#define ORCHARD_CASE(name) \
  case UnaryOp::name:      \
    return unary_loop<UnaryOp::name>(p0, p1, x, y, n);
    ORCHARD_CASE(relu)
    ORCHARD_CASE(neg)
    ORCHARD_CASE(abs)
    ORCHARD_CASE(sqrt)
    ORCHARD_CASE(pow_half)
    ORCHARD_CASE(reciprocal)
    ORCHARD_CASE(square)
    ORCHARD_CASE(cube)
    ORCHARD_CASE(exp)
    ORCHARD_CASE(log)
    ORCHARD_CASE(sigmoid)
    ORCHARD_CASE(tanh)
    ORCHARD_CASE(erf)
    ORCHARD_CASE(silu)
    ORCHARD_CASE(gelu_erf)
    ORCHARD_CASE(gelu_tanh)
    ORCHARD_CASE(hardswish)
    ORCHARD_CASE(hardsigmoid)
    ORCHARD_CASE(leaky_relu)
    ORCHARD_CASE(clip)
#undef ORCHARD_CASE
  }
}

template <BinaryOp Op>
inline vf binary_v(vf a, vf b) {
  if constexpr (Op == BinaryOp::add)
    return a + b;
  else if constexpr (Op == BinaryOp::sub)
    return a - b;
  else if constexpr (Op == BinaryOp::mul)
    return a * b;
  else
    return a / b;
}

// Mode 0: both arrays; 1: b is the scalar s; 2: a is the scalar s.
template <BinaryOp Op, int Mode>
void binary_loop(const float* a, const float* b, float s, float* y, int64_t n) {
  const vf sv = splat(s);
  auto at = [&](int64_t i) { return binary_v<Op>(Mode == 2 ? sv : load(a + i), Mode == 1 ? sv : load(b + i)); };
  int64_t i = 0;
  for (; i + W <= n; i += W) store(y + i, at(i));
  if (i < n) {
    const vf va = Mode == 2 ? sv : load_part(a + i, n - i, 1.0f);
    const vf vb = Mode == 1 ? sv : load_part(b + i, n - i, 1.0f);
    store_part(y + i, binary_v<Op>(va, vb), n - i);
  }
}

template <int Mode>
void binary_any(BinaryOp op, const float* a, const float* b, float s, float* y, int64_t n) {
  switch (op) {
    case BinaryOp::add:
      return binary_loop<BinaryOp::add, Mode>(a, b, s, y, n);
    case BinaryOp::sub:
      return binary_loop<BinaryOp::sub, Mode>(a, b, s, y, n);
    case BinaryOp::mul:
      return binary_loop<BinaryOp::mul, Mode>(a, b, s, y, n);
    case BinaryOp::div:
      return binary_loop<BinaryOp::div, Mode>(a, b, s, y, n);
  }
}

void binary_vv(BinaryOp op, const float* a, const float* b, float* y, int64_t n) { binary_any<0>(op, a, b, 0, y, n); }
void binary_vs(BinaryOp op, const float* a, float s, float* y, int64_t n) { binary_any<1>(op, a, nullptr, s, y, n); }
void binary_sv(BinaryOp op, float s, const float* b, float* y, int64_t n) { binary_any<2>(op, nullptr, b, s, y, n); }

// e^d for softmax's d = x - max (<= 0 or NaN), results below e^-87 (1.6e-38) given as 0: a subnormal result
// makes the vector multiply take a microcode assist, ~10x slower per element when scores spread widely (masked
// or long attention rows). Between e^-87 and 1, 2^n is one normal factor. -inf gives 0, NaN stays NaN.
inline vf exp_softmax(vf d) {
  const vi tiny = d < -87.0f;
  vf n;
  const vf p = exp_reduced(select(tiny, vf{}, d), n);
  return select(tiny, vf{}, p * as_f((__builtin_convertvector(n, vi) + 127) << 23));
}

// y *= 1 / sum (sum >= 1), values whose quotient would be subnormal (below 2^-125) given as 0, for the reason
// exp_softmax gives. NaN stays NaN.
inline void scale_softmax(float* y, int64_t n, float sum) {
  const vf lim = splat(2.3509887e-38f * sum), inv = splat(1.0f / sum);
  auto at = [&](vf v) { return select(v < lim, vf{}, v) * inv; };
  int64_t i = 0;
  for (; i + W <= n; i += W) store(y + i, at(load(y + i)));
  if (i < n) store_part(y + i, at(load_part(y + i, n - i, 0.0f)), n - i);
}

void softmax_row(const float* x, float* y, int64_t n, bool log) {
  const float ninf = -__builtin_inff();
  vf mv = splat(ninf);
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const vf v = load(x + i);
    mv = select(v > mv, v, mv);
  }
  if (i < n) {
    const vf v = load_part(x + i, n - i, ninf);
    mv = select(v > mv, v, mv);
  }
  float m = hmax(mv);
  if (m == ninf) m = 0;  // all -inf: exp(-inf - 0) = 0 rather than NaN
  const vf msplat = splat(m);
  vf sv = splat(0.0f);
  for (i = 0; i + W <= n; i += W) {
    const vf e = exp_softmax(load(x + i) - msplat);
    sv += e;
    if (!log) store(y + i, e);
  }
  if (i < n) {
    const vf e = exp_softmax(load_part(x + i, n - i, ninf) - msplat);
    sv += e;
    if (!log) store_part(y + i, e, n - i);
  }
  const float sum = hsum(sv);
  if (log) {
    binary_vs(BinaryOp::sub, x, m, y, n);  // (x - m) - log(sum), as the reference rounds it
    binary_vs(BinaryOp::sub, y, __builtin_logf(sum), y, n);
  } else {
    scale_softmax(y, n, sum);
  }
}

void softmax_rows(const float* x, float* y, int64_t rows, int64_t n, bool log) {
  for (int64_t r = 0; r < rows; ++r) softmax_row(x + r * n, y + r * n, n, log);
}

float row_sum(const float* x, int64_t n) {
  vf s0 = splat(0.0f), s1 = splat(0.0f);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    s0 += load(x + i);
    s1 += load(x + i + W);
  }
  for (; i + W <= n; i += W) s0 += load(x + i);
  if (i < n) s1 += load_part(x + i, n - i, 0.0f);
  return hsum(s0 + s1);
}

void layer_norm_rows(const float* x, float* y, int64_t rows, int64_t n, const float* scale, const float* bias,
                     float eps, float* mean_out, float* inv_out) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = x + r * n;
    float* dst = y + r * n;
    const float mean = n ? row_sum(src, n) / static_cast<float>(n) : 0.0f;
    const vf mv = splat(mean);
    vf q = splat(0.0f);
    int64_t i = 0;
    for (; i + W <= n; i += W) {
      const vf d = load(src + i) - mv;
      q += d * d;
    }
    if (i < n) {
      const vf d = load_part(src + i, n - i, mean) - mv;
      q += d * d;
    }
    const float var = n ? hsum(q) / static_cast<float>(n) : 0.0f;
    const float inv = 1.0f / __builtin_sqrtf(var + eps);
    const vf iv = splat(inv);
    auto at = [&](vf v, vf sc, vf b) { return (v - mv) * iv * sc + b; };
    for (i = 0; i + W <= n; i += W) {
      store(dst + i, at(load(src + i), load(scale + i), bias ? load(bias + i) : splat(0.0f)));
    }
    if (i < n) {
      const int64_t k = n - i;
      store_part(
          dst + i,
          at(load_part(src + i, k, 0), load_part(scale + i, k, 0), bias ? load_part(bias + i, k, 0) : splat(0.0f)), k);
    }
    if (mean_out) mean_out[r] = mean;
    if (inv_out) inv_out[r] = inv;
  }
}

void scale_shift(const float* x, float* y, int64_t n, float a, float b) {
  const vf av = splat(a), bv = splat(b);
  int64_t i = 0;
  for (; i + W <= n; i += W) store(y + i, load(x + i) * av + bv);
  if (i < n) store_part(y + i, load_part(x + i, n - i, 0) * av + bv, n - i);
}

void row_sums(const float* x, float* out, int64_t rows, int64_t n, float mul) {
  for (int64_t r = 0; r < rows; ++r) out[r] = row_sum(x + r * n, n) * mul;
}

}  // namespace
}  // namespace orchard::cpu
