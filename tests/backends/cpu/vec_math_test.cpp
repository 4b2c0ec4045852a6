// The vectorised math of vec_math.hpp against the C library in double, on every ISA this machine runs:
// dense sweeps (relative error; the maximum measured is printed), special values, and the activations
// against the scalar reference of epilogue.hpp.
#include "backends/cpu/opt/vec_math.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/opt/epilogue.hpp"

namespace orchard::cpu {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<const VecKernels*> isas() {
  std::vector<const VecKernels*> out;
  for (const char* name : {"avx512", "avx2", "portable"}) {
    if (const VecKernels* k = vec_kernels_named(name)) out.push_back(k);
  }
  return out;
}

std::vector<float> sweep(float lo, float hi, int64_t n) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = lo + (hi - lo) * static_cast<float>(i) / static_cast<float>(n - 1);
  return x;
}

// Returns the largest |got - want| / max(|want|, floor) over x, where want = f(double(x)).
template <class F>
double max_rel_error(const VecKernels& k, UnaryOp op, const std::vector<float>& x, F f, double floor, float* worst_x) {
  std::vector<float> y(x.size());
  k.unary(op, 0, 0, x.data(), y.data(), static_cast<int64_t>(x.size()));
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = f(static_cast<double>(x[i]));
    const double err = std::fabs(static_cast<double>(y[i]) - want) / std::max(std::fabs(want), floor);
    if (!(err <= worst)) {
      worst = err;
      *worst_x = x[i];
    }
  }
  return worst;
}

struct Sweep {
  const char* name;
  UnaryOp op;
  double (*f)(double);
  float lo, hi;
  double floor;  // relative error measured against max(|want|, floor)
  double bound;
};

double sigmoid_d(double v) { return 1.0 / (1.0 + std::exp(-v)); }
double exp_d(double v) { return std::exp(v); }
double log_d(double v) { return std::log(v); }
double tanh_d(double v) { return std::tanh(v); }
double erf_d(double v) { return std::erf(v); }
double gelu_d(double v) { return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))); }

TEST(VecMath, DenseSweepsWithinAFewUlp) {
  const Sweep sweeps[] = {
      // exp over its whole normal-result range; erf and tanh where they are not yet +-1.
      {"exp", UnaryOp::exp, exp_d, -87.3f, 88.7f, 0, 2e-7},
      {"erf", UnaryOp::erf, erf_d, -4.5f, 4.5f, 0, 2e-7},
      {"tanh", UnaryOp::tanh, tanh_d, -10.0f, 10.0f, 0, 3e-7},
      {"sigmoid", UnaryOp::sigmoid, sigmoid_d, -80.0f, 40.0f, 0, 3e-7},
      {"log", UnaryOp::log, log_d, 1e-3f, 1e3f, 0, 2e-7},
      // GELU's 1 + erf cancels for x < -1 (in the scalar formula too): absolute error below |value| 1.
      {"gelu", UnaryOp::gelu_erf, gelu_d, -10.0f, 10.0f, 1, 4e-7},
  };
  for (const VecKernels* k : isas()) {
    for (const Sweep& s : sweeps) {
      float at = 0;
      const double err = max_rel_error(*k, s.op, sweep(s.lo, s.hi, 2000003), s.f, s.floor, &at);
      std::printf("[ vec_math ] %-8s %-6s max relative error %.3g at x = %.9g\n", k->isa, s.name, err, at);
      EXPECT_LE(err, s.bound) << k->isa << " " << s.name << " at x = " << at;
    }
    // Small magnitudes (relative accuracy near 0) and log over every binade, subnormals included.
    std::vector<float> tiny, pos;
    for (int e = -40; e <= -1; ++e) tiny.push_back(std::ldexp(1.2345f, e)), tiny.push_back(-std::ldexp(1.876f, e));
    for (uint32_t bits = 1; bits < 0x7f800000u; bits += 0x1357u) {
      float f;
      std::memcpy(&f, &bits, sizeof f);
      pos.push_back(f);
    }
    float at = 0;
    EXPECT_LE(max_rel_error(*k, UnaryOp::erf, tiny, erf_d, 0, &at), 2e-7) << k->isa << " erf at " << at;
    EXPECT_LE(max_rel_error(*k, UnaryOp::tanh, tiny, tanh_d, 0, &at), 2e-7) << k->isa << " tanh at " << at;
    EXPECT_LE(max_rel_error(*k, UnaryOp::exp, tiny, exp_d, 0, &at), 2e-7) << k->isa << " exp at " << at;
    const double log_err = max_rel_error(*k, UnaryOp::log, pos, log_d, 0, &at);
    std::printf("[ vec_math ] %-8s log over all binades: max relative error %.3g at x = %.9g\n", k->isa, log_err, at);
    EXPECT_LE(log_err, 2e-7) << k->isa << " log at " << at;
  }
}

TEST(VecMath, SpecialValues) {
  struct Case {
    UnaryOp op;
    float x, want;
  };
  const Case cases[] = {
      {UnaryOp::exp, -kInf, 0},       {UnaryOp::exp, kInf, kInf},       {UnaryOp::exp, 89.0f, kInf},
      {UnaryOp::exp, 1000.0f, kInf},  {UnaryOp::exp, -1000.0f, 0},      {UnaryOp::exp, 0, 1},
      {UnaryOp::erf, kInf, 1},        {UnaryOp::erf, -kInf, -1},        {UnaryOp::erf, 30.0f, 1},
      {UnaryOp::erf, 0, 0},           {UnaryOp::tanh, kInf, 1},         {UnaryOp::tanh, -kInf, -1},
      {UnaryOp::tanh, -50.0f, -1},    {UnaryOp::sigmoid, kInf, 1},      {UnaryOp::sigmoid, -kInf, 0},
      {UnaryOp::sigmoid, -200.0f, 0}, {UnaryOp::log, 0, -kInf},         {UnaryOp::log, kInf, kInf},
      {UnaryOp::log, 1, 0},           {UnaryOp::pow_half, -kInf, kInf}, {UnaryOp::pow_half, -0.0f, 0},
  };
  for (const VecKernels* k : isas()) {
    for (const Case& c : cases) {
      float y = kNaN;
      k->unary(c.op, 0, 0, &c.x, &y, 1);
      EXPECT_EQ(y, c.want) << k->isa << " op " << static_cast<int>(c.op) << " at " << c.x;
      EXPECT_FALSE(std::signbit(y) != std::signbit(c.want))
          << k->isa << " op " << static_cast<int>(c.op) << " at " << c.x;
    }
    // exp of subnormal results: within one subnormal step of the true value.
    for (float x : {-87.5f, -95.0f, -100.0f, -103.0f}) {
      float y = 0;
      k->unary(UnaryOp::exp, 0, 0, &x, &y, 1);
      EXPECT_NEAR(y, std::exp(static_cast<double>(x)), 1.5e-45 + 1e-6 * std::exp(static_cast<double>(x))) << x;
    }
    for (UnaryOp op : {UnaryOp::exp, UnaryOp::log, UnaryOp::erf, UnaryOp::tanh, UnaryOp::sigmoid, UnaryOp::gelu_erf,
                       UnaryOp::gelu_tanh, UnaryOp::sqrt, UnaryOp::clip, UnaryOp::hardswish}) {
      float y = 0;
      k->unary(op, -1, 1, &kNaN, &y, 1);
      EXPECT_TRUE(std::isnan(y)) << k->isa << " op " << static_cast<int>(op);
    }
    float y = 0, neg = -1;
    k->unary(UnaryOp::log, 0, 0, &neg, &y, 1);
    EXPECT_TRUE(std::isnan(y)) << k->isa;
  }
}

TEST(VecMath, ActivationsMatchScalarReference) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-12, 12);
  std::vector<float> x(1037);  // not a multiple of any vector width
  for (float& v : x) v = dist(rng);
  x[0] = kInf;
  x[1] = -kInf;
  x[2] = kNaN;
  x[3] = 0;
  const ActivationSpec specs[] = {{Activation::relu}, {Activation::clip, -1.5f, 6}, {Activation::sigmoid},
                                  {Activation::silu}, {Activation::hardswish},      {Activation::leaky_relu, 0.1f},
                                  {Activation::gelu}, {Activation::tanh},           {Activation::none}};
  for (const ActivationSpec& s : specs) {
    // Every length from 0 to 40 (all tails of every width), then the long array.
    for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{15}, size_t{17}, size_t{33}, x.size()}) {
      std::vector<float> want(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(n)), got = want;
      apply_activation_ref(s, want.data(), static_cast<int64_t>(n));
      apply_activation_vec(s, got.data(), static_cast<int64_t>(n));
      for (size_t i = 0; i < n; ++i) {
        const std::string what = std::string(activation_name(s.kind)) + " at x = " + std::to_string(x[i]);
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(got[i])) << what;
        } else if (std::isinf(want[i])) {
          EXPECT_EQ(got[i], want[i]) << what;
        } else {
          EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(1.0f, std::fabs(want[i]))) << what;
        }
      }
    }
  }
}

TEST(VecMath, ArrayFunctionsUseTheChosenIsa) {
  const std::vector<float> x = sweep(-3, 3, 101);
  std::vector<float> a(x.size()), b(x.size());
  vec_sigmoid_f32(x.data(), a.data(), static_cast<int64_t>(x.size()));
  vec_kernels().unary(UnaryOp::sigmoid, 0, 0, x.data(), b.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(a, b);
  vec_gelu_f32(x.data(), a.data(), static_cast<int64_t>(x.size()), /*tanh_approximation=*/true);
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    const double want = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    EXPECT_NEAR(a[i], want, 1e-6) << v;
  }
  vec_exp_f32(x.data(), a.data(), 5);
  vec_log_f32(a.data(), a.data(), 5);  // in place
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(a[i], x[i], 1e-6);
  vec_tanh_f32(x.data(), a.data(), 3);
  vec_erf_f32(x.data(), b.data(), 3);
  EXPECT_NEAR(a[0], std::tanh(-3.0), 1e-7);
  EXPECT_NEAR(b[0], std::erf(-3.0), 1e-7);
}

}  // namespace
}  // namespace orchard::cpu
