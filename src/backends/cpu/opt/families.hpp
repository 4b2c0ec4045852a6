// The optimized variant families (priority > 0, beside the reference kernels); kernel_table.cpp lists them.
// Each variant declines (its create returns an error) what it does not handle, so the next variant or the
// reference kernel takes the node.
#pragma once

#include <memory>
#include <span>

#include "backends/cpu/kernel_registry.hpp"
#include "backends/cpu/opt/epilogue.hpp"
#include "backends/cpu/opt/gemm_f32.hpp"

namespace orchard::cpu::opt {

std::span<const KernelDef> matmul_variants();  // matmul_f32.cpp: MatMul, Gemm, FusedMatMul on the GEMM core
// conv_f32.cpp: Conv, FusedConv (1x1, im2col + GEMM, depthwise); FusedConv nhwc pointwise (a GEMM).
std::span<const KernelDef> conv_variants();
std::span<const KernelDef> attention_variants();  // attention_f32.cpp: FusedAttention by query-row blocks
// conv_dnnl.cpp (only where CMake found oneDNN: ORCHARD_HAVE_DNNL): FusedConv in the nhwc layout on oneDNN.
std::span<const KernelDef> dnnl_conv_variants();

// Pointwise convolutions in nhwc (conv_f32.cpp): a FusedConv nhwc node with a constant float32 W [M, 1, 1, C],
// group 1, stride 1 and no padding is a GEMM on the pixels, Y [P, M] = X [P, C] W^T. pack_pointwise_weights
// packs W [M, C] for it; run_pointwise_nhwc runs the node's inputs (X, W as packed, bias, Z) with activation act.
bool is_pointwise_nhwc(const KernelCreateContext& ctx);
std::shared_ptr<const PackedMatrix> pack_pointwise_weights(int64_t M, int64_t C, const float* w);
Status run_pointwise_nhwc(OpContext& ctx, const PackedMatrix& w, const ActivationSpec& act);

}  // namespace orchard::cpu::opt
