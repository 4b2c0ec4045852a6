// Random kernels: RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli, Multinomial,
// and Dropout.
//
// Generator: MT19937 (fully specified by the C++ standard, so streams are identical on every platform)
// with 53-bit doubles made of two draws, (a >> 5) * 2^26 + (b >> 6), scaled by 2^-53, and normals by
// Marsaglia's polar method. With a `seed` attribute every run restarts the stream from that seed, so a
// seeded node is reproducible (and Dropout's seeded mask equals numpy's RandomState(seed).uniform, which
// the ONNX suite's training-mode Dropout tests use). Without one, each run draws a fresh seed.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

class Rng {
 public:
  explicit Rng(uint32_t seed) : gen_(seed) {}

  // Returns a double uniform in [0, 1).
  double uniform() {
    const uint32_t a = static_cast<uint32_t>(gen_()) >> 5;
    const uint32_t b = static_cast<uint32_t>(gen_()) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
  }

  // Returns a standard normal deviate (polar method; the second deviate of each pair is kept).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u, v, s;
    do {
      u = 2.0 * uniform() - 1.0;
      v = 2.0 * uniform() - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * std::log(s) / s);
    spare_ = f * u;
    has_spare_ = true;
    return f * v;
  }

 private:
  std::mt19937 gen_;
  double spare_ = 0;
  bool has_spare_ = false;
};

// A fresh seed per unseeded run: a process-wide counter started from std::random_device, mixed by
// splitmix64 so consecutive runs get unrelated streams.
uint32_t fresh_seed() {
  static std::atomic<uint64_t> counter{[] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) | rd();
  }()};
  uint64_t z = counter.fetch_add(0x9e3779b97f4a7c15ull) + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

// The node's seed (a float attribute for the Random* ops, an int for Dropout), if it has one.
struct Seed {
  bool given = false;
  uint32_t value = 0;

  static Seed of(const graph::Node& node) {
    Seed s;
    const graph::Attribute* a = node.attr("seed");
    if (a == nullptr) return s;
    s.given = true;
    if (a->type == graph::Attribute::Type::i) {
      s.value = static_cast<uint32_t>(a->i);
    } else {
      const double f = a->f;
      s.value = std::isfinite(f) && std::fabs(f) < 9.0e18 ? static_cast<uint32_t>(static_cast<int64_t>(f)) : 0u;
    }
    return s;
  }
  Rng rng() const { return Rng(given ? value : fresh_seed()); }
};

// Returns the node's `dtype` attribute (an ONNX data type number; any stored type but string).
Result<DType> dtype_attr(const graph::Node& node) {
  const int64_t v = node.attr_int("dtype", 0);
  const Result<DType> dt = dtype_from_onnx_type(v);
  if (!dt.ok() || *dt == DType::string) return unsupported("dtype ", v, " is not a supported element type");
  return dt;
}

// Fills `y` (a float tensor) with values from `draw`.
template <class Draw>
Status fill_floats(Tensor& y, Draw&& draw) {
  return dispatch<kFloats>(y.dtype(), "output", [&](auto tag) -> Status {
    using T = decltype(tag);
    T* out = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) out[i] = store<T>(draw());
    return Status::OK();
  });
}

// RandomUniform / RandomNormal (shape from an attribute) and their *Like forms (shape from the input).
template <bool Normal, bool Like>
class RandomFillKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    const graph::Node& n = ctx.node;
    if (n.attr("dtype")) {
      ORCHARD_ASSIGN_OR_RETURN(DType dt, dtype_attr(n));
      if (!dtype_is_float(dt)) return invalid_argument("dtype ", dtype_name(dt), " is not a floating-point type");
    }
    if constexpr (!Like) {
      if (n.attr("shape") == nullptr) return invalid_argument("required attribute 'shape' is missing");
      for (int64_t d : n.attr_ints("shape")) {
        if (d < 0) return invalid_argument("shape has negative dim ", d);
      }
    }
    return Status::OK();
  }

  explicit RandomFillKernel(const KernelCreateContext& ctx) : seed_(Seed::of(ctx.node)) {
    const graph::Node& n = ctx.node;
    if (n.attr("dtype")) dtype_ = dtype_attr(n).value();
    else if constexpr (!Like) dtype_ = DType::float32;
    if constexpr (!Like) shape_ = Shape(n.attr_ints("shape"));
    if constexpr (Normal) {
      a_ = n.attr_float("mean", 0.0f);
      b_ = n.attr_float("scale", 1.0f);
    } else {
      a_ = n.attr_float("low", 0.0f);
      b_ = n.attr_float("high", 1.0f);
    }
  }

  Status run(OpContext& ctx) const override {
    Shape shape = shape_;
    DType dtype = dtype_;
    if constexpr (Like) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
      shape = x->shape();
      if (dtype == DType::undefined) {
        if (!dtype_is_float(x->dtype())) {
          return invalid_argument("input is ", x->description(), "; without a dtype attribute the output type is the "
                                  "input's, which must be floating-point");
        }
        dtype = x->dtype();
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype, shape));
    Rng rng = seed_.rng();
    if constexpr (Normal) return fill_floats(y, [&] { return a_ + b_ * rng.normal(); });
    else return fill_floats(y, [&] { return a_ + (b_ - a_) * rng.uniform(); });
  }

 private:
  Seed seed_;
  DType dtype_ = DType::undefined;
  Shape shape_;
  double a_ = 0, b_ = 1;
};

// Bernoulli: y = 1 with probability p (the input), else 0.
class BernoulliKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    if (ctx.node.attr("dtype")) return dtype_attr(ctx.node).status();
    return Status::OK();
  }
  explicit BernoulliKernel(const KernelCreateContext& ctx) : seed_(Seed::of(ctx.node)) {
    if (ctx.node.attr("dtype")) dtype_ = dtype_attr(ctx.node).value();
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* p, ctx.input_tensor(0));
    if (!dtype_is_float(p->dtype())) return invalid_argument("probabilities must be floating-point, got ", p->description());
    const DType dtype = dtype_ == DType::undefined ? p->dtype() : dtype_;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype, p->shape()));
    Rng rng = seed_.rng();
    return dispatch<kNumeric | kBool>(dtype, "Bernoulli output", [&](auto tag) -> Status {
      using T = decltype(tag);
      T* out = y.data<T>();
      for (int64_t i = 0; i < p->numel(); ++i) {
        const double prob = element_as_double(*p, i);
        if (!(prob >= 0.0 && prob <= 1.0)) return invalid_argument("probability ", prob, " at index ", i, " is not in [0, 1]");
        const bool one = rng.uniform() < prob;
        if constexpr (std::is_same_v<T, bool>) out[i] = one;
        else out[i] = store<T>(one ? 1 : 0);
      }
      return Status::OK();
    });
  }

 private:
  Seed seed_;
  DType dtype_ = DType::undefined;
};

// Multinomial: input [batch, classes] of unnormalized log-probabilities; output [batch, sample_size] of
// sampled class indices.
class MultinomialKernel final : public OpKernel {
 public:
  static Status validate(const KernelCreateContext& ctx) {
    const int64_t d = ctx.node.attr_int("dtype", 6);
    if (d != 6 && d != 7) return invalid_argument("dtype ", d, " is not int32 (6) or int64 (7)");
    if (ctx.node.attr_int("sample_size", 1) < 0) return invalid_argument("sample_size ", ctx.node.attr_int("sample_size", 1), " is negative");
    return Status::OK();
  }
  explicit MultinomialKernel(const KernelCreateContext& ctx)
      : seed_(Seed::of(ctx.node)),
        dtype_(ctx.node.attr_int("dtype", 6) == 7 ? DType::int64 : DType::int32),
        samples_(ctx.node.attr_int("sample_size", 1)) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (!dtype_is_float(x->dtype()) || x->rank() != 2) {
      return invalid_argument("input must be a [batch, classes] floating-point tensor, got ", x->description());
    }
    const int64_t batch = x->dim(0), classes = x->dim(1);
    if (classes == 0 && batch > 0 && samples_ > 0) return invalid_argument("input has no classes to sample from");
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype_, Shape{batch, samples_}));
    Rng rng = seed_.rng();
    std::vector<double> cdf(static_cast<size_t>(classes));
    for (int64_t b = 0; b < batch; ++b) {
      double mx = -INFINITY;
      for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, element_as_double(*x, b * classes + c));
      if (!std::isfinite(mx)) return invalid_argument("row ", b, " has no finite log-probability (max ", mx, ")");
      double total = 0;
      for (int64_t c = 0; c < classes; ++c) {
        total += std::exp(element_as_double(*x, b * classes + c) - mx);
        cdf[static_cast<size_t>(c)] = total;
      }
      for (int64_t s = 0; s < samples_; ++s) {
        const double u = rng.uniform() * total;
        auto k = static_cast<int64_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
        k = std::min(k, classes - 1);
        if (dtype_ == DType::int64) y.data<int64_t>()[b * samples_ + s] = k;
        else y.data<int32_t>()[b * samples_ + s] = static_cast<int32_t>(k);
      }
    }
    return Status::OK();
  }

 private:
  Seed seed_;
  DType dtype_;
  int64_t samples_;
};

// Dropout. Orchard runs inference: before opset 12 (no training_mode input) Dropout is the identity,
// whatever is_test says. From opset 12, training_mode = true drops each element with probability `ratio`
// and scales the kept ones by 1 / (1 - ratio). The mask is bool from opset 10, of the data type before.
class DropoutKernel final : public OpKernel {
 public:
  explicit DropoutKernel(const KernelCreateContext& ctx) : seed_(Seed::of(ctx.node)), opset_(ctx.node.opset) {}

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (!dtype_is_float(x->dtype())) return invalid_argument("data must be floating-point, got ", x->description());
    double ratio = 0.5;
    bool training = false;
    if (opset_ >= 12) {
      if (ctx.has_input(1)) {
        ORCHARD_ASSIGN_OR_RETURN(const Tensor* r, ctx.input_tensor(1));
        if (r->numel() != 1 || !dtype_is_float(r->dtype())) return invalid_argument("ratio must be a floating-point scalar, got ", r->description());
        ratio = element_as_double(*r, 0);
      }
      if (ctx.has_input(2)) {
        ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(2));
        if (t->numel() != 1 || t->dtype() != DType::boolean) return invalid_argument("training_mode must be a bool scalar, got ", t->description());
        training = t->data<bool>()[0];
      }
    }
    const bool want_mask = ctx.num_outputs() > 1;
    if (!training || ratio == 0.0) {
      ctx.set_output(0, ctx.value(0));
      if (want_mask) return fill_mask_all(ctx, *x);
      return Status::OK();
    }
    if (!(ratio > 0.0 && ratio < 1.0)) return invalid_argument("ratio ", ratio, " is not in [0, 1)");
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), x->shape()));
    Tensor mask;
    if (want_mask) {
      ORCHARD_ASSIGN_OR_RETURN(mask, ctx.make_output(1, DType::boolean, x->shape()));
    }
    Rng rng = seed_.rng();
    const double scale = 1.0 / (1.0 - ratio);
    return dispatch<kFloats>(x->dtype(), "Dropout", [&](auto tag) -> Status {
      using T = decltype(tag);
      using C = compute_t<T>;
      const T* in = x->data<T>();
      T* out = y.data<T>();
      bool* m = want_mask ? mask.data<bool>() : nullptr;
      for (int64_t i = 0; i < x->numel(); ++i) {
        const bool keep = rng.uniform() >= ratio;
        out[i] = store<T>(keep ? load(in[i]) * static_cast<C>(scale) : C(0));
        if (m) m[i] = keep;
      }
      return Status::OK();
    });
  }

 private:
  // The mask of an identity Dropout: all true (bool), or all 1 in the data type before opset 10.
  Status fill_mask_all(OpContext& ctx, const Tensor& x) const {
    const DType dt = opset_ >= 10 ? DType::boolean : x.dtype();
    ORCHARD_ASSIGN_OR_RETURN(Tensor mask, ctx.make_output(1, dt, x.shape()));
    return dispatch<kFloats | kBool>(dt, "Dropout mask", [&](auto tag) -> Status {
      using T = decltype(tag);
      T* m = mask.data<T>();
      for (int64_t i = 0; i < mask.numel(); ++i) {
        if constexpr (std::is_same_v<T, bool>) m[i] = true;
        else m[i] = store<T>(1.0f);
      }
      return Status::OK();
    });
  }

  Seed seed_;
  int opset_;
};

constexpr KernelDef kKernels[] = {
    {"", "RandomUniform", 1, kVerifiedOpset, make<RandomFillKernel<false, false>>},
    {"", "RandomNormal", 1, kVerifiedOpset, make<RandomFillKernel<true, false>>},
    {"", "RandomUniformLike", 1, kVerifiedOpset, make<RandomFillKernel<false, true>>},
    {"", "RandomNormalLike", 1, kVerifiedOpset, make<RandomFillKernel<true, true>>},
    {"", "Bernoulli", 15, kVerifiedOpset, make<BernoulliKernel>},
    {"", "Multinomial", 7, kVerifiedOpset, make<MultinomialKernel>},
    {"", "Dropout", 1, kVerifiedOpset, make<DropoutKernel>},
};

}  // namespace

std::span<const KernelDef> random_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
