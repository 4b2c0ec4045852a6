// FusedConv in the nhwc layout (X, Z, Y [N, H, W, C]; W [M, kH, kW, C/group]) on oneDNN's convolutions. In this
// layout oneDNN's AVX-512 kernels ran resnet50 25% faster end to end than the NCHW kernels of conv_f32.cpp, and
// depthwise convolutions 2-7x faster (bench/RESULTS.md, session 11); on an AVX2-only CPU (an AMD EPYC, session 13)
// its AVX2 kernels took resnet50 from 328 to 144 ms and mobilenet_v2 from 30 to 8.4 at one thread. Hence the CPU
// backend asks the graph for channels last when this file is built (ORCHARD_DNNL, oneDNN found) and the CPU has
// AVX2 or AVX-512.
//
// Threads: oneDNN is called single-threaded from inside Orchard's pool, never with its own OpenMP threads (so
// nothing oversubscribes the pool). A run is split into tasks of whole images or, when there are fewer images
// than threads, of bands of output rows: in NHWC a band of rows is one contiguous range of X and of Y, so a band
// is a convolution of its own, with the band's edge rows as its padding. Each distinct band geometry is one
// oneDNN primitive, created on first use and cached with the input shapes' state.
//
// Weights: reordered once at create into the format oneDNN's kernel wants (the original is then released:
// packed_inputs()); a band whose primitive wants another format gets a reordered copy of that copy. Bias, the
// residual Z (oneDNN's sum: Y starts as a copy of Z) and Relu / Clip / LeakyRelu run inside oneDNN; the other
// activations run on each finished band (apply_activation_vec, held to the reference like every vector kernel).
// Pointwise convolutions over a few pixels per image take the GEMM instead (kFewPixels).
// Declined (the reference takes the node): anything but float32, a weight that is not a constant, ranks other
// than 4, attributes oneDNN has no convolution for, and everything while ORCHARD_ONEDNN=0.
#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "backends/cpu/opt/dnnl_util.hpp"
#include "backends/cpu/opt/epilogue.hpp"
#include "backends/cpu/opt/families.hpp"
#include "backends/cpu/opt/vec_math.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "core/cpu_features.hpp"
#include "runtime/backend.hpp"

namespace orchard::cpu::opt {

namespace {

using reference::ConvGeom;
using namespace dnnl_util;

// Pointwise convolutions over at most this many pixels per image (efficientnet's squeeze-excitation 1x1
// convolutions on [N, 1, 1, C]) run as one GEMM (run_pointwise_nhwc): a oneDNN call costs tens of microseconds
// there, many times the product.
constexpr int64_t kFewPixels = 4;

// The rows of one band: output rows [o0, o1) read input rows [in0, in0 + ih); the band's convolution pads
// pad_top rows above and pad_bottom below them.
struct Band {
  int64_t o0 = 0, o1 = 0, in0 = 0, ih = 0, pad_top = 0, pad_bottom = 0;
};

// A strided band also takes the up to stride - 1 input rows after its last window where they exist: they change
// no output row (the row count rounds down), and oneDNN's 1x1 kernel takes a strided convolution only when the
// input is whole (resnet50's stride-2 downsampling 1x1 on 14x14, AVX2 EPYC, one thread: 10.0 -> 2.6 ms).
Band band_rows(const ConvGeom& g, int64_t o0, int64_t o1) {
  const int64_t lo = o0 * g.stride[0] - g.pad_begin[0];
  const int64_t hi = (o1 - 1) * g.stride[0] - g.pad_begin[0] + (g.kernel[0] - 1) * g.dilation[0];  // inclusive
  const int64_t first = std::max<int64_t>(0, lo), last = std::min<int64_t>(g.in[0] - 1, hi + g.stride[0] - 1);
  return {o0, o1, first, last - first + 1, first - lo, std::max<int64_t>(0, hi - last)};
}


// One oneDNN primitive: the convolution of one band geometry, and the weights in the format it reads.
struct Primitive {
  dnnl::convolution_forward conv;
  dnnl::memory::desc src, dst, scratch;
  dnnl::memory weights;
};

// How a run on a given number of threads is split: tasks (image, band) and the primitives they run.
struct Plan {
  struct Task {
    int64_t n;
    Band band;
    size_t primitive;
  };
  std::vector<Task> tasks;
  std::vector<Primitive> primitives;
};

struct DnnlConvState final : runtime::KernelState {
  ConvGeom g;
  mutable std::mutex mu;
  mutable std::map<int, std::shared_ptr<const Plan>> plans;  // by thread count, made on first use
};

// Returns the output rows of each task of an image: one band, or `threads / images` bands (rounded up) when
// there are fewer images than threads; one band where a band would read no input row (padding only).
std::vector<Band> image_bands(const ConvGeom& g, int threads) {
  const int64_t oh = g.out[0];
  const int64_t count = g.N >= threads ? 1 : std::min<int64_t>(oh, (threads + g.N - 1) / g.N);
  std::vector<Band> bands;
  for (int64_t b = 0; b < count; ++b) {  // count <= oh: every band has a row
    bands.push_back(band_rows(g, oh * b / count, oh * (b + 1) / count));
    if (bands.back().ih <= 0) return {band_rows(g, 0, oh)};
  }
  return bands;
}

// The geometry of one image of the size the graph declares for X (56x56 when it does not say): what the
// weights' format is chosen for at create.
Result<ConvGeom> nominal_geometry(const KernelCreateContext& ctx) {
  const Tensor& w = *ctx.constant_input(1);
  int64_t h = 56, wd = 56;
  if (const runtime::ValueType& t = ctx.input_type(0); t.has_shape && t.shape.size() == 4) {
    if (t.shape[1].value > 0) h = t.shape[1].value;
    if (t.shape[2].value > 0) wd = t.shape[2].value;
  }
  const int64_t group = ctx.node.attr_int("group", 1);
  ORCHARD_ASSIGN_OR_RETURN(ConvGeom g, reference::conv_geometry(ctx.node, Shape{1, w.dim(3) * group, h, wd},
                                                                Shape{w.dim(0), w.dim(3), w.dim(1), w.dim(2)}));
  if (g.out[0] <= 0 || g.out[1] <= 0) return unsupported("FusedConv: no output for a ", h, "x", wd, " image");
  return g;
}

class ConvDnnl final : public OpKernel {
 public:
  // Checks the node, then makes the kernel with W reordered into the format oneDNN's convolution reads (chosen
  // for nominal_geometry); declines what oneDNN has no convolution for.
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    ORCHARD_RETURN_IF_ERROR(validate(ctx));
    if (disabled_by_env()) return unsupported("oneDNN is off (ORCHARD_ONEDNN=0)");
    ORCHARD_ASSIGN_OR_RETURN(const ConvGeom g, nominal_geometry(ctx));
    SingleThreaded one;
    std::unique_ptr<ConvDnnl> k(new ConvDnnl(ctx));
    const auto pd = k->primitive_desc(g, band_rows(g, 0, g.out[0]));
    if (!pd) return unsupported("FusedConv: oneDNN has no convolution for ", ctx.node.name);
    dnnl::memory plain(k->plain_weights_desc(), cpu_engine(), const_cast<float*>(ctx.constant_input(1)->data<float>()));
    k->weights_.push_back(reordered(plain, pd->weights_desc()));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  explicit ConvDnnl(const KernelCreateContext& ctx)
      : node_(ctx.node),
        act_(*parse_activation(ctx.node)),
        group_(ctx.node.attr_int("group", 1)),
        has_bias_(ctx.node.inputs.size() > 2 && !ctx.node.inputs[2].empty()),
        has_z_(ctx.node.inputs.size() > 3 && !ctx.node.inputs[3].empty()) {
    const Tensor& w = *ctx.constant_input(1);
    M_ = w.dim(0), kh_ = w.dim(1), kw_ = w.dim(2), cg_ = w.dim(3);
    plain_w_ = Shape{M_, kh_, kw_, cg_};
    pointwise_ = is_pointwise_nhwc(ctx);
  }

  static Status validate(const KernelCreateContext& ctx) {
    ORCHARD_RETURN_IF_ERROR(parse_activation(ctx.node).status());
    if (const std::string layout = ctx.node.attr_string("layout", "nchw"); layout != "nhwc") {
      if (layout != "nchw") return invalid_argument("FusedConv layout '", layout, "' (nchw or nhwc)");
      return unsupported("FusedConv: oneDNN takes layout nhwc only");
    }
    const Tensor* w = ctx.constant_input(1);
    if (w == nullptr || w->dtype() != DType::float32 || w->rank() != 4) {
      return unsupported("FusedConv: oneDNN takes a constant float32 W of rank 4 only");
    }
    const int64_t group = ctx.node.attr_int("group", 1);
    if (group < 1 || w->dim(0) % group != 0) {
      return invalid_argument("FusedConv: W ", w->description(), " with group ", group);
    }
    for (size_t i = 0; i < std::min<size_t>(4, ctx.node.inputs.size()); ++i) {
      if (!ctx.node.inputs[i].empty() && ctx.input_type(i).dtype != DType::float32) {
        return unsupported("FusedConv: oneDNN takes float32 inputs only");
      }
    }
    return Status::OK();
  }

  bool has_reshape() const override { return true; }
  uint32_t packed_inputs() const override { return 1u << 1; }

  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    if (shapes.size() < 2 || shapes[0].rank() != 4) return invalid_argument("layout nhwc takes X of rank 4");
    if (shapes[1] != plain_w_) {
      return invalid_argument("W of shape ", shapes[1].to_string(), " (packed at load as ", plain_w_.to_string(), ")");
    }
    const Shape& x = shapes[0];
    auto state = std::make_shared<DnnlConvState>();
    ORCHARD_ASSIGN_OR_RETURN(state->g,
                             reference::conv_geometry(node_, Shape{x[0], x[3], x[1], x[2]}, Shape{M_, cg_, kh_, kw_}));
    return std::shared_ptr<const runtime::KernelState>(std::move(state));
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    if (x->dtype() != DType::float32) return invalid_argument("X must be float32, got ", x->description());
    const DnnlConvState* state = ctx.state<DnnlConvState>();
    if (state == nullptr) return internal_error("run without reshape");
    const ConvGeom& g = state->g;
    if (pointwise_ && g.out[0] * g.out[1] <= kFewPixels) return run_pointwise_nhwc(ctx, pointwise_weights(), act_);
    float* bias = nullptr;
    if (has_bias_) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(2));
      if (b->dtype() != DType::float32) return invalid_argument("B must be float32, got ", b->description());
      if (b->numel() != g.M) return invalid_argument("B has ", b->numel(), " values for ", g.M, " output channels");
      bias = const_cast<float*>(b->data<float>());  // oneDNN's memory takes a non-const handle; it only reads it
    }
    const Shape out{g.N, g.out[0], g.out[1], g.M};
    const float* z = nullptr;
    if (has_z_) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* zt, ctx.input_tensor(3));
      if (zt->dtype() != DType::float32) return invalid_argument("Z must be float32, got ", zt->description());
      if (zt->shape() != out) {
        return invalid_argument("Z of shape ", zt->shape().to_string(), " must have the output's shape ", out.to_string());
      }
      z = zt->data<float>();
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::float32, out));
    if (y.numel() == 0) return Status::OK();
    ORCHARD_ASSIGN_OR_RETURN(std::shared_ptr<const Plan> plan, plan_for(*state, ctx.pool().size()));
    const int64_t in_row = g.in[1] * g.C, out_row = g.out[1] * g.M;
    const int64_t in_image = g.in[0] * in_row, out_image = g.out[0] * out_row;
    float* px = const_cast<float*>(x->data<float>());
    float* py = y.data<float>();
    const bool act_inside = activation_inside();
    std::vector<std::string> failed(plan->tasks.size());
    ctx.pool().parallel_for(static_cast<int64_t>(plan->tasks.size()), 1, [&](int64_t t0, int64_t t1) {
      SingleThreaded one;
      thread_local std::vector<unsigned char> scratch;
      thread_local dnnl::stream stream(cpu_engine());  // one per thread: creating one per call costs more than small convolutions
      for (int64_t t = t0; t < t1; ++t) {
        const Plan::Task& task = plan->tasks[static_cast<size_t>(t)];
        const Primitive& p = plan->primitives[task.primitive];
        const int64_t y_off = task.n * out_image + task.band.o0 * out_row;
        const int64_t y_len = (task.band.o1 - task.band.o0) * out_row;
        float* yb = py + y_off;
        if (z != nullptr && z + y_off != yb) std::memcpy(yb, z + y_off, static_cast<size_t>(y_len) * sizeof(float));
        if (scratch.size() < p.scratch.get_size()) scratch.resize(p.scratch.get_size());
        std::unordered_map<int, dnnl::memory> args{
            {DNNL_ARG_SRC, dnnl::memory(p.src, cpu_engine(), px + task.n * in_image + task.band.in0 * in_row)},
            {DNNL_ARG_WEIGHTS, p.weights},
            {DNNL_ARG_DST, dnnl::memory(p.dst, cpu_engine(), yb)},
            {DNNL_ARG_SCRATCHPAD, dnnl::memory(p.scratch, cpu_engine(), scratch.data())}};
        if (bias != nullptr) args.emplace(DNNL_ARG_BIAS, dnnl::memory({{g.M}, dt::f32, tag::x}, cpu_engine(), bias));
        try {
          p.conv.execute(stream, args);
          stream.wait();
        } catch (const dnnl::error& e) {
          failed[static_cast<size_t>(t)] = e.what();
          continue;
        }
        if (!act_inside) apply_activation_vec(act_, yb, y_len);
      }
    });
    for (const std::string& f : failed) {
      if (!f.empty()) return internal_error("oneDNN convolution failed: ", f);
    }
    return Status::OK();
  }

 private:
  // True when oneDNN applies the activation as a post-op (those it computes exactly: Relu, Clip, LeakyRelu).
  bool activation_inside() const {
    return act_.kind == Activation::none || act_.kind == Activation::relu || act_.kind == Activation::clip ||
           act_.kind == Activation::leaky_relu;
  }

  // W as the graph holds it, [M, kH, kW, C/group], in oneDNN's terms.
  dnnl::memory::desc plain_weights_desc() const {
    if (group_ == 1) return {{M_, cg_, kh_, kw_}, dt::f32, tag::ohwi};
    return {{group_, M_ / group_, cg_, kh_, kw_}, dt::f32, tag::gohwi};
  }

  // The primitive descriptor of one band of one image (weights in the format oneDNN prefers), or none when
  // oneDNN has no implementation.
  std::optional<dnnl::convolution_forward::primitive_desc> primitive_desc(const ConvGeom& g, const Band& b) const {
    const dnnl::memory::desc src({1, g.C, b.ih, g.in[1]}, dt::f32, tag::nhwc);
    const dnnl::memory::desc dst({1, g.M, b.o1 - b.o0, g.out[1]}, dt::f32, tag::nhwc);
    const dnnl::memory::desc wei = group_ == 1 ? dnnl::memory::desc({M_, cg_, kh_, kw_}, dt::f32, tag::any)
                                               : dnnl::memory::desc({group_, M_ / group_, cg_, kh_, kw_}, dt::f32, tag::any);
    const dnnl::memory::dims strides{g.stride[0], g.stride[1]}, dilation{g.dilation[0] - 1, g.dilation[1] - 1};
    const dnnl::memory::dims pad_l{b.pad_top, g.pad_begin[1]}, pad_r{b.pad_bottom, g.pad_end[1]};
    dnnl::post_ops ops;
    if (has_z_) ops.append_sum(1.0f);
    if (act_.kind == Activation::relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    if (act_.kind == Activation::leaky_relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, act_.p0, 0.0f);
    if (act_.kind == Activation::clip) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, act_.p0, act_.p1);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const auto kind = dnnl::prop_kind::forward_inference;
    const auto algo = dnnl::algorithm::convolution_direct;
    try {
      if (has_bias_) {
        const dnnl::memory::desc bia({g.M}, dt::f32, tag::x);
        return dnnl::convolution_forward::primitive_desc({kind, algo, src, wei, bia, dst, strides, dilation, pad_l, pad_r},
                                                         attr, cpu_engine());
      }
      return dnnl::convolution_forward::primitive_desc({kind, algo, src, wei, dst, strides, dilation, pad_l, pad_r}, attr,
                                                       cpu_engine());
    } catch (const dnnl::error&) {
      return std::nullopt;
    }
  }

  // Returns the plan of runs on `threads` threads, made on first use.
  Result<std::shared_ptr<const Plan>> plan_for(const DnnlConvState& state, int threads) const {
    std::lock_guard<std::mutex> lock(state.mu);
    if (auto it = state.plans.find(threads); it != state.plans.end()) return it->second;
    const ConvGeom& g = state.g;
    SingleThreaded one;
    auto plan = std::make_shared<Plan>();
    std::map<std::array<int64_t, 4>, size_t> by_geometry;  // (ih, pad top, pad bottom, rows) → primitive
    const std::vector<Band> bands = image_bands(g, threads);
    std::vector<size_t> primitive_of(bands.size());
    for (size_t i = 0; i < bands.size(); ++i) {
      const Band& b = bands[i];
      auto [it, fresh] = by_geometry.emplace(std::array<int64_t, 4>{b.ih, b.pad_top, b.pad_bottom, b.o1 - b.o0},
                                             plan->primitives.size());
      primitive_of[i] = it->second;
      if (!fresh) continue;
      auto pd = primitive_desc(g, b);
      if (!pd) return internal_error("oneDNN has no convolution for ", node_.name, " with input rows ", b.ih);
      Primitive p{dnnl::convolution_forward(*pd), pd->src_desc(), pd->dst_desc(), pd->scratchpad_desc(), {}};
      p.weights = weights_for(pd->weights_desc());
      plan->primitives.push_back(std::move(p));
    }
    for (int64_t n = 0; n < g.N; ++n) {
      for (size_t i = 0; i < bands.size(); ++i) plan->tasks.push_back({n, bands[i], primitive_of[i]});
    }
    state.plans.emplace(threads, plan);
    return std::shared_ptr<const Plan>(std::move(plan));
  }

  // The weights packed for the GEMM of run_pointwise_nhwc, made from the reordered copy on first use (kept).
  const PackedMatrix& pointwise_weights() const {
    std::lock_guard<std::mutex> lock(weights_mu_);
    if (!gemm_weights_) {
      SingleThreaded one;
      const dnnl::memory plain = reordered(weights_.front(), plain_weights_desc());  // [M, 1, 1, C]
      gemm_weights_ = pack_pointwise_weights(M_, cg_, static_cast<const float*>(plain.get_data_handle()));
    }
    return *gemm_weights_;
  }

  // Returns the weights in the format `want`: the copy made at create, or a reordered copy of it (kept).
  dnnl::memory weights_for(const dnnl::memory::desc& want) const {
    std::lock_guard<std::mutex> lock(weights_mu_);
    for (const dnnl::memory& w : weights_) {
      if (w.get_desc() == want) return w;
    }
    weights_.push_back(reordered(weights_.front(), want));
    return weights_.back();
  }

  const graph::Node& node_;
  ActivationSpec act_;
  int64_t group_;
  bool has_bias_, has_z_;
  int64_t M_ = 0, kh_ = 0, kw_ = 0, cg_ = 0;
  Shape plain_w_;
  mutable std::mutex weights_mu_;
  mutable std::vector<dnnl::memory> weights_;  // [0]: reordered at create; others: formats bands asked for
  bool pointwise_ = false;                      // is_pointwise_nhwc
  mutable std::shared_ptr<const PackedMatrix> gemm_weights_;  // pointwise_weights(), made on first use
};

constexpr int kPriority = 20;  // above conv_f32.cpp's variants (which decline nhwc anyway)

constexpr KernelDef kVariants[] = {
    {"com.orchard", "FusedConv", 1, 1, ConvDnnl::create, {DType::float32}, 0, kCpuAvx2, kPriority},
};

}  // namespace

std::span<const KernelDef> dnnl_conv_variants() { return kVariants; }

}  // namespace orchard::cpu::opt
