// Vectorised float32 math over arrays: exp, log, sigmoid, tanh, erf, GELU and the other activations,
// binary arithmetic, and the row loops of softmax, layer norm and reductions. One implementation
// (vec_math_impl.hpp, GCC vector extensions) is compiled per ISA: vec_math_avx512.cpp, vec_math_avx2.cpp
// (x86-64 only) and vec_math_portable.cpp (SSE2 on x86-64, NEON on aarch64); vec_kernels() picks the best
// one this CPU runs, once (cpu_features(), so ORCHARD_CPU_FEATURES limits it).
// Layer: CPU backend. Callers must not assume bit-identical results across ISAs (FMA contraction differs).
#pragma once

#include <cstdint>

// Only <cstdint> here: the ISA files include this header, and inline code they pulled in from other headers
// would be compiled with their instruction sets and could be the copy the linker keeps for everyone.
namespace orchard::cpu {

struct ActivationSpec;  // epilogue.hpp

// Elementwise functions of one float.
enum class UnaryOp : uint8_t {
  relu,
  neg,
  abs,
  sqrt,
  pow_half,  // pow(x, 0.5): sqrt, except -0 gives +0 and -inf gives +inf
  reciprocal,
  square,
  cube,
  exp,
  log,
  sigmoid,
  tanh,
  erf,
  silu,         // x * sigmoid(x)
  gelu_erf,     // 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh,    // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  hardswish,    // x * clamp(x / 6 + 0.5, 0, 1)
  hardsigmoid,  // clamp(p0 * x + p1, 0, 1)
  leaky_relu,   // x >= 0 ? x : p0 * x
  clip,         // min(max(x, p0), p1); NaN stays NaN
};

enum class BinaryOp : uint8_t { add, sub, mul, div };

// The loops of one ISA. Pointers may not overlap unless said; n may be 0.
struct VecKernels {
  const char* isa;  // "avx512", "avx2" or "portable"
  // y[i] = op(x[i]) with parameters p0, p1 (UnaryOp says which use them); y may equal x.
  void (*unary)(UnaryOp op, float p0, float p1, const float* x, float* y, int64_t n);
  // y[i] = a[i] op b[i]; y may equal a or b.
  void (*binary_vv)(BinaryOp op, const float* a, const float* b, float* y, int64_t n);
  // y[i] = a[i] op s; y may equal a.
  void (*binary_vs)(BinaryOp op, const float* a, float s, float* y, int64_t n);
  // y[i] = s op b[i]; y may equal b.
  void (*binary_sv)(BinaryOp op, float s, const float* b, float* y, int64_t n);
  // Softmax (or log-softmax when `log`) of each of `rows` contiguous rows of n values. An all -inf row
  // gives 0s (softmax) like the reference kernel. Softmax values below 2^-125 (subnormal) are given as 0.
  void (*softmax_rows)(const float* x, float* y, int64_t rows, int64_t n, bool log);
  // Layer normalisation of `rows` rows of n: (x - mean) / sqrt(var + eps) * scale + bias (bias may be
  // null); mean and inv_std (may be null) receive each row's statistics.
  void (*layer_norm_rows)(const float* x, float* y, int64_t rows, int64_t n, const float* scale, const float* bias,
                          float eps, float* mean, float* inv_std);
  // y[i] = x[i] * a + b.
  void (*scale_shift)(const float* x, float* y, int64_t n, float a, float b);
  // out[r] = mul * sum of row r (rows of n contiguous values).
  void (*row_sums)(const float* x, float* out, int64_t rows, int64_t n, float mul);
};

// Returns the loops of the best ISA this process may use (chosen once, logged at debug level).
const VecKernels& vec_kernels();
// Returns the loops of one ISA by name ("avx512", "avx2", "portable"), or null when it is not compiled in
// or this CPU lacks it (tests compare them).
const VecKernels* vec_kernels_named(const char* isa);

// Array forms of the math functions, on the best ISA (y may equal x).
void vec_exp_f32(const float* x, float* y, int64_t n);
void vec_log_f32(const float* x, float* y, int64_t n);
void vec_sigmoid_f32(const float* x, float* y, int64_t n);
void vec_tanh_f32(const float* x, float* y, int64_t n);
void vec_erf_f32(const float* x, float* y, int64_t n);
void vec_gelu_f32(const float* x, float* y, int64_t n, bool tanh_approximation);

// Applies the activation to n floats in place: the vectorised counterpart of apply_activation_ref
// (epilogue.hpp), equal to it within a few float32 ulps. Single-threaded (callers split the work).
void apply_activation_vec(const ActivationSpec& act, float* x, int64_t n);

}  // namespace orchard::cpu
