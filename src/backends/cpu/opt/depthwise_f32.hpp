// The direct depthwise convolution kernels of the optimized Conv variants, one channel plane or a block of
// channels at a time, in vectors of the best ISA this CPU has (depthwise_f32_{avx512,avx2,portable}.cpp, chosen
// once by cpu_features()).
#pragma once

#include <cstdint>
#include <string_view>

#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {

// The geometry of one 2-D channel plane: input ih x iw, output oh x ow, kernel kh x kw, strides, dilations,
// leading pads.
struct DepthwisePlane {
  int64_t ih, iw, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw;
};

// The largest kernel (kh * kw taps) the depthwise kernel takes; larger ones go through im2col + GEMM.
inline constexpr int64_t kDepthwiseMaxTaps = 121;

struct DepthwiseKernel {
  std::string_view name;
  // Returns the floats of scratch `plane` needs for geometry g.
  int64_t (*scratch_floats)(const DepthwisePlane& g);
  // y [oh x ow] = bias + sum over taps of w[ky][kx] * x[oy*sh - ph + ky*dh][ox*sw - pw + kx*dw] (zero outside);
  // g.sw must be 1.
  void (*plane)(const DepthwisePlane& g, const float* x, const float* w, float bias, float* y, float* scratch);
  // Channels per call of `block` (the vector width).
  int block_width;
  // Returns the floats of scratch `block` needs for geometry g.
  int64_t (*block_scratch_floats)(const DepthwisePlane& g);
  // The same convolution for `lanes` <= block_width channels at once: channel l reads x + l * x_plane and the
  // kh * kw weights at w + l * kh * kw, adds bias[l] (bias may be null), then applies `ep` (may be null) with
  // channel l as its row l and the pixels as its columns (residual, Relu / Clip; bias and alpha unused), and
  // writes y + l * y_plane.
  void (*block)(const DepthwisePlane& g, int64_t lanes, const float* x, int64_t x_plane, const float* w,
                const float* bias, const TileEpilogue* ep, float* y, int64_t y_plane, float* scratch);
};

// Returns the kernel of the best ISA this CPU has (decided once; ORCHARD_CPU_FEATURES limits it).
const DepthwiseKernel& depthwise_kernel();

// The kernels of each ISA file (x86 ones only in x86-64 builds).
const DepthwiseKernel& depthwise_kernel_portable();
#if defined(__x86_64__)
const DepthwiseKernel& depthwise_kernel_avx2();
const DepthwiseKernel& depthwise_kernel_avx512();
#endif

}  // namespace orchard::cpu::opt
