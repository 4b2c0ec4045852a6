// CUDA Conv (2-D NCHW, FusedConv also NHWC; 1-D NCW as height 1; groups, pads, strides, dilations, bias) through cuDNN 9's
// convolution API. The algorithm (heuristics, or timed by cudnnFind on request) and workspace size are chosen once
// per input shape in reshape() and cached by the executor.
// float32 runs with FMA math only (no TF32); float16 and bfloat16 may use tensor cores (float32 accumulation).
// bfloat16 adds its bias, residual and activation with Orchard's epilogue kernel, never inside cuDNN
// (cudnnAddTensor, cudnnConvolutionBiasActivationForward), whose bfloat16 support the legacy API leaves unclear.
#include <cudnn.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/cuda/cuda_ops.hpp"

namespace orchard::cuda {

namespace {

Status dnn_error(cudnnStatus_t st, const char* call) {
  return unavailable("[cuda] ", call, ": ", cudnnGetErrorString(st), " (cuDNN status ", static_cast<int>(st), ")");
}

#define ORCHARD_CUDNN_CALL(call)                                                   \
  do {                                                                             \
    const cudnnStatus_t orchard_dnn_st_ = (call);                                  \
    if (orchard_dnn_st_ != CUDNN_STATUS_SUCCESS) return dnn_error(orchard_dnn_st_, #call); \
  } while (0)

// cuDNN handles, shared by all runs: taken for one call on one stream, then returned.
class DnnHandles {
 public:
  ~DnnHandles() {
    for (cudnnHandle_t h : free_) cudnnDestroy(h);
  }
  Result<cudnnHandle_t> acquire(cudaStream_t stream) {
    cudnnHandle_t h = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        h = free_.back();
        free_.pop_back();
      }
    }
    if (!h) ORCHARD_CUDNN_CALL(cudnnCreate(&h));
    if (cudnnStatus_t st = cudnnSetStream(h, stream); st != CUDNN_STATUS_SUCCESS) {
      release(h);
      return dnn_error(st, "cudnnSetStream");
    }
    return h;
  }
  void release(cudnnHandle_t h) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(h);
  }

 private:
  std::mutex mu_;
  std::vector<cudnnHandle_t> free_;
};

DnnHandles& handles() {
  static DnnHandles* h = new DnnHandles();  // never destroyed: handles may outlive static teardown order
  return *h;
}

// Returns a handle to the pool when it goes out of scope.
class HandleLease {
 public:
  explicit HandleLease(cudnnHandle_t h) : h_(h) {}
  ~HandleLease() { handles().release(h_); }
  HandleLease(const HandleLease&) = delete;
  HandleLease& operator=(const HandleLease&) = delete;

 private:
  cudnnHandle_t h_;
};

// Workspace one timed convolution algorithm may take (one needing more is passed over).
constexpr size_t kMaxWorkspace = size_t{256} << 20;

// Returns whether FusedConv with a Relu or no activation runs as one cudnnConvolutionBiasActivationForward call
// (bias, residual and activation inside cuDNN): for the nhwc layout by default, for nchw only when
// ORCHARD_CUDNN_FUSED=1 asks (=0 turns it off for both; read once). Measured on an H100, fp16: in NCHW it was slower
// than the convolution plus Orchard's epilogue kernel (resnet50 batch 32: 3.7 vs 2.99 ms, session 9), cuDNN running
// it on its older engines; in NHWC faster (resnet50 batch 1 / 32: 0.400 / 1.608 ms against 0.583 / 2.147,
// mobilenet_v2 0.505 / 1.105 against 0.554 / 1.195; bench/RESULTS.md session 11).
bool fused_call(bool nhwc) {
  static const int forced = [] {
    const char* e = std::getenv("ORCHARD_CUDNN_FUSED");
    return e == nullptr ? -1 : std::string(e) == "1" ? 1 : 0;
  }();
  return forced < 0 ? nhwc : forced == 1;
}

// Returns whether algorithms are chosen by timing them (cudnnFind) because ORCHARD_CUDNN_FIND=1 asks for it (read
// once). Off by default: on an H100 the timed choice was no faster in graph replays than the heuristics' (resnet50
// fp16 batch 32: 8.96 vs 8.61 ms; bench/RESULTS.md, fourth CUDA session).
bool timed_choice() {
  static const bool on = [] {
    const char* e = std::getenv("ORCHARD_CUDNN_FIND");
    return e && std::string(e) == "1";
  }();
  return on;
}

struct ConvAttrs {
  std::vector<int64_t> pads, strides, dilations;  // in 2-D form (a 1-D convolution's lifted to height 1)
  int64_t group = 1;
  std::string auto_pad;
  bool one_d = false;    // the attributes were those of a 1-D convolution
  bool two_d = false;    // the attributes were those of a 2-D convolution
  bool nhwc = false;     // FusedConv's layout nhwc: X, Z, Y [N, H, W, C], W [M, kH, kW, C/group]
};

// Descriptors and the chosen algorithm for one input shape.
class ConvState final : public runtime::KernelState {
 public:
  ~ConvState() override {
    if (x_) cudnnDestroyTensorDescriptor(x_);
    if (y_) cudnnDestroyTensorDescriptor(y_);
    if (b_) cudnnDestroyTensorDescriptor(b_);
    if (w_) cudnnDestroyFilterDescriptor(w_);
    if (conv_) cudnnDestroyConvolutionDescriptor(conv_);
    if (act_) cudnnDestroyActivationDescriptor(act_);
  }
  cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, b_ = nullptr;
  cudnnFilterDescriptor_t w_ = nullptr;
  cudnnConvolutionDescriptor_t conv_ = nullptr;
  cudnnActivationDescriptor_t act_ = nullptr;  // set when the run is one fused cuDNN call (fused_call)
  cudnnConvolutionFwdAlgo_t algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
  size_t workspace = 0;
  Shape out;
  int64_t channels = 0;  // the output's channels
};

// Conv, and FusedConv when `fused` is set: the convolution, then bias, Z and activation in one epilogue pass.
class ConvKernel final : public runtime::OpKernel {
 public:
  ConvKernel(ConvAttrs a, DType dtype, std::optional<FusedEpilogue> fused)
      : a_(std::move(a)), dtype_(dtype), fused_(fused) {}
  bool has_reshape() const override { return true; }

  Result<std::shared_ptr<const runtime::KernelState>> reshape(std::span<const Shape> shapes) const override {
    // A 1-D convolution (NCW input, OIW weights) runs as a 2-D one of height 1.
    const bool one_d = !a_.nhwc && shapes.size() >= 2 && shapes[0].rank() == 3 && shapes[1].rank() == 3;
    if (shapes.size() < 2 || !(one_d || (shapes[0].rank() == 4 && shapes[1].rank() == 4)) || (a_.one_d && !one_d) ||
        (a_.two_d && one_d)) {
      return unsupported("[Conv] the CUDA kernel takes 1-D and 2-D convolutions (NCW/NCHW input, OIW/OIHW weights)");
    }
    // Logical NCHW / OIHW dims (cuDNN takes them so whatever the memory format).
    auto nchw = [](const Shape& s) { return Shape{s[0], s[3], s[1], s[2]}; };
    const Shape x = one_d ? Shape{shapes[0][0], shapes[0][1], 1, shapes[0][2]} : a_.nhwc ? nchw(shapes[0]) : shapes[0];
    const Shape w = one_d ? Shape{shapes[1][0], shapes[1][1], 1, shapes[1][2]} : a_.nhwc ? nchw(shapes[1]) : shapes[1];
    if (a_.group < 1 || x[1] != w[1] * a_.group || w[0] % a_.group != 0) {
      return invalid_argument("[Conv] input ", x.to_string(), " and weights ", w.to_string(), " do not match group ", a_.group);
    }
    int pad[4] = {0, 0, 0, 0}, stride[2] = {1, 1}, dil[2] = {1, 1};
    for (int i = 0; i < 2; ++i) {
      if (a_.strides.size() == 2) stride[i] = static_cast<int>(a_.strides[static_cast<size_t>(i)]);
      if (a_.dilations.size() == 2) dil[i] = static_cast<int>(a_.dilations[static_cast<size_t>(i)]);
    }
    if (a_.auto_pad == "SAME_UPPER" || a_.auto_pad == "SAME_LOWER") {
      for (int i = 0; i < 2; ++i) {
        const int64_t in = x[2 + static_cast<size_t>(i)], k = (w[2 + static_cast<size_t>(i)] - 1) * dil[i] + 1;
        const int64_t out = (in + stride[i] - 1) / stride[i];
        const int64_t total = std::max<int64_t>(0, (out - 1) * stride[i] + k - in);
        const int64_t small = total / 2, big = total - small;
        pad[i] = static_cast<int>(a_.auto_pad == "SAME_UPPER" ? small : big);
        pad[i + 2] = static_cast<int>(a_.auto_pad == "SAME_UPPER" ? big : small);
      }
    } else if (a_.pads.size() == 4) {
      for (int i = 0; i < 4; ++i) pad[i] = static_cast<int>(a_.pads[static_cast<size_t>(i)]);
    }
    if (pad[0] != pad[2] || pad[1] != pad[3]) {
      return unsupported("[Conv] asymmetric pads are not supported by the CUDA kernel");
    }
    auto st = std::make_shared<ConvState>();
    const bool narrow = dtype_ == DType::float16 || dtype_ == DType::bfloat16;  // 16-bit: tensor cores allowed
    const cudnnDataType_t dt = dtype_ == DType::float16    ? CUDNN_DATA_HALF
                               : dtype_ == DType::bfloat16 ? CUDNN_DATA_BFLOAT16
                                                           : CUDNN_DATA_FLOAT;
    ORCHARD_CUDNN_CALL(cudnnCreateTensorDescriptor(&st->x_));
    ORCHARD_CUDNN_CALL(cudnnCreateTensorDescriptor(&st->y_));
    ORCHARD_CUDNN_CALL(cudnnCreateTensorDescriptor(&st->b_));
    ORCHARD_CUDNN_CALL(cudnnCreateFilterDescriptor(&st->w_));
    ORCHARD_CUDNN_CALL(cudnnCreateConvolutionDescriptor(&st->conv_));
    auto i32 = [](int64_t v) { return static_cast<int>(v); };
    const cudnnTensorFormat_t fmt = a_.nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
    ORCHARD_CUDNN_CALL(cudnnSetTensor4dDescriptor(st->x_, fmt, dt, i32(x[0]), i32(x[1]), i32(x[2]), i32(x[3])));
    ORCHARD_CUDNN_CALL(cudnnSetFilter4dDescriptor(st->w_, dt, fmt, i32(w[0]), i32(w[1]), i32(w[2]), i32(w[3])));
    ORCHARD_CUDNN_CALL(cudnnSetConvolution2dDescriptor(st->conv_, pad[0], pad[1], stride[0], stride[1], dil[0], dil[1],
                                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    ORCHARD_CUDNN_CALL(cudnnSetConvolutionGroupCount(st->conv_, i32(a_.group)));
    ORCHARD_CUDNN_CALL(cudnnSetConvolutionMathType(st->conv_, narrow ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
    int n = 0, c = 0, h = 0, wd = 0;
    ORCHARD_CUDNN_CALL(cudnnGetConvolution2dForwardOutputDim(st->conv_, st->x_, st->w_, &n, &c, &h, &wd));
    if (h <= 0 || wd <= 0) return invalid_argument("[Conv] input ", x.to_string(), " is smaller than the kernel ", w.to_string());
    st->out = one_d ? Shape{n, c, wd} : a_.nhwc ? Shape{n, h, wd, c} : Shape{n, c, h, wd};
    st->channels = c;
    ORCHARD_CUDNN_CALL(cudnnSetTensor4dDescriptor(st->y_, fmt, dt, n, c, h, wd));
    ORCHARD_CUDNN_CALL(cudnnSetTensor4dDescriptor(st->b_, CUDNN_TENSOR_NCHW, dt, 1, c, 1, 1));
    ORCHARD_ASSIGN_OR_RETURN(cudnnHandle_t hd, handles().acquire(current_cuda_stream()));
    HandleLease lease(hd);
    // The heuristics' best algorithm that reports success, or with ORCHARD_CUDNN_FIND=1 the fastest cuDNN measures
    // on this shape (once per shape: the executor caches the state; never inside a graph capture, where timing
    // cannot allocate); float32 never takes TF32.
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int found = 0;
    const bool capturing = current_stream() != nullptr && current_stream()->capturing();  // timing allocates
    const bool timed = timed_choice() && !capturing;
    if (timed) {
      ORCHARD_CUDNN_CALL(cudnnFindConvolutionForwardAlgorithm(hd, st->x_, st->w_, st->conv_, st->y_,
                                                              CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
    } else {
      ORCHARD_CUDNN_CALL(cudnnGetConvolutionForwardAlgorithm_v7(hd, st->x_, st->w_, st->conv_, st->y_,
                                                                CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &found, perf));
    }
    bool chosen = false;
    for (int i = 0; i < found && !chosen; ++i) {
      if (perf[i].status != CUDNN_STATUS_SUCCESS || (timed && perf[i].memory > kMaxWorkspace)) continue;
      const bool tensor_ops = perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
      if (dtype_ == DType::float32 && tensor_ops) continue;  // no TF32 for float32
      st->algo = perf[i].algo;
      // A timed algorithm runs with the math type it was timed with.
      if (timed && narrow) ORCHARD_CUDNN_CALL(cudnnSetConvolutionMathType(st->conv_, perf[i].mathType));
      chosen = true;
    }
    if (!chosen) return unsupported("[Conv] cuDNN has no algorithm for ", x.to_string(), " * ", w.to_string());
    if (fused_ && dtype_ != DType::bfloat16 && fused_call(a_.nhwc) &&
        (fused_->act == UnaryOp::relu || fused_->act == UnaryOp::identity)) {
      // cuDNN's fused call takes Relu only with the implicit precomputed GEMM.
      if (fused_->act == UnaryOp::relu) st->algo = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
      ORCHARD_CUDNN_CALL(cudnnCreateActivationDescriptor(&st->act_));
      ORCHARD_CUDNN_CALL(cudnnSetActivationDescriptor(
          st->act_, fused_->act == UnaryOp::relu ? CUDNN_ACTIVATION_RELU : CUDNN_ACTIVATION_IDENTITY, CUDNN_NOT_PROPAGATE_NAN, 0.0));
    }
    ORCHARD_CUDNN_CALL(cudnnGetConvolutionForwardWorkspaceSize(hd, st->x_, st->w_, st->conv_, st->y_, st->algo, &st->workspace));
    return std::shared_ptr<const runtime::KernelState>(std::move(st));
  }

  Status run(runtime::OpContext& ctx) const override {
    const ConvState* st = ctx.state<ConvState>();
    if (!st) return internal_error("[Conv] run without reshape");
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, ctx.input_tensor(1));
    if (x->dtype() != dtype_ || w->dtype() != dtype_) {
      return invalid_argument("[Conv] dtypes ", x->description(), ", ", w->description(), " (kernel made for ",
                              dtype_name(dtype_), ")");
    }
    const Tensor* b = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    if (b && (b->numel() != st->channels || b->dtype() != dtype_)) {
      return invalid_argument("[Conv] bias ", b->description(), " for ", st->channels, " output channels");
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, dtype_, st->out));
    if (y.numel() == 0) return Status::OK();
    Tensor ws;
    if (st->workspace) {
      ORCHARD_ASSIGN_OR_RETURN(ws, Tensor::create(DType::uint8, Shape{static_cast<int64_t>(st->workspace)}, ctx.allocator()));
    }
    ORCHARD_ASSIGN_OR_RETURN(cudnnHandle_t hd, handles().acquire(current_cuda_stream()));
    HandleLease lease(hd);
    const float one = 1.f, zero = 0.f;
    if (st->act_ && b) {
      const Tensor* z = ctx.has_input(3) ? &ctx.input(3) : nullptr;
      if (z && (z->dtype() != dtype_ || z->shape() != y.shape())) {
        return invalid_argument("[FusedConv] Z ", z->description(), " must have the output's shape ", y.shape().to_string());
      }
      ORCHARD_CUDNN_CALL(cudnnConvolutionBiasActivationForward(
          hd, &one, st->x_, x->raw_data(), st->w_, w->raw_data(), st->conv_, st->algo,
          st->workspace ? ws.raw_data() : nullptr, st->workspace, z ? &one : &zero, st->y_,
          z ? z->raw_data() : y.raw_data(), st->b_, b->raw_data(), st->act_, st->y_, y.raw_data()));
      return Status::OK();
    }
    ORCHARD_CUDNN_CALL(cudnnConvolutionForward(hd, &one, st->x_, x->raw_data(), st->w_, w->raw_data(), st->conv_, st->algo,
                                               st->workspace ? ws.raw_data() : nullptr, st->workspace, &zero, st->y_,
                                               y.raw_data()));
    // The epilogue's channel of element i is (i / inner) % channels: inner 1 when channels are innermost.
    const int64_t inner = a_.nhwc ? 1 : y.numel() / (st->out[0] * st->channels);
    if (fused_) return apply_epilogue(ctx, *fused_, y, st->channels, inner);
    if (b && dtype_ == DType::bfloat16) return apply_epilogue(ctx, FusedEpilogue{}, y, st->channels, inner);
    if (b) ORCHARD_CUDNN_CALL(cudnnAddTensor(hd, &one, st->b_, b->raw_data(), &one, st->y_, y.raw_data()));
    return Status::OK();
  }

 private:
  ConvAttrs a_;
  DType dtype_;
  std::optional<FusedEpilogue> fused_;
};

}  // namespace

KernelResult create_conv(const runtime::KernelCreateContext& ctx) {
  const auto& n = ctx.node;
  const DType dt = ctx.input_type(0).dtype;
  if (dt != DType::float32 && dt != DType::float16 && dt != DType::bfloat16) {
    return unsupported("[cuda] Conv needs a declared float32/float16/bfloat16 input");
  }
  ConvAttrs a;
  a.pads = n.attr_ints("pads");
  a.strides = n.attr_ints("strides");
  a.dilations = n.attr_ints("dilations");
  a.group = n.attr_int("group", 1);
  a.auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (a.auto_pad != "NOTSET" && a.auto_pad != "VALID" && a.auto_pad != "SAME_UPPER" && a.auto_pad != "SAME_LOWER") {
    return invalid_argument("[Conv] auto_pad '", a.auto_pad, "'");
  }
  if (a.auto_pad == "VALID") a.pads.clear();
  a.two_d = a.pads.size() == 4 || a.strides.size() == 2 || a.dilations.size() == 2;
  // 1-D attributes are lifted to 2-D with a unit height.
  if ((a.pads.empty() || a.pads.size() == 2) && (a.strides.empty() || a.strides.size() == 1) &&
      (a.dilations.empty() || a.dilations.size() == 1) && !(a.pads.empty() && a.strides.empty() && a.dilations.empty())) {
    a.one_d = true;
    if (!a.pads.empty()) a.pads = {0, a.pads[0], 0, a.pads[1]};
    if (!a.strides.empty()) a.strides = {1, a.strides[0]};
    if (!a.dilations.empty()) a.dilations = {1, a.dilations[0]};
  }
  // 1-D and 2-D only: other attribute lengths (3-D or malformed convolutions) go to the CPU, which checks them.
  if ((!a.pads.empty() && a.pads.size() != 4) || (!a.strides.empty() && a.strides.size() != 2) ||
      (!a.dilations.empty() && a.dilations.size() != 2)) {
    return unsupported("[cuda] Conv attributes are not those of a 1-D or 2-D convolution");
  }
  for (const auto* v : {&a.pads, &a.strides, &a.dilations}) {
    for (int64_t e : *v) {
      if (e < 0 || (v != &a.pads && e == 0)) return invalid_argument("[Conv] attribute value ", e, " out of range");
    }
  }
  std::optional<FusedEpilogue> fused;
  if (n.op_type == "FusedConv") {
    ORCHARD_ASSIGN_OR_RETURN(fused, fused_epilogue(n));
    const std::string layout = n.attr_string("layout", "nchw");
    if (layout != "nchw" && layout != "nhwc") return invalid_argument("[FusedConv] layout '", layout, "'");
    a.nhwc = layout == "nhwc";
    if (a.nhwc && a.one_d) return unsupported("[cuda] FusedConv nhwc of a 1-D convolution");
  }
  return std::unique_ptr<runtime::OpKernel>(new ConvKernel(std::move(a), dt, fused));
}

}  // namespace orchard::cuda
