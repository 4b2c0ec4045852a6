// The float32 GEMM core of the optimized CPU kernels: C = epilogue(op(A) op(B)), with a register-tiled
// micro-kernel over packed panels and cache blocking (GotoBLAS order). The micro-kernel is chosen once per
// process by cpu_features(): gemm_f32_avx512.cpp, gemm_f32_avx2.cpp or the portable gemm_f32_portable.cpp
// (aarch64 NEON and everything else). A constant operand (weights) is packed once into a PackedMatrix.
// Threading: output blocks on the ThreadPool; products below a few MFLOP stay on the calling thread unless they
// stream over 1 MiB of packed operands (memory-bound: a batch-1 classifier).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "backends/cpu/opt/epilogue.hpp"
#include "orchard/thread_pool.hpp"

namespace orchard::cpu::opt {

// What is done to each finished output tile while it is in cache:
// C = act(alpha * op(A) op(B) + bias + residual_scale * residual), act by apply_activation_vec (vec_math.hpp).
struct GemmEpilogue {
  float alpha = 1;
  const float* bias = nullptr;  // M values (bias_per_row) or N values; null: none
  bool bias_per_row = false;
  const float* residual = nullptr;  // M x N, row stride ld_residual; null: none. Must not overlap C.
  int64_t ld_residual = 0;
  float residual_scale = 1;
  ActivationSpec act;
};

// The part of the epilogue a micro-kernel applies to its finished tile in registers, before its one store:
// v = alpha * acc + bias + residual_scale * residual, then Relu (max(v, 0), NaN to 0) or Clip (NaN kept).
struct TileEpilogue {
  float alpha = 1;
  const float* row_bias = nullptr;  // one value per tile row (m); null: none
  const float* col_bias = nullptr;  // one value per tile column (n); null: none
  const float* residual = nullptr;  // m x n, row stride ld_residual; null: none
  int64_t ld_residual = 0;
  float residual_scale = 1;
  enum class Clamp : unsigned char { none, relu, clip } clamp = Clamp::none;
  float lo = 0, hi = 0;  // Clip's bounds
};

// Returns a TileEpilogue holding act when act is none, Relu or Clip (then `taken` is true); otherwise one without
// a clamp, and `taken` false: the caller applies act afterwards.
TileEpilogue tile_epilogue_for(const ActivationSpec& act, bool& taken);

// The micro-kernel of one ISA: tile sizes and the kernel itself (internal to the GEMM files).
struct GemmMicroKernel {
  std::string_view name;  // "avx512", "avx2", "portable"
  int mr, nr;             // rows of A and columns of B per register tile
  // c[m x n] (row stride ldc) = finish((accumulate ? c : 0) + a_panel (kc x mr, k-major) * b_panel (kc x nr,
  // k-major)), finish being the TileEpilogue `ep`, or nothing when ep is null.
  void (*kernel)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int m, int n, bool accumulate,
                 const TileEpilogue* ep);
  // The same for a B panel streamed from memory (a packed constant): while the tile runs it may also prefetch
  // the next panel (b + kc * nr) into L2. Null: `kernel` serves.
  decltype(kernel) kernel_stream_b = nullptr;
  // The same for an A panel streamed from memory (packed constant A, B not): may prefetch a + kc * mr.
  decltype(kernel) kernel_stream_a = nullptr;
  // How a partial tile's cost scales: m rows and n columns cost ceil(m * row_units / mr) * ceil(n * col_units /
  // nr) of the row_units * col_units a full tile costs (1, 1: a partial tile costs a full one).
  int row_units = 1, col_units = 1;
};

// Returns parts + 1 increasing bounds (0, multiples of `tile`, extent) cutting [0, extent) into at most `parts`
// ranges of about equal cost, a tile of e elements costing ceil(e * units / tile) (thread blocks of gemm_f32).
std::vector<int64_t> gemm_split(int64_t extent, int64_t tile, int64_t units, int64_t parts);

// Copies `count` runs of `width` floats, run i from src + i * src_step to dst + i * dst_step (fixed-size copies
// for the panel widths 8, 16 and 32).
void copy_runs(const float* src, int64_t src_step, float* dst, int64_t dst_step, int64_t count, int64_t width);

// Returns the micro-kernel of the best ISA this CPU has (decided once; ORCHARD_CPU_FEATURES limits it).
const GemmMicroKernel& gemm_micro_kernel();

// A constant operand packed once for gemm_micro_kernel(): op(A) (M x K) in mr-row panels, or op(B) (K x N)
// in nr-column panels, per K block.
class PackedMatrix {
 public:
  enum class Side : unsigned char { a, b };
  PackedMatrix(Side side, int64_t rows, int64_t cols, int64_t padded, std::unique_ptr<float[]> data)
      : side_(side), rows_(rows), cols_(cols), padded_(padded), data_(std::move(data)) {}
  Side side() const { return side_; }
  // op(A) is rows x cols = M x K; op(B) is rows x cols = K x N.
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // M rounded up to mr (side a) or N rounded up to nr (side b).
  int64_t padded() const { return padded_; }
  const float* data() const { return data_.get(); }

 private:
  Side side_;
  int64_t rows_, cols_, padded_;
  std::unique_ptr<float[]> data_;
};

// Packs op(A) (M x K; A is K x M when trans) as the left operand.
std::shared_ptr<const PackedMatrix> gemm_pack_a(bool trans, int64_t M, int64_t K, const float* A, int64_t lda);
// Packs op(B) (K x N; B is N x K when trans) as the right operand.
std::shared_ptr<const PackedMatrix> gemm_pack_b(bool trans, int64_t K, int64_t N, const float* B, int64_t ldb);

// A right operand built block by block while the product runs (an implicit im2col), never stored whole.
class GemmPanelSource {
 public:
  virtual ~GemmPanelSource() = default;
  // Writes rows [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) as nr-column panels, each kc x nr k-major,
  // columns past N zero: the layout gemm_f32 packs B blocks into.
  virtual void pack(int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr, float* out) const = 0;
};

// One operand of gemm_f32: a packed matrix, a panel source (right operand only), or a row-major matrix
// (transposed when trans) with row stride ld.
struct GemmOperand {
  const float* data = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const PackedMatrix* packed = nullptr;     // when set, data/ld/trans are unused
  const GemmPanelSource* source = nullptr;  // when set (B only), data/ld/trans are unused
};

// C (M x N, row stride ldc) = epilogue(op(A) op(B)), op(A) M x K, op(B) K x N. Packed operands must have
// been packed with these sizes (A: M x K, B: K x N). `pool` may be null (single thread).
void gemm_f32(int64_t M, int64_t N, int64_t K, const GemmOperand& a, const GemmOperand& b, float* C, int64_t ldc,
              const GemmEpilogue& ep, ThreadPool* pool);

// The micro-kernels of each ISA file (x86 ones only in x86-64 builds).
const GemmMicroKernel& gemm_micro_kernel_portable();
#if defined(__x86_64__)
const GemmMicroKernel& gemm_micro_kernel_avx2();
const GemmMicroKernel& gemm_micro_kernel_avx512();
#endif

}  // namespace orchard::cpu::opt
