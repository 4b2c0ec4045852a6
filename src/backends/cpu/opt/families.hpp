// The optimized variant families (priority > 0, beside the reference kernels); kernel_table.cpp lists them.
// Each variant declines (its create returns an error) what it does not handle, so the next variant or the
// reference kernel takes the node.
#pragma once

#include <span>

#include "backends/cpu/kernel_registry.hpp"

namespace orchard::cpu::opt {

std::span<const KernelDef> matmul_variants();  // matmul_f32.cpp: MatMul, Gemm, FusedMatMul on the GEMM core
std::span<const KernelDef> conv_variants();    // conv_f32.cpp: Conv, FusedConv (1x1, im2col + GEMM, depthwise)
std::span<const KernelDef> attention_variants();
// conv_dnnl.cpp (only where CMake found oneDNN: ORCHARD_HAVE_DNNL): FusedConv in the nhwc layout on oneDNN.
std::span<const KernelDef> dnnl_conv_variants();  // attention_f32.cpp: FusedAttention by query-row blocks

}  // namespace orchard::cpu::opt
