// Conv and FusedConv on float32 (1-D, 2-D, N-D; groups, strides, dilations, pads); constant weights are
// packed once at create (others per run):
//  - 1x1, stride 1, no padding: a GEMM straight on the NCHW image (W_g [M/g x C/g] times X_g [C/g x HW]);
//  - depthwise 2-D (group == C == M): a direct kernel, on blocks of channels in vector lanes, or for wide rows
//    at horizontal stride 1 one channel plane at a time;
//  - everything else: im2col per (image, group) + GEMM; for 1-D and 2-D the GEMM packs its blocks of the
//    im2col matrix straight from the image (Im2colSource; small ones from a padded copy, PaddedSource), N-D
//    builds the matrix first.
// The bias, the residual Z and the activation run in the GEMM's epilogue (per output tile) or, for the
// depthwise kernel, on each finished plane (activations: apply_activation_vec). Declined (the reference takes
// the node): inputs not known to be float32.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "backends/cpu/parallel.hpp"
#include "backends/cpu/opt/depthwise_f32.hpp"
#include "backends/cpu/opt/families.hpp"
#include "backends/cpu/opt/gemm_f32.hpp"
#include "backends/cpu/opt/vec_math.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "core/cpu_features.hpp"
#include "runtime/backend.hpp"

namespace orchard::cpu::opt {

namespace {

using reference::ConvGeom;

// Adds the residual plane z (if any) to the output plane y and applies the activation.
void finish_plane(const float* z, const ActivationSpec& act, float* y, int64_t n) {
  if (z != nullptr) {
    for (int64_t i = 0; i < n; ++i) y[i] += z[i];
  }
  apply_activation_vec(act, y, n);
}

// True when the plane kernel is used rather than the channel-block one: horizontal stride 1 and rows wide
// enough to fill vectors (measured: 112x112 planes faster by plane, 56x56 and below by channel block).
bool depthwise_by_planes(const ConvGeom& g) { return g.stride[1] == 1 && g.out[1] >= 64; }

// y [N, C, out] = depthwise conv of x [N, C, in] with w [C, 1, kh, kw] + bias, then the residual and the
// activation on each finished plane (2-D only): a block of channels or one plane per task.
void depthwise_2d(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* z,
                  const ActivationSpec& act, float* y, ThreadPool& pool) {
  const DepthwisePlane plane{g.in[0],     g.in[1],     g.out[0],      g.out[1],      g.kernel[0],   g.kernel[1],
                             g.stride[0], g.stride[1], g.dilation[0], g.dilation[1], g.pad_begin[0], g.pad_begin[1]};
  const DepthwiseKernel& k = depthwise_kernel();
  const int64_t taps = g.kernel[0] * g.kernel[1];
  if (!depthwise_by_planes(g)) {
    const int64_t bw = k.block_width, blocks = (g.M + bw - 1) / bw;
    const int64_t grain = std::max<int64_t>(1, 8192 / std::max<int64_t>(1, bw * g.out_size * taps));
    bool act_taken = false;  // the kernel adds the residual and applies Relu / Clip as it stores
    const TileEpilogue base = tile_epilogue_for(act, act_taken);
    pool.parallel_for(g.N * blocks, grain, [&](int64_t t0, int64_t t1) {
      std::vector<float> scratch(static_cast<size_t>(k.block_scratch_floats(plane)));
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / blocks, c0 = (t % blocks) * bw, lanes = std::min(bw, g.M - c0);
        const int64_t p0 = n * g.M + c0;
        TileEpilogue ep = base;
        if (z != nullptr) {
          ep.residual = z + p0 * g.out_size;
          ep.ld_residual = g.out_size;
        }
        const bool any = z != nullptr || ep.clamp != TileEpilogue::Clamp::none;
        k.block(plane, lanes, x + p0 * g.in_size, g.in_size, w + c0 * taps, bias ? bias + c0 : nullptr,
                any ? &ep : nullptr, y + p0 * g.out_size, g.out_size, scratch.data());
        // The block's planes are contiguous: one pass, so a 7x7 plane's 49 values don't each end in a partial vector.
        if (!act_taken) apply_activation_vec(act, y + p0 * g.out_size, lanes * g.out_size);
      }
    });
    return;
  }
  pool.parallel_for(g.N * g.M, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, g.out_size * taps)), [&](int64_t p0, int64_t p1) {
    std::vector<float> scratch(static_cast<size_t>(k.scratch_floats(plane)));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % g.M;
      k.plane(plane, x + p * g.in_size, w + c * taps, bias ? bias[c] : 0.0f, y + p * g.out_size, scratch.data());
      finish_plane(z ? z + p * g.out_size : nullptr, act, y + p * g.out_size, g.out_size);
    }
  });
}

typedef float v4 __attribute__((vector_size(16)));

// Writes src[2 o] to out[o - a] for o from a on, four at a time while the loads stay at or below src[2 (b - 1)]
// (the last float the run reads); returns the first o not written.
int64_t gather_even(const float* src, int64_t a, int64_t b, float* out) {
  int64_t o = a;
  for (; o + 4 < b; o += 4) {
    v4 lo, hi;
    std::memcpy(&lo, src + 2 * o, sizeof lo);
    std::memcpy(&hi, src + 2 * o + 4, sizeof hi);
    const v4 even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    std::memcpy(out + (o - a), &even, sizeof even);
  }
  return o;
}

// The im2col matrix of one (image, group) of a 1-D or 2-D convolution, [cg * kh * kw] x [oh * ow], produced
// block by block for the GEMM (never stored whole): row (c, ky, kx), column (oy, ox) holds
// x[c][oy * sh - ph + ky * dh][ox * sw - pw + kx * dw], zero outside the image.
class Im2colSource final : public GemmPanelSource {
 public:
  Im2colSource(const ConvGeom& g, const float* x) : x_(x) {
    const bool two_d = g.rank() == 2;
    ih_ = two_d ? g.in[0] : 1;
    oh_ = two_d ? g.out[0] : 1;
    kh_ = two_d ? g.kernel[0] : 1;
    sh_ = two_d ? g.stride[0] : 1;
    dh_ = two_d ? g.dilation[0] : 1;
    ph_ = two_d ? g.pad_begin[0] : 0;
    const size_t d = g.rank() - 1;
    iw_ = g.in[d], ow_ = g.out[d], kw_ = g.kernel[d], sw_ = g.stride[d], dw_ = g.dilation[d], pw_ = g.pad_begin[d];
  }

  // Per im2col row k: the block's columns written once into a contiguous row, a run per output row (zeros
  // outside the image), then copied into the nr-column panels. Runs per output row rather than per piece of a
  // panel: a 14x14 image's 196 columns are 14 runs, not 23.
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* out) const override {
    const int64_t taps = kh_ * kw_, n_end = std::min(j0 + nc, oh_ * ow_), panels = (nc + nr - 1) / nr;
    const int64_t width = panels * nr, filled = n_end - j0;
    thread_local std::vector<float> row_buffer;
    if (static_cast<int64_t>(row_buffer.size()) < width) row_buffer.resize(static_cast<size_t>(width));
    float* row = row_buffer.data();
    std::fill(row + filled, row + width, 0.0f);  // columns past the matrix
    for (int64_t k = 0; k < kc; ++k) {
      const int64_t p = p0 + k, c = p / taps, ky = p % taps / kw_, kx = p % taps % kw_;
      const float* xc = x_ + c * ih_ * iw_;
      const int64_t kx_off = kx * dw_ - pw_;
      // Outputs ox in [lo, hi) read inside the row: 0 <= ox * sw + kx_off < iw.
      const int64_t lo = std::min(ow_, kx_off >= 0 ? 0 : (-kx_off + sw_ - 1) / sw_);
      const int64_t hi = std::max(lo, std::min(ow_, iw_ - kx_off <= 0 ? 0 : (iw_ - kx_off + sw_ - 1) / sw_));
      int64_t oy = j0 / ow_, ox = j0 % ow_;
      for (int64_t j = 0; j < filled; ox = 0, ++oy) {  // runs of one output row
        const int64_t len = std::min(filled - j, ow_ - ox);
        float* d = row + j;  // d[o - ox]: output column o of this run
        const int64_t iy = oy * sh_ - ph_ + ky * dh_;
        if (iy < 0 || iy >= ih_) {
          std::fill(d, d + len, 0.0f);
        } else {
          const float* src = xc + iy * iw_ + kx_off;
          const int64_t a = std::clamp(lo, ox, ox + len), b = std::clamp(hi, a, ox + len);
          std::fill(d, d + (a - ox), 0.0f);
          if (sw_ == 1) {
            std::copy(src + a, src + b, d + (a - ox));
          } else {
            int64_t o = a;
            if (sw_ == 2) o = gather_even(src, a, b, d + (a - ox));  // stride 2: four at a time
            for (; o < b; ++o) d[o - ox] = src[o * sw_];
          }
          std::fill(d + (b - ox), d + len, 0.0f);
        }
        j += len;
      }
      copy_runs(row, nr, out + k * nr, kc * nr, panels, nr);
    }
  }

 private:
  const float* x_;
  int64_t ih_, oh_, kh_, sh_, dh_, ph_, iw_, ow_, kw_, sw_, dw_, pw_;
};

// Small 1-D and 2-D convolutions with short output rows (the 8x8 images of a digits classifier): the im2col
// matrix is read from a copy of the (image, group)'s channels with the padding written out as zeros, so that
// every run of output columns reads inside the copy and packing a block is plain copies of a few floats, where
// Im2colSource's bounds and fills per run cost more than the pixels. Used for output rows shorter than
// kPaddedMaxRow (longer rows make long runs, which Im2colSource copies at memory speed) and copies of at most
// kPaddedMaxFloats.
constexpr int64_t kPaddedMaxRow = 16;
constexpr int64_t kPaddedMaxFloats = int64_t{1} << 16;

// The padded copy's geometry: rows and columns of each channel's plane (only those some window reads).
struct PaddedGeom {
  int64_t rows = 0, cols = 0;
  int64_t floats(int64_t channels) const { return channels * rows * cols; }
};

// The kernel's shape-dependent state: the geometry and, for small convolutions, the padded copy's.
struct ConvF32State final : runtime::KernelState {
  ConvGeom g;
  std::optional<PaddedGeom> padded;
};

// Returns the padded copy's geometry for g, or nothing when g does not qualify (see kPaddedMaxRow).
std::optional<PaddedGeom> padded_geometry(const ConvGeom& g, bool implicit) {
  if (!implicit || g.out.back() >= kPaddedMaxRow) return std::nullopt;
  const bool two_d = g.rank() == 2;
  const size_t d = g.rank() - 1;
  PaddedGeom pg;
  pg.rows = two_d ? (g.out[0] - 1) * g.stride[0] + (g.kernel[0] - 1) * g.dilation[0] + 1 : 1;
  pg.cols = (g.out[d] - 1) * g.stride[d] + (g.kernel[d] - 1) * g.dilation[d] + 1;
  if (pg.floats(g.c_per_group()) > kPaddedMaxFloats) return std::nullopt;
  return pg;
}

// dst[0, n) = src[0, n) for the short runs of PaddedSource (any n; fastest below 16): blocks of fixed size
// (copied in registers, where a loop of them would become a call to memmove), then the rest.
inline void copy_short(float* __restrict dst, const float* __restrict src, int64_t n) {
  if (n >= 8) {
    std::memcpy(dst, src, 8 * sizeof(float));
    dst += 8, src += 8, n -= 8;
  }
  if (n >= 4) {
    std::memcpy(dst, src, 4 * sizeof(float));
    dst += 4, src += 4, n -= 4;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Writes the padded copy of channels x [cg, ih, iw] into xp: row r, column c of a plane hold x at
// (r - pad top, c - pad left), zero outside the image.
void pad_channels(const ConvGeom& g, const PaddedGeom& pg, const float* x, float* xp) {
  const bool two_d = g.rank() == 2;
  const size_t d = g.rank() - 1;
  const int64_t ih = two_d ? g.in[0] : 1, iw = g.in[d], ph = two_d ? g.pad_begin[0] : 0, pw = g.pad_begin[d];
  for (int64_t c = 0; c < g.c_per_group(); ++c) {
    for (int64_t r = 0; r < pg.rows; ++r, xp += pg.cols) {
      const int64_t iy = r - ph;
      const int64_t lo = std::clamp<int64_t>(pw, 0, pg.cols), hi = std::clamp<int64_t>(pw + iw, lo, pg.cols);
      if (iy < 0 || iy >= ih) {
        std::fill(xp, xp + pg.cols, 0.0f);
        continue;
      }
      std::fill(xp, xp + lo, 0.0f);
      copy_short(xp + lo, x + (c * ih + iy) * iw + (lo - pw), hi - lo);
      std::fill(xp + hi, xp + pg.cols, 0.0f);
    }
  }
}

// The im2col matrix of one (image, group) of a small convolution, read from its padded copy (pad_channels).
class PaddedSource final : public GemmPanelSource {
 public:
  PaddedSource(const ConvGeom& g, const PaddedGeom& pg, const float* xp) : xp_(xp), out_size_(g.out_size) {
    const bool two_d = g.rank() == 2;
    const size_t d = g.rank() - 1;
    plane_ = pg.rows * pg.cols;
    kh_ = two_d ? g.kernel[0] : 1;
    kw_ = g.kernel[d];
    row_step_ = (two_d ? g.stride[0] : 1) * pg.cols;
    ky_step_ = (two_d ? g.dilation[0] : 1) * pg.cols;
    ow_ = g.out[d], sw_ = g.stride[d], dw_ = g.dilation[d];
  }

  // Panel by panel (the panel's first output row and column found once), row k of the block at a time.
  void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* out) const override {
    for (int64_t jp = 0; jp < nc; jp += nr, out += kc * nr) {
      const int64_t j = j0 + jp, n = std::max<int64_t>(0, std::min<int64_t>({nr, nc - jp, out_size_ - j}));
      const int64_t oy0 = j / ow_, ox0 = j % ow_;
      int64_t c = p0 / (kh_ * kw_), ky = p0 % (kh_ * kw_) / kw_, kx = p0 % kw_;
      for (int64_t k = 0; k < kc; ++k) {
        const float* base = xp_ + c * plane_ + ky * ky_step_ + kx * dw_;
        float* dst = out + k * nr;
        int64_t oy = oy0, ox = ox0;
        for (int64_t c0 = 0; c0 < n; ox = 0, ++oy) {  // runs of one output row
          const int64_t len = std::min(n - c0, ow_ - ox);
          const float* src = base + oy * row_step_ + ox * sw_;
          if (sw_ == 1) {
            copy_short(dst + c0, src, len);
          } else {
            for (int64_t i = 0; i < len; ++i) dst[c0 + i] = src[i * sw_];
          }
          c0 += len;
        }
        std::fill(dst + n, dst + nr, 0.0f);
        if (++kx == kw_) {  // the next row k: (c, ky, kx) in order
          kx = 0;
          if (++ky == kh_) ky = 0, ++c;
        }
      }
    }
  }

 private:
  const float* xp_;
  int64_t out_size_, plane_ = 0, kh_ = 1, kw_ = 1, row_step_ = 0, ky_step_ = 0, ow_ = 1, sw_ = 1, dw_ = 1;
};

// Conv (Fused = false) and FusedConv (inputs X, W, B, Z; attributes activation / activation_params).
template <bool Fused>
class ConvF32 final : public OpKernel {
 public:
  explicit ConvF32(const KernelCreateContext& ctx) : node_(ctx.node), group_(ctx.node.attr_int("group", 1)) {
    if constexpr (Fused) act_ = *parse_activation(ctx.node);
    if (const Tensor* w = ctx.constant_input(1); w != nullptr && !is_depthwise(*w)) packed_ = pack_weight(*w);
  }

  static Status validate(const KernelCreateContext& ctx) {
    if constexpr (Fused) ORCHARD_RETURN_IF_ERROR(parse_activation(ctx.node).status());
    if (const std::string layout = ctx.node.attr_string("layout", "nchw"); Fused && layout != "nchw") {
      if (layout != "nhwc") return invalid_argument("FusedConv layout '", layout, "' (nchw or nhwc)");
      return unsupported("FusedConv: the float32 variant takes the nchw layout only");  // the reference takes nhwc
    }
    for (size_t i = 0; i < std::min<size_t>(Fused ? 4 : 3, ctx.node.inputs.size()); ++i) {
      if (ctx.node.inputs[i].empty()) continue;
      if (ctx.input_type(i).dtype != DType::float32) {
        return unsupported(ctx.node.op_type, ": the float32 variant does not take input ", i, " of type ",
                           dtype_name(ctx.input_type(i).dtype));
      }
    }
    const Tensor* w = ctx.constant_input(1);
    const int64_t group = ctx.node.attr_int("group", 1);
    if (w != nullptr && (w->rank() < 3 || group < 1 || w->dim(0) % group != 0)) {
      return unsupported(ctx.node.op_type, ": the float32 variant does not take W ", w->description(), " with group ",
                         group);
    }
    return reference::validate_conv(ctx);
  }

  bool has_reshape() const override { return true; }

  // A constant W packed at create is read at run for its shape only.
  uint32_t packed_inputs() const override { return packed_.empty() ? 0 : 1u << 1; }

  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    if (shapes.size() < 2) return invalid_argument("needs inputs X and W");
    auto state = std::make_shared<ConvF32State>();
    ORCHARD_ASSIGN_OR_RETURN(state->g, reference::conv_geometry(node_, shapes[0], shapes[1]));
    state->padded = padded_geometry(state->g, uses_implicit_im2col(state->g, shapes[1]));
    return std::shared_ptr<const runtime::KernelState>(std::move(state));
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, ctx.input_tensor(1));
    if (x->dtype() != DType::float32 || w->dtype() != DType::float32) {
      return invalid_argument("X and W must be float32, got ", x->description(), " and ", w->description());
    }
    const ConvF32State* state = ctx.state<ConvF32State>();
    if (state == nullptr) return internal_error("run without reshape");
    const ConvGeom& g = state->g;
    const float* bias = nullptr;
    if (ctx.has_input(2)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(2));
      if (b->dtype() != DType::float32) return invalid_argument("B must be float32, got ", b->description());
      if (b->numel() != g.M) return invalid_argument("B has ", b->numel(), " values for ", g.M, " output channels");
      bias = b->data<float>();
    }
    const Shape out_shape = reference::conv_output_shape(g);
    const float* z = nullptr;
    if (Fused && ctx.has_input(3)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* zt, ctx.input_tensor(3));
      if (zt->dtype() != DType::float32) return invalid_argument("Z must be float32, got ", zt->description());
      if (zt->shape() != out_shape) {
        return invalid_argument("Z of shape ", zt->shape().to_string(), " must have the output's shape ",
                                out_shape.to_string());
      }
      z = zt->data<float>();
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out_shape));
    if (y.numel() == 0) return Status::OK();
    const float* px = x->data<float>();
    float* py = y.data<float>();
    if (is_depthwise(*w)) {  // W has rank 4, so the convolution is 2-D
      depthwise_2d(g, px, w->data<float>(), bias, z, act_, py, ctx.pool());
      return Status::OK();
    }
    // A weight that is not a constant is packed for this run only.
    const std::vector<std::shared_ptr<const PackedMatrix>> packed_now = packed_.empty() ? pack_weight(*w) : packed_;
    const int64_t cg = g.c_per_group(), mg = g.m_per_group(), K = cg * g.kernel_size;
    const bool direct = is_direct(g);  // 1x1, stride 1, no padding: the image itself is the column matrix
    const bool implicit = !direct && g.rank() <= 2;  // 1-D and 2-D: im2col inside the GEMM's packing
    Tensor cols;
    if (!direct && !implicit) {
      ORCHARD_ASSIGN_OR_RETURN(cols, Tensor::create(DType::float32, Shape{K, g.out_size}, ctx.allocator()));
    }
    // The group's padded channels for PaddedSource (read by the GEMM's tasks; written here only).
    thread_local std::vector<float> xp;
    if (state->padded) xp.resize(static_cast<size_t>(state->padded->floats(cg)));
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t gi = 0; gi < g.group; ++gi) {
        const float* xg = px + (n * g.C + gi * cg) * g.in_size;
        const int64_t y_off = (n * g.M + gi * mg) * g.out_size;
        GemmOperand b{xg, g.in_size, false, nullptr};
        const Im2colSource source(g, xg);
        const PaddedSource padded(g, state->padded.value_or(PaddedGeom{}), xp.data());
        if (state->padded) {
          pad_channels(g, *state->padded, xg, xp.data());
          b.source = &padded;
        } else if (implicit) {
          b.source = &source;
        } else if (!direct) {
          reference::im2col(g, xg, cg, cols.data<float>(), ctx.pool());
          b = {cols.data<float>(), g.out_size, false, nullptr};
        }
        GemmEpilogue ep;
        ep.act = act_;
        ep.bias = bias ? bias + gi * mg : nullptr;
        ep.bias_per_row = true;
        if (z != nullptr) {
          ep.residual = z + y_off;
          ep.ld_residual = g.out_size;
        }
        const GemmOperand a{nullptr, 0, false, packed_now[static_cast<size_t>(gi)].get()};
        gemm_f32(mg, g.out_size, K, a, b, py + y_off, g.out_size, ep, &ctx.pool());
      }
    }
    return Status::OK();
  }

 private:
  // True for the weights of a 2-D depthwise convolution (one input and one output channel per group) that the
  // direct kernel takes.
  bool is_depthwise(const Tensor& w) const { return is_depthwise(w.shape()); }
  bool is_depthwise(const Shape& w) const {
    return w.rank() == 4 && w[1] == 1 && group_ == w[0] && group_ > 1 && w[2] * w[3] <= kDepthwiseMaxTaps;
  }

  // True for a 1x1 convolution at stride 1 without padding: a GEMM on the image itself.
  static bool is_direct(const ConvGeom& g) {
    for (size_t d = 0; d < g.rank(); ++d) {
      if (g.kernel[d] != 1 || g.stride[d] != 1 || g.pad_begin[d] != 0 || g.pad_end[d] != 0) return false;
    }
    return true;
  }

  // True when run() packs the im2col matrix inside the GEMM (1-D and 2-D, not direct, not depthwise).
  bool uses_implicit_im2col(const ConvGeom& g, const Shape& w) const {
    return !is_depthwise(w) && !is_direct(g) && g.rank() <= 2;
  }

  // Returns W_g [M/g x C/g * k] of each group g, packed as GEMM left operands.
  std::vector<std::shared_ptr<const PackedMatrix>> pack_weight(const Tensor& w) const {
    const int64_t M = w.dim(0), mg = M / group_, k = M > 0 ? w.numel() / M : 0;
    std::vector<std::shared_ptr<const PackedMatrix>> out;
    for (int64_t gi = 0; gi < group_; ++gi) out.push_back(gemm_pack_a(false, mg, k, w.data<float>() + gi * mg * k, k));
    return out;
  }

  const graph::Node& node_;
  int64_t group_;
  ActivationSpec act_;
  std::vector<std::shared_ptr<const PackedMatrix>> packed_;  // the constant weight, packed at create
};

// FusedConv nhwc with a 1x1 kernel at stride 1 without padding (is_pointwise_nhwc), where oneDNN is not built or
// is off: run_pointwise_nhwc with W packed once at create.
class PointwiseNhwcF32 final : public OpKernel {
 public:
  explicit PointwiseNhwcF32(const KernelCreateContext& ctx) : act_(*parse_activation(ctx.node)) {
    const Tensor& w = *ctx.constant_input(1);
    packed_ = pack_pointwise_weights(w.dim(0), w.dim(3), w.data<float>());
  }

  static Status validate(const KernelCreateContext& ctx) {
    ORCHARD_RETURN_IF_ERROR(parse_activation(ctx.node).status());
    if (!is_pointwise_nhwc(ctx)) return unsupported("FusedConv: not a pointwise nhwc convolution");
    for (size_t i = 0; i < std::min<size_t>(4, ctx.node.inputs.size()); ++i) {
      if (!ctx.node.inputs[i].empty() && ctx.input_type(i).dtype != DType::float32) {
        return unsupported("FusedConv: the float32 variant takes float32 inputs only");
      }
    }
    return Status::OK();
  }

  uint32_t packed_inputs() const override { return 1u << 1; }
  Status run(OpContext& ctx) const override { return run_pointwise_nhwc(ctx, *packed_, act_); }

 private:
  ActivationSpec act_;
  std::shared_ptr<const PackedMatrix> packed_;
};

constexpr int kPriority = 10;

constexpr KernelDef kVariants[] = {
    {"", "Conv", 1, kVerifiedOpset, make<ConvF32<false>>, {DType::float32}, 0, 0, kPriority},
    {"com.orchard", "FusedConv", 1, 1, make<ConvF32<true>>, {DType::float32}, 0, 0, kPriority},
    {"com.orchard", "FusedConv", 1, 1, make<PointwiseNhwcF32>, {DType::float32}, 0, 0, kPriority},
};

}  // namespace

std::shared_ptr<const PackedMatrix> pack_pointwise_weights(int64_t M, int64_t C, const float* w) {
  return gemm_pack_b(true, C, M, w, C);  // B = W^T [C, M]
}

Status run_pointwise_nhwc(OpContext& ctx, const PackedMatrix& w, const ActivationSpec& act) {
  const int64_t K = w.rows(), M = w.cols();
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->dtype() != DType::float32 || x->rank() != 4 || x->dim(3) != K) {
    return invalid_argument("X ", x->description(), " must be float32 [N, H, W, ", K, "]");
  }
  const Shape out{x->dim(0), x->dim(1), x->dim(2), M};
  GemmEpilogue ep;
  ep.act = act;
  if (ctx.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(2));
    if (b->dtype() != DType::float32 || b->numel() != M) {
      return invalid_argument("B ", b->description(), " must be float32 with ", M, " values");
    }
    ep.bias = b->data<float>();  // one per output channel: per column of Y [P, M]
  }
  if (ctx.has_input(3)) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* z, ctx.input_tensor(3));
    if (z->dtype() != DType::float32 || z->shape() != out) {
      return invalid_argument("Z ", z->description(), " must be float32 of the output's shape ", out.to_string());
    }
    ep.residual = z->data<float>();
    ep.ld_residual = M;
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out));
  if (y.numel() == 0) return Status::OK();
  const GemmOperand a{x->data<float>(), K, false, nullptr};
  const GemmOperand b{nullptr, 0, false, &w};
  gemm_f32(out[0] * out[1] * out[2], M, K, a, b, y.data<float>(), M, ep, &ctx.pool());
  return Status::OK();
}

bool is_pointwise_nhwc(const KernelCreateContext& ctx) {
  const graph::Node& n = ctx.node;
  const Tensor* w = ctx.constant_input(1);
  if (n.attr_string("layout", "nchw") != "nhwc" || w == nullptr || w->dtype() != DType::float32 || w->rank() != 4 ||
      w->dim(1) != 1 || w->dim(2) != 1 || n.attr_int("group", 1) != 1) {
    return false;
  }
  const std::vector<int64_t> strides = n.attr_ints("strides", {1, 1}), pads = n.attr_ints("pads", {0, 0, 0, 0});
  return std::all_of(strides.begin(), strides.end(), [](int64_t v) { return v == 1; }) &&
         std::all_of(pads.begin(), pads.end(), [](int64_t v) { return v == 0; });
}

const DepthwiseKernel& depthwise_kernel() {
  static const DepthwiseKernel& chosen = []() -> const DepthwiseKernel& {
#if defined(__x86_64__)
    const uint32_t f = cpu_features();
    if (f & kCpuAvx512) return depthwise_kernel_avx512();
    if (f & kCpuAvx2) return depthwise_kernel_avx2();
#endif
    return depthwise_kernel_portable();
  }();
  return chosen;
}

std::span<const KernelDef> conv_variants() { return kVariants; }

}  // namespace orchard::cpu::opt
