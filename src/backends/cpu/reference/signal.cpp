// Signal kernels: DFT, STFT, Hann/Hamming/Blackman windows, MelWeightMatrix.
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <memory>
#include <numbers>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/numeric_cast.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

using cdouble = std::complex<double>;

// Largest transform or window length accepted (keeps plans and outputs allocatable).
constexpr int64_t kMaxLength = int64_t{1} << 27;

// ---------------------------------------------------------------------------------------------------
// FFT plans: radix-2 for powers of two, a direct sum for short other lengths, Bluestein otherwise.

bool is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// Unnormalised transform of n points with kernel exp(sign * 2*pi*i*j*k/n), sign = -1 forward, +1 inverse.
class FftPlan {
 public:
  FftPlan(int64_t n, bool inverse) : n_(n), sign_(inverse ? 1.0 : -1.0) {
    if (is_pow2(n)) {
      kind_ = Kind::radix2;
      init_radix2();
    } else if (n <= kDirectMax) {
      kind_ = Kind::direct;
      roots_.resize(static_cast<size_t>(n));
      for (int64_t k = 0; k < n; ++k) roots_[static_cast<size_t>(k)] = root(k, n);
    } else {
      kind_ = Kind::bluestein;
      init_bluestein();
    }
  }

  int64_t size() const { return n_; }
  // Scratch elements run() needs.
  size_t scratch_size() const {
    return kind_ == Kind::radix2 ? 0 : kind_ == Kind::direct ? static_cast<size_t>(n_) : static_cast<size_t>(m_);
  }
  // Transforms data[0..n) in place; scratch has scratch_size() elements.
  void run(cdouble* data, cdouble* scratch) const {
    switch (kind_) {
      case Kind::radix2: radix2(data); break;
      case Kind::direct: direct(data, scratch); break;
      case Kind::bluestein: bluestein(data, scratch); break;
    }
  }

 private:
  enum class Kind { radix2, direct, bluestein };
  static constexpr int64_t kDirectMax = 64;

  // exp(sign * 2*pi*i * k / n), with k reduced modulo n by the caller.
  cdouble root(int64_t k, int64_t n) const {
    const double a = sign_ * 2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(n);
    return {std::cos(a), std::sin(a)};
  }

  void init_radix2() {
    const int64_t n = n_;
    twiddle_.resize(static_cast<size_t>(n / 2));
    for (int64_t k = 0; k < n / 2; ++k) twiddle_[static_cast<size_t>(k)] = root(k, n);
    bitrev_.resize(static_cast<size_t>(n));
    int bits = 0;
    while ((int64_t{1} << bits) < n) ++bits;
    for (int64_t i = 0; i < n; ++i) {
      int64_t r = 0;
      for (int b = 0; b < bits; ++b) r |= ((i >> b) & 1) << (bits - 1 - b);
      bitrev_[static_cast<size_t>(i)] = r;
    }
  }

  void radix2(cdouble* a) const {
    const int64_t n = n_;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t j = bitrev_[static_cast<size_t>(i)];
      if (i < j) std::swap(a[i], a[j]);
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
      const int64_t half = len / 2, step = n / len;
      for (int64_t s = 0; s < n; s += len) {
        for (int64_t j = 0; j < half; ++j) {
          const cdouble t = twiddle_[static_cast<size_t>(j * step)] * a[s + j + half];
          a[s + j + half] = a[s + j] - t;
          a[s + j] += t;
        }
      }
    }
  }

  void direct(cdouble* a, cdouble* tmp) const {
    const int64_t n = n_;
    for (int64_t k = 0; k < n; ++k) {
      cdouble acc = 0;
      int64_t idx = 0;  // (j * k) mod n
      for (int64_t j = 0; j < n; ++j) {
        acc += a[j] * roots_[static_cast<size_t>(idx)];
        idx += k;
        if (idx >= n) idx -= n;
      }
      tmp[k] = acc;
    }
    for (int64_t k = 0; k < n; ++k) a[k] = tmp[k];
  }

  // Bluestein: j*k = (j^2 + k^2 - (k-j)^2) / 2 turns the DFT into a convolution with a chirp, done with
  // a power-of-two FFT of length m >= 2n - 1.
  void init_bluestein() {
    const int64_t n = n_;
    m_ = 1;
    while (m_ < 2 * n - 1) m_ <<= 1;
    chirp_.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) {
      const int64_t jj = (j * j) % (2 * n);  // exact: n <= 2^27, so j*j < 2^54
      const double a = sign_ * std::numbers::pi * static_cast<double>(jj) / static_cast<double>(n);
      chirp_[static_cast<size_t>(j)] = {std::cos(a), std::sin(a)};
    }
    inner_fwd_ = std::make_shared<FftPlan>(m_, false);
    inner_inv_ = std::make_shared<FftPlan>(m_, true);
    kernel_.assign(static_cast<size_t>(m_), cdouble(0));
    kernel_[0] = std::conj(chirp_[0]);
    for (int64_t j = 1; j < n; ++j) {
      kernel_[static_cast<size_t>(j)] = kernel_[static_cast<size_t>(m_ - j)] = std::conj(chirp_[static_cast<size_t>(j)]);
    }
    inner_fwd_->run(kernel_.data(), nullptr);
  }

  void bluestein(cdouble* a, cdouble* buf) const {
    const int64_t n = n_, m = m_;
    for (int64_t j = 0; j < n; ++j) buf[j] = a[j] * chirp_[static_cast<size_t>(j)];
    std::fill(buf + n, buf + m, cdouble(0));
    inner_fwd_->run(buf, nullptr);
    for (int64_t j = 0; j < m; ++j) buf[j] *= kernel_[static_cast<size_t>(j)];
    inner_inv_->run(buf, nullptr);
    const double inv_m = 1.0 / static_cast<double>(m);
    for (int64_t k = 0; k < n; ++k) a[k] = buf[k] * inv_m * chirp_[static_cast<size_t>(k)];
  }

  int64_t n_;
  double sign_;
  Kind kind_ = Kind::direct;
  std::vector<cdouble> twiddle_, roots_, chirp_, kernel_;
  std::vector<int64_t> bitrev_;
  int64_t m_ = 0;
  std::shared_ptr<FftPlan> inner_fwd_, inner_inv_;
};

// Reads a scalar (or one-element) integer input.
Result<int64_t> scalar_int(const OpContext& ctx, size_t i, std::string_view what) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
  if (t->numel() != 1 || !dtype_is_integer(t->dtype())) {
    return invalid_argument(what, " must be an integer scalar, got ", t->description());
  }
  return element_as_int(*t, 0);
}

Result<double> scalar_float(const OpContext& ctx, size_t i, std::string_view what) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* t, ctx.input_tensor(i));
  if (t->numel() != 1 || t->dtype() == DType::string || t->dtype() == DType::boolean) {
    return invalid_argument(what, " must be a numeric scalar, got ", t->description());
  }
  return element_as_double(*t, 0);
}

// ---------------------------------------------------------------------------------------------------
// DFT

Status dft(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  const graph::Node& node = ctx.node();
  const int64_t rank = static_cast<int64_t>(x->rank());
  if (rank < 2 || (x->dim(rank - 1) != 1 && x->dim(rank - 1) != 2)) {
    return invalid_argument("input must have shape [batch, ..., 1 or 2], got ", x->description());
  }
  int64_t axis = node.attr_int("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank - 2) {
    return invalid_argument("axis ", node.attr_int("axis", 1), " is out of range for input ", x->description());
  }
  const bool inverse = node.attr_int("inverse", 0) != 0;
  const bool onesided = node.attr_int("onesided", 0) != 0;
  const int64_t comps = x->dim(rank - 1);
  if (onesided && comps == 2) return invalid_argument("onesided output needs a real input (last dim 1)");
  const int64_t len = x->dim(axis);
  int64_t n = len;
  if (ctx.has_input(1)) {
    ORCHARD_ASSIGN_OR_RETURN(n, scalar_int(ctx, 1, "dft_length"));
  }
  if (n < 1 || n > kMaxLength) return invalid_argument("dft_length ", n, " must be in [1, 2^27]");
  const int64_t out_n = onesided ? n / 2 + 1 : n;
  Shape out_shape = x->shape();
  out_shape[axis] = out_n;
  out_shape[rank - 1] = 2;
  const int64_t outer = dims_product(x->shape(), 0, static_cast<size_t>(axis));
  const int64_t inner = dims_product(x->shape(), static_cast<size_t>(axis) + 1, static_cast<size_t>(rank - 1));

  return dispatch<kFloats>(x->dtype(), "DFT", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), out_shape));
    if (y.numel() == 0) return Status::OK();
    const T* in = x->data<T>();
    T* out = y.data<T>();
    const FftPlan plan(n, inverse);
    const double norm = inverse ? 1.0 / static_cast<double>(n) : 1.0;
    const int64_t copy = std::min(len, n);
    ctx.pool().parallel_for(outer * inner, std::max<int64_t>(1, 4096 / n), [&](int64_t b, int64_t e) {
      std::vector<cdouble> line(static_cast<size_t>(n)), scratch(plan.scratch_size());
      for (int64_t l = b; l < e; ++l) {
        const int64_t o = l / inner, i = l % inner;
        std::fill(line.begin(), line.end(), cdouble(0));
        for (int64_t j = 0; j < copy; ++j) {
          const T* p = in + ((o * len + j) * inner + i) * comps;
          line[static_cast<size_t>(j)] = {static_cast<double>(load(p[0])), comps == 2 ? static_cast<double>(load(p[1])) : 0.0};
        }
        plan.run(line.data(), scratch.data());
        for (int64_t k = 0; k < out_n; ++k) {
          T* q = out + ((o * out_n + k) * inner + i) * 2;
          q[0] = store<T>(line[static_cast<size_t>(k)].real() * norm);
          q[1] = store<T>(line[static_cast<size_t>(k)].imag() * norm);
        }
      }
    });
    return Status::OK();
  });
}

// ---------------------------------------------------------------------------------------------------
// STFT

Status stft(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->rank() != 3 || (x->dim(2) != 1 && x->dim(2) != 2)) {
    return invalid_argument("signal must have shape [batch, length, 1 or 2], got ", x->description());
  }
  const bool onesided = ctx.node().attr_int("onesided", 1) != 0;
  const int64_t comps = x->dim(2);
  if (onesided && comps == 2) return invalid_argument("onesided output needs a real signal (last dim 1)");
  ORCHARD_ASSIGN_OR_RETURN(int64_t step, scalar_int(ctx, 1, "frame_step"));
  if (step < 1) return invalid_argument("frame_step ", step, " must be positive");
  const Tensor* window = nullptr;
  if (ctx.has_input(2)) {
    window = &ctx.input(2);
    if (window->rank() != 1 || window->dtype() != x->dtype()) {
      return invalid_argument("window must be a 1-D tensor of the signal's type, got ", window->description());
    }
  }
  int64_t frame = window ? window->dim(0) : -1;
  if (ctx.has_input(3)) {
    ORCHARD_ASSIGN_OR_RETURN(int64_t fl, scalar_int(ctx, 3, "frame_length"));
    if (window && fl != frame) return invalid_argument("frame_length ", fl, " differs from the window length ", frame);
    frame = fl;
  }
  if (frame < 0) return invalid_argument("one of 'window' and 'frame_length' must be given");
  const int64_t batch = x->dim(0), length = x->dim(1);
  if (frame < 1 || frame > length) return invalid_argument("frame length ", frame, " must be in [1, ", length, "]");
  const int64_t frames = (length - frame) / step + 1;
  const int64_t bins = onesided ? frame / 2 + 1 : frame;

  return dispatch<kFloats>(x->dtype(), "STFT", [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x->dtype(), Shape{batch, frames, bins, 2}));
    const T* in = x->data<T>();
    T* out = y.data<T>();
    std::vector<double> win(static_cast<size_t>(frame), 1.0);
    if (window) {
      for (int64_t j = 0; j < frame; ++j) win[static_cast<size_t>(j)] = static_cast<double>(load(window->data<T>()[j]));
    }
    const FftPlan plan(frame, false);
    ctx.pool().parallel_for(batch * frames, std::max<int64_t>(1, 4096 / frame), [&](int64_t b, int64_t e) {
      std::vector<cdouble> line(static_cast<size_t>(frame)), scratch(plan.scratch_size());
      for (int64_t l = b; l < e; ++l) {
        const int64_t bi = l / frames, f = l % frames;
        const T* p = in + (bi * length + f * step) * comps;
        for (int64_t j = 0; j < frame; ++j) {
          const double w = win[static_cast<size_t>(j)];
          line[static_cast<size_t>(j)] = {w * static_cast<double>(load(p[j * comps])),
                                          comps == 2 ? w * static_cast<double>(load(p[j * comps + 1])) : 0.0};
        }
        plan.run(line.data(), scratch.data());
        T* q = out + l * bins * 2;
        for (int64_t k = 0; k < bins; ++k) {
          q[2 * k] = store<T>(line[static_cast<size_t>(k)].real());
          q[2 * k + 1] = store<T>(line[static_cast<size_t>(k)].imag());
        }
      }
    });
    return Status::OK();
  });
}

// ---------------------------------------------------------------------------------------------------
// Window functions and MelWeightMatrix

// Writes `values` to output 0 as the node's output_datatype (a numeric ONNX data type number); integers
// truncate toward zero and saturate.
Status write_as_output_type(OpContext& ctx, const Shape& shape, const std::vector<double>& values) {
  const int64_t onnx_type = ctx.node().attr_int("output_datatype", 1);
  const Result<DType> type = dtype_from_onnx_type(onnx_type);
  if (!type.ok() || *type == DType::string || *type == DType::boolean) {
    return invalid_argument("output_datatype ", onnx_type, " is not a supported numeric type");
  }
  const DType dt = *type;
  return dispatch<kNumeric>(dt, ctx.node().op_type, [&](auto tag) -> Status {
    using T = decltype(tag);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dt, shape));
    T* out = y.data<T>();
    for (size_t i = 0; i < values.size(); ++i) out[i] = saturate_cast<T>(values[i]);
    return Status::OK();
  });
}

// Generalised cosine window a0 - a1*cos(2*pi*n/N) + a2*cos(4*pi*n/N); N = size (periodic) or size - 1.
Status cosine_window(OpContext& ctx, double a0, double a1, double a2) {
  ORCHARD_ASSIGN_OR_RETURN(int64_t size, scalar_int(ctx, 0, "size"));
  if (size < 0 || size > kMaxLength) return invalid_argument("size ", size, " must be in [0, 2^27]");
  const bool periodic = ctx.node().attr_int("periodic", 1) != 0;
  const int64_t denom = periodic ? size : size - 1;
  std::vector<double> v(static_cast<size_t>(size), 1.0);  // a symmetric window of one point is [1]
  if (denom > 0) {
    const double step = 2.0 * std::numbers::pi / static_cast<double>(denom);
    for (int64_t i = 0; i < size; ++i) {
      const double t = step * static_cast<double>(i);
      v[static_cast<size_t>(i)] = a0 - a1 * std::cos(t) + a2 * std::cos(2 * t);
    }
  }
  return write_as_output_type(ctx, Shape{size}, v);
}

Status hann_window(OpContext& ctx) { return cosine_window(ctx, 0.5, 0.5, 0.0); }
Status hamming_window(OpContext& ctx) { return cosine_window(ctx, 25.0 / 46.0, 21.0 / 46.0, 0.0); }
Status blackman_window(OpContext& ctx) { return cosine_window(ctx, 0.42, 0.5, 0.08); }

// Triangular mel filters over the bins of a one-sided spectrum: [dft_length/2 + 1, num_mel_bins].
Status mel_weight_matrix(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(int64_t mel_bins, scalar_int(ctx, 0, "num_mel_bins"));
  ORCHARD_ASSIGN_OR_RETURN(int64_t dft_length, scalar_int(ctx, 1, "dft_length"));
  ORCHARD_ASSIGN_OR_RETURN(int64_t sample_rate, scalar_int(ctx, 2, "sample_rate"));
  ORCHARD_ASSIGN_OR_RETURN(double lower, scalar_float(ctx, 3, "lower_edge_hertz"));
  ORCHARD_ASSIGN_OR_RETURN(double upper, scalar_float(ctx, 4, "upper_edge_hertz"));
  if (mel_bins < 1 || mel_bins > (1 << 20)) return invalid_argument("num_mel_bins ", mel_bins, " must be in [1, 2^20]");
  if (dft_length < 1 || dft_length > (1 << 24)) return invalid_argument("dft_length ", dft_length, " must be in [1, 2^24]");
  if (sample_rate < 1) return invalid_argument("sample_rate ", sample_rate, " must be positive");
  if (!(lower >= 0 && lower <= upper && std::isfinite(upper))) {
    return invalid_argument("edge frequencies [", lower, ", ", upper, "] must satisfy 0 <= lower <= upper");
  }
  const int64_t spec_bins = dft_length / 2 + 1;
  if (spec_bins * mel_bins > kMaxLength) {
    return invalid_argument("a matrix of ", spec_bins, " x ", mel_bins, " weights is too large");
  }
  auto hz_to_mel = [](double f) { return 2595.0 * std::log10(1.0 + f / 700.0); };
  auto mel_to_hz = [](double m) { return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0); };
  const double low_mel = hz_to_mel(lower), high_mel = hz_to_mel(upper);
  const double mel_step = (high_mel - low_mel) / static_cast<double>(mel_bins + 2);
  // Filter edges as spectrum bin indices.
  std::vector<int64_t> edge(static_cast<size_t>(mel_bins + 2));
  for (int64_t i = 0; i < mel_bins + 2; ++i) {
    const double hz = mel_to_hz(static_cast<double>(i) * mel_step + low_mel);
    const double bin = std::floor(static_cast<double>(dft_length + 1) * hz / static_cast<double>(sample_rate));
    edge[static_cast<size_t>(i)] = static_cast<int64_t>(std::clamp(bin, -0x1p52, 0x1p52));  // far edges stay far
  }
  std::vector<double> w(static_cast<size_t>(spec_bins * mel_bins), 0.0);
  auto set = [&](int64_t bin, int64_t mel, double v) {
    if (bin >= 0 && bin < spec_bins) w[static_cast<size_t>(bin * mel_bins + mel)] = v;
  };
  for (int64_t i = 0; i < mel_bins; ++i) {
    const int64_t lo = edge[static_cast<size_t>(i)], mid = edge[static_cast<size_t>(i + 1)], hi = edge[static_cast<size_t>(i + 2)];
    if (mid == lo) {
      set(mid, i, 1.0);
    } else {
      for (int64_t j = std::max<int64_t>(lo, 0); j <= std::min(mid, spec_bins - 1); ++j) {
        set(j, i, static_cast<double>(j - lo) / static_cast<double>(mid - lo));
      }
    }
    if (hi > mid) {
      for (int64_t j = std::max<int64_t>(mid, 0); j < std::min(hi, spec_bins); ++j) {
        set(j, i, static_cast<double>(hi - j) / static_cast<double>(hi - mid));
      }
    }
  }
  return write_as_output_type(ctx, Shape{spec_bins, mel_bins}, w);
}

constexpr KernelDef kKernels[] = {
    {"", "DFT", 17, 19, stateless<dft>},  // 20 moves dft_length and axis to inputs
    {"", "STFT", 17, kVerifiedOpset, stateless<stft>},
    {"", "HannWindow", 17, kVerifiedOpset, stateless<hann_window>},
    {"", "HammingWindow", 17, kVerifiedOpset, stateless<hamming_window>},
    {"", "BlackmanWindow", 17, kVerifiedOpset, stateless<blackman_window>},
    {"", "MelWeightMatrix", 17, kVerifiedOpset, stateless<mel_weight_matrix>},
};

}  // namespace

std::span<const KernelDef> signal_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
