// Linear quantization: QuantizeLinear, DequantizeLinear (per tensor, or per axis from opset 13) and
// DynamicQuantizeLinear. Rounding is half to even; results saturate to the 8-bit range.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Scale and zero point (as float) and how they map onto x: one value, or one per index of `axis` (blocks
// of `inner` elements repeating every `count * inner`).
struct QuantLayout {
  int64_t count = 1;  // 1 = per tensor
  int64_t inner = 1;
  std::vector<float> scale, zero;  // count values each (zero all 0 when the input is omitted)
  int64_t channel(int64_t i) const { return count == 1 ? 0 : (i / inner) % count; }
};

// Fills q.count and q.inner for a 1-D scale along the node's `axis` of x (opset 13+).
Status per_axis(const OpContext& ctx, const Tensor& x, const Tensor& scale, QuantLayout& q) {
  if (ctx.node().opset < 13) return invalid_argument("scale must be a scalar before opset 13, got ", scale.description());
  if (scale.rank() != 1) return invalid_argument("scale must be a scalar or 1-D, got ", scale.description());
  ORCHARD_ASSIGN_OR_RETURN(int64_t axis, normalize_axis(ctx.node().attr_int("axis", 1), static_cast<int64_t>(x.rank())));
  if (scale.numel() != x.dim(static_cast<size_t>(axis))) {
    return invalid_argument("scale has ", scale.numel(), " values, but axis ", axis, " of x ", x.shape().to_string(),
                            " has ", x.dim(static_cast<size_t>(axis)));
  }
  q.count = scale.numel();
  q.inner = dims_product(x.shape(), static_cast<size_t>(axis) + 1, x.rank());
  return Status::OK();
}

// Checks scale (float) and zero point against x and reads them.
Result<QuantLayout> quant_layout(const OpContext& ctx, const Tensor& x, const Tensor& scale, const Tensor* zero) {
  if (!dtype_is_float(scale.dtype())) return invalid_argument("scale must be a float tensor, got ", scale.description());
  QuantLayout q;
  if (zero != nullptr && zero->shape() != scale.shape()) {
    return invalid_argument("zero point ", zero->shape().to_string(), " and scale ", scale.shape().to_string(),
                            " must have the same shape");
  }
  if (scale.numel() != 1 || scale.rank() > 1) {
    ORCHARD_RETURN_IF_ERROR(per_axis(ctx, x, scale, q));
  }
  q.scale.resize(static_cast<size_t>(q.count));
  q.zero.assign(static_cast<size_t>(q.count), 0.0f);
  for (int64_t c = 0; c < q.count; ++c) {
    q.scale[static_cast<size_t>(c)] = static_cast<float>(element_as_double(scale, c));
    if (zero) q.zero[static_cast<size_t>(c)] = static_cast<float>(element_as_double(*zero, c));
  }
  return q;
}

template <class Q>
inline Q saturate_round(float v, float zero) {
  const float r = std::nearbyint(v) + zero;
  const float lo = static_cast<float>(std::numeric_limits<Q>::lowest());
  const float hi = static_cast<float>(std::numeric_limits<Q>::max());
  if (std::isnan(r)) return Q(0);
  return static_cast<Q>(std::min(hi, std::max(lo, r)));
}

Status quantize_linear(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* scale, ctx.input_tensor(1));
  const Tensor* zero = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  const DType out_type = zero ? zero->dtype() : DType::uint8;
  if (out_type != DType::uint8 && out_type != DType::int8) {
    return unsupported("QuantizeLinear: zero point type ", dtype_name(out_type), " is not supported");
  }
  ORCHARD_ASSIGN_OR_RETURN(const QuantLayout q, quant_layout(ctx, *x, *scale, zero));
  const std::vector<float>& s = q.scale;
  const std::vector<float>& z = q.zero;
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_type, x->shape()));
  return dispatch<kFloats | kSignedInts>(x->dtype(), "QuantizeLinear", [&](auto tag) -> Status {
    using T = decltype(tag);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, int32_t>) {
      return unsupported("QuantizeLinear: input type ", x->description(), " is not supported");
    } else {
      const T* in = x->data<T>();
      auto run = [&](auto qtag) {
        using Q = decltype(qtag);
        Q* out = y.data<Q>();
        ctx.pool().parallel_for(x->numel(), 1 << 14, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) {
            const size_t c = static_cast<size_t>(q.channel(i));
            out[i] = saturate_round<Q>(static_cast<float>(load(in[i])) / s[c], z[c]);
          }
        });
      };
      if (out_type == DType::uint8) run(uint8_t{});
      else run(int8_t{});
      return Status::OK();
    }
  });
}

Status dequantize_linear(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* scale, ctx.input_tensor(1));
  const Tensor* zero = ctx.has_input(2) ? &ctx.input(2) : nullptr;
  if (x->dtype() != DType::uint8 && x->dtype() != DType::int8 && x->dtype() != DType::int32) {
    return unsupported("DequantizeLinear: input type ", x->description(), " is not supported");
  }
  if (zero && zero->dtype() != x->dtype()) {
    return invalid_argument("zero point ", zero->description(), " must have the type of x ", x->description());
  }
  ORCHARD_ASSIGN_OR_RETURN(const QuantLayout q, quant_layout(ctx, *x, *scale, zero));
  const std::vector<float>& s = q.scale;
  const std::vector<float>& z = q.zero;
  // Output type follows the scale (float32 in opsets <= 17).
  const DType out_type = scale->dtype();
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, out_type, x->shape()));
  return dispatch<kFloats>(out_type, "DequantizeLinear", [&](auto tag) -> Status {
    using T = decltype(tag);
    T* out = y.data<T>();
    ctx.pool().parallel_for(x->numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const size_t c = static_cast<size_t>(q.channel(i));
        // int32 values minus the zero point can exceed float's exact range: subtract in double.
        const double v = element_as_double(*x, i) - static_cast<double>(z[c]);
        out[i] = store<T>(static_cast<float>(v) * s[c]);
      }
    });
    return Status::OK();
  });
}

Status dynamic_quantize_linear(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
  if (x->dtype() != DType::float32) return unsupported("DynamicQuantizeLinear: input type ", x->description(), " is not supported");
  const float* in = x->data<float>();
  float lo = 0, hi = 0;  // the range always includes 0
  for (int64_t i = 0; i < x->numel(); ++i) {
    lo = std::min(lo, in[i]);
    hi = std::max(hi, in[i]);
  }
  const float scale = (hi - lo) / 255.0f;
  const float zero = scale == 0.0f ? 0.0f : std::min(255.0f, std::max(0.0f, std::nearbyint((0.0f - lo) / scale)));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::uint8, x->shape()));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y_scale, ctx.make_output(1, DType::float32, Shape{}));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y_zero, ctx.make_output(2, DType::uint8, Shape{}));
  y_scale.data<float>()[0] = scale;
  y_zero.data<uint8_t>()[0] = static_cast<uint8_t>(zero);
  uint8_t* out = y.data<uint8_t>();
  for (int64_t i = 0; i < x->numel(); ++i) {
    out[i] = scale == 0.0f ? static_cast<uint8_t>(zero) : saturate_round<uint8_t>(in[i] / scale, zero);
  }
  return Status::OK();
}

constexpr KernelDef kKernels[] = {
    {"", "QuantizeLinear", 10, kVerifiedOpset, stateless<quantize_linear>},
    {"", "DequantizeLinear", 10, kVerifiedOpset, stateless<dequantize_linear>},
    {"", "DynamicQuantizeLinear", 11, kVerifiedOpset, stateless<dynamic_quantize_linear>},
};

}  // namespace

std::span<const KernelDef> quantize_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
