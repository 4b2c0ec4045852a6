// The reference kernel families; each returns its table of registrations (one file per family).
// kernel_table.cpp lists them all.
#pragma once

#include <span>

#include "backends/cpu/kernel_registry.hpp"

namespace orchard::cpu::reference {

std::span<const KernelDef> elementwise_kernels();    // elementwise.cpp: arithmetic, math functions, logic, comparison
std::span<const KernelDef> activation_kernels();     // activation.cpp: Relu, Sigmoid, Elu, Selu, PRelu, ...
std::span<const KernelDef> cast_kernels();           // cast.cpp: Cast, CastLike
std::span<const KernelDef> reduction_kernels();      // reduction.cpp: Reduce*, ArgMax/ArgMin, CumSum, TopK
std::span<const KernelDef> normalization_kernels();  // normalization.cpp: BatchNorm, InstanceNorm, LayerNorm, LRN, ...
std::span<const KernelDef> softmax_kernels();        // softmax.cpp: Softmax, LogSoftmax, Hardmax, losses
std::span<const KernelDef> matmul_kernels();         // matmul.cpp: MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul
std::span<const KernelDef> conv_kernels();           // conv.cpp: Conv, ConvTranspose, ConvInteger, QLinearConv
std::span<const KernelDef> pool_kernels();           // pool.cpp: Average/Max/Lp/Global pools, MaxUnpool
std::span<const KernelDef> quantize_kernels();       // quantize.cpp: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear
std::span<const KernelDef> shape_kernels();          // shape.cpp: Reshape, Transpose, Expand, Tile, Shape, Range, ...
std::span<const KernelDef> index_kernels();          // index.cpp: Gather*, Scatter*, Slice, Concat, Split, Pad, ...
std::span<const KernelDef> image_kernels();          // image.cpp: Resize, Upsample, GridSample, RoiAlign, NMS, Det
std::span<const KernelDef> control_flow_kernels();   // control_flow.cpp: If, Loop, Scan
std::span<const KernelDef> sequence_kernels();       // sequence.cpp: Sequence*, Optional*
std::span<const KernelDef> rnn_kernels();            // rnn.cpp: RNN, GRU, LSTM
std::span<const KernelDef> signal_kernels();         // signal.cpp: DFT, STFT, window functions, MelWeightMatrix
std::span<const KernelDef> string_kernels();         // string.cpp: StringNormalizer, TfIdfVectorizer
std::span<const KernelDef> training_kernels();       // training.cpp: Adam, Adagrad, Momentum (ai.onnx.preview.training)
std::span<const KernelDef> random_kernels();         // random.cpp: RandomUniform/Normal(Like), Bernoulli, Multinomial, Dropout
std::span<const KernelDef> fused_kernels();          // fused.cpp: FusedConv, FusedMatMul (com.orchard, docs/fused_ops.md)
std::span<const KernelDef> gelu_kernels();           // gelu.cpp: com.orchard Gelu (docs/fused_ops.md)
std::span<const KernelDef> attention_kernels();      // attention.cpp: com.orchard FusedAttention (docs/fused_ops.md)

}  // namespace orchard::cpu::reference
