// The GEMM driver (baseline flags; the ISA-specific part is only the micro-kernel): packing, cache blocking,
// threading and the epilogue. Loop order per task (GotoBLAS): N blocks of NC, K blocks of KC (B block packed,
// L2/L3), M blocks of MC (A block packed, L2), then nr-column panels of B (L1) times mr-row panels of A.
#include "backends/cpu/opt/gemm_f32.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

#include "backends/cpu/opt/vec_math.hpp"
#include "core/cpu_features.hpp"
#include "core/logging.hpp"

namespace orchard::cpu::opt {

namespace {

// Block sizes, measured (bench/gemm_vs_openblas.cpp, bench/RESULTS.md) against alternatives such as KC 128..512.
constexpr int64_t KC = 384;   // K block: an mr-row panel of A (kc x mr) stays in L1, B panels stream from L2
constexpr int64_t MC = 96;    // M block (a multiple of every mr: 6, 8, 12): A block in L2
constexpr int64_t NC = 1536;  // N block (a multiple of every nr)
constexpr double kSerialFlops = 4e6;  // products below this stay on the calling thread,
constexpr double kParallelBytes = 1 << 20;  // unless they read this many bytes of packed operands (a batch-1
                                            // classifier's weights: bound by memory bandwidth, which two threads
                                            // nearly double)

constexpr double kStreamBytes = 1 << 20;  // packed operands above this are read by the prefetching micro-kernels

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Per-thread scratch, 64-byte aligned, grown on demand (tasks on one thread never nest).
float* scratch(int slot, size_t n) {
  struct Buffer {
    float* p = nullptr;
    size_t cap = 0;
    ~Buffer() { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[slot];
  if (b.cap < n) {
    ::operator delete(b.p, std::align_val_t{64});
    b.p = static_cast<float*>(::operator new(n * sizeof(float), std::align_val_t{64}));
    b.cap = n;
  }
  return b.p;
}

typedef float v4 __attribute__((vector_size(16)));
inline v4 load4(const float* p) {
  v4 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store4(float* p, v4 v) { std::memcpy(p, &v, sizeof(v)); }

// Writes columns k0 .. k0 + 3 of rows src[0..3] (row-major) to out + k * mr (four floats each), transposed in
// registers.
inline void pack_4x4(const float* const src[4], int64_t k0, int mr, float* out) {
  const v4 a0 = load4(src[0] + k0), a1 = load4(src[1] + k0), a2 = load4(src[2] + k0), a3 = load4(src[3] + k0);
  const v4 t0 = __builtin_shufflevector(a0, a1, 0, 4, 1, 5), t1 = __builtin_shufflevector(a0, a1, 2, 6, 3, 7);
  const v4 t2 = __builtin_shufflevector(a2, a3, 0, 4, 1, 5), t3 = __builtin_shufflevector(a2, a3, 2, 6, 3, 7);
  store4(out + k0 * mr, __builtin_shufflevector(t0, t2, 0, 1, 4, 5));
  store4(out + (k0 + 1) * mr, __builtin_shufflevector(t0, t2, 2, 3, 6, 7));
  store4(out + (k0 + 2) * mr, __builtin_shufflevector(t1, t3, 0, 1, 4, 5));
  store4(out + (k0 + 3) * mr, __builtin_shufflevector(t1, t3, 2, 3, 6, 7));
}

// Packs rows [i0, i0 + mc) x cols [p0, p0 + kc) of op(A) into mr-row panels (k-major, rows past M zero).
void pack_a(bool trans, const float* A, int64_t lda, int64_t M, int64_t i0, int64_t mc, int64_t p0, int64_t kc, int mr,
            float* out) {
  for (int64_t ip = 0; ip < mc; ip += mr, out += kc * mr) {
    const int rows = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>({mr, mc - ip, M - (i0 + ip)})));
    // A partial panel is cleared whole first (one contiguous fill), then only its rows are written: a batch-1
    // product packs one row into a panel of mr, and clearing the others one strided float at a time cost more
    // than the row itself.
    if (rows < mr) std::memset(out, 0, static_cast<size_t>(kc * mr) * sizeof(float));
    if (trans) {  // row k of the panel is `rows` consecutive floats of A
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = A + (p0 + k) * lda + i0 + ip;
        float* dst = out + k * mr;
        for (int r = 0; r < rows; ++r) dst[r] = src[r];
      }
      continue;
    }
    int r = 0;
    for (; r + 4 <= rows; r += 4) {  // groups of four rows, four columns at a time
      const float* src[4];
      for (int q = 0; q < 4; ++q) src[q] = A + (i0 + ip + r + q) * lda + p0;
      int64_t k = 0;
      for (; k + 4 <= kc; k += 4) pack_4x4(src, k, mr, out + r);
      for (; k < kc; ++k) {
        for (int q = 0; q < 4; ++q) out[k * mr + r + q] = src[q][k];
      }
    }
    for (; r < rows; ++r) {
      const float* src = A + (i0 + ip + r) * lda + p0;
      for (int64_t k = 0; k < kc; ++k) out[k * mr + r] = src[k];
    }
  }
}

// Packs rows [p0, p0 + kc) x cols [j0, j0 + nc) of op(B) into nr-column panels (k-major, columns past N zero).
void pack_b(bool trans, const float* B, int64_t ldb, int64_t N, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
            float* out) {
  for (int64_t jp = 0; jp < nc; jp += nr, out += kc * nr) {
    const int64_t j = j0 + jp;
    const int64_t n = std::min<int64_t>({nr, nc - jp, N - j});
    if (!trans && n == nr) {
      copy_runs(B + p0 * ldb + j, ldb, out, nr, kc, nr);
    } else if (!trans) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (p0 + k) * ldb + j;
        float* dst = out + k * nr;
        std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
        for (int64_t c = n; c < nr; ++c) dst[c] = 0;
      }
    } else {
      for (int64_t c = 0; c < nr; ++c) {
        if (c >= n) {
          for (int64_t k = 0; k < kc; ++k) out[k * nr + c] = 0;
          continue;
        }
        const float* src = B + (j + c) * ldb + p0;
        for (int64_t k = 0; k < kc; ++k) out[k * nr + c] = src[k];
      }
    }
  }
}

bool trivial(const GemmEpilogue& ep) {
  return ep.alpha == 1 && ep.bias == nullptr && ep.residual == nullptr && ep.act.kind == Activation::none;
}

// The part of ep every tile shares (per-tile pointers are set by tile_epilogue); `act_taken` tells whether
// the micro-kernel applies ep.act (otherwise it runs after each block).
TileEpilogue tile_epilogue_base(const GemmEpilogue& ep, bool& act_taken) {
  TileEpilogue t = tile_epilogue_for(ep.act, act_taken);
  t.alpha = ep.alpha;
  t.ld_residual = ep.ld_residual;
  t.residual_scale = ep.residual_scale;
  return t;
}

// The TileEpilogue of the tile at output row i0, column j0.
TileEpilogue tile_epilogue(const TileEpilogue& base, const GemmEpilogue& ep, int64_t i0, int64_t j0) {
  TileEpilogue t = base;
  if (ep.bias != nullptr) (ep.bias_per_row ? t.row_bias : t.col_bias) = ep.bias + (ep.bias_per_row ? i0 : j0);
  if (ep.residual != nullptr) t.residual = ep.residual + i0 * ep.ld_residual + j0;
  return t;
}

// Applies the epilogue to the m x n tile at c (output rows i0.., columns j0..).
void epilogue_tile(const GemmEpilogue& ep, float* c, int64_t ldc, int64_t i0, int64_t j0, int64_t m, int64_t n) {
  for (int64_t r = 0; r < m; ++r) {
    float* row = c + r * ldc;
    if (ep.alpha != 1) {
      for (int64_t j = 0; j < n; ++j) row[j] *= ep.alpha;
    }
    if (ep.bias != nullptr) {
      if (ep.bias_per_row) {
        const float b = ep.bias[i0 + r];
        for (int64_t j = 0; j < n; ++j) row[j] += b;
      } else {
        const float* b = ep.bias + j0;
        for (int64_t j = 0; j < n; ++j) row[j] += b[j];
      }
    }
    if (ep.residual != nullptr) {
      const float* z = ep.residual + (i0 + r) * ep.ld_residual + j0;
      const float s = ep.residual_scale;
      if (s == 1) {
        for (int64_t j = 0; j < n; ++j) row[j] += z[j];
      } else {
        for (int64_t j = 0; j < n; ++j) row[j] += s * z[j];
      }
    }
    apply_activation_vec(ep.act, row, n);
  }
}

struct Problem {
  int64_t M, N, K;
  const GemmOperand* a;
  const GemmOperand* b;
  float* C;
  int64_t ldc;
  const GemmEpilogue* ep;
  const GemmMicroKernel* mk;
};

// Computes the output block rows [i_begin, i_end) x cols [j_begin, j_end) (starts aligned to mr / nr).
void run_block(const Problem& p, int64_t i_begin, int64_t i_end, int64_t j_begin, int64_t j_end) {
  const int mr = p.mk->mr, nr = p.mk->nr;
  const GemmOperand& a = *p.a;
  const GemmOperand& b = *p.b;
  bool act_taken = false;
  const TileEpilogue base = tile_epilogue_base(*p.ep, act_taken);
  const bool epi = !trivial(*p.ep), post_act = !act_taken;
  float* a_buf = a.packed ? nullptr : scratch(0, static_cast<size_t>(MC * KC));
  float* b_buf = b.packed ? nullptr : scratch(1, static_cast<size_t>(KC * NC));
  auto kernel = p.mk->kernel;
  // The prefetching variants only for packed operands too large to stay in L2: otherwise the prefetch's load slot
  // per k step costs more than it saves (measured on resnet50's convolutions, bench/RESULTS.md).
  const double a_bytes = a.packed ? sizeof(float) * static_cast<double>(a.packed->padded()) * static_cast<double>(p.K) : 0;
  const double b_bytes = b.packed ? sizeof(float) * static_cast<double>(b.packed->padded()) * static_cast<double>(p.K) : 0;
  if (b_bytes > kStreamBytes && p.mk->kernel_stream_b) kernel = p.mk->kernel_stream_b;
  else if (a_bytes > kStreamBytes && !b.packed && p.mk->kernel_stream_a) kernel = p.mk->kernel_stream_a;
  for (int64_t jc = j_begin; jc < j_end; jc += NC) {
    const int64_t nc = std::min(NC, j_end - jc);
    for (int64_t pc = 0; pc < p.K; pc += KC) {
      const int64_t kc = std::min(KC, p.K - pc);
      const bool last_k = pc + kc == p.K;
      const float* b_base;
      if (b.packed) {
        b_base = b.packed->data() + pc * b.packed->padded() + (jc / nr) * kc * nr;
      } else {
        if (b.source != nullptr) {
          b.source->pack(pc, kc, jc, nc, nr, b_buf);
        } else {
          pack_b(b.trans, b.data, b.ld, p.N, pc, kc, jc, nc, nr, b_buf);
        }
        b_base = b_buf;
      }
      for (int64_t ic = i_begin; ic < i_end; ic += MC) {
        const int64_t mc = std::min(MC, i_end - ic);
        const float* a_base;
        if (a.packed) {
          a_base = a.packed->data() + pc * a.packed->padded() + (ic / mr) * kc * mr;
        } else {
          pack_a(a.trans, a.data, a.ld, p.M, ic, mc, pc, kc, mr, a_buf);
          a_base = a_buf;
        }
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const float* b_panel = b_base + (jr / nr) * kc * nr;
          const int n = static_cast<int>(std::min<int64_t>(nr, nc - jr));
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int m = static_cast<int>(std::min<int64_t>(mr, mc - ir));
            float* c = p.C + (ic + ir) * p.ldc + jc + jr;
            // The next tile's rows of C (and of the residual) are mr separate rows, which the hardware prefetcher
            // does not follow when they come from memory: ask for them one tile ahead (resnet50's 1x1
            // convolutions on 56x56 planes 4-20% faster in six alternated rounds, bench/RESULTS.md).
            if (ir + mr < mc) {
              const int64_t rows = std::min<int64_t>(mr, mc - ir - mr);
              for (int64_t r = 0; r < rows; ++r) {
                const float* next = c + (mr + r) * p.ldc;
                __builtin_prefetch(next, 1, 3);
                __builtin_prefetch(next + 16, 1, 3);
                if (last_k && p.ep->residual != nullptr) {
                  const float* z = p.ep->residual + (ic + ir + mr + r) * p.ep->ld_residual + jc + jr;
                  __builtin_prefetch(z, 0, 3);
                  __builtin_prefetch(z + 16, 0, 3);
                }
              }
            }
            if (last_k && epi) {
              const TileEpilogue te = tile_epilogue(base, *p.ep, ic + ir, jc + jr);
              kernel(kc, a_base + (ir / mr) * kc * mr, b_panel, c, p.ldc, m, n, pc > 0, &te);
            } else {
              kernel(kc, a_base + (ir / mr) * kc * mr, b_panel, c, p.ldc, m, n, pc > 0, nullptr);
            }
          }
        }
        if (last_k && post_act) {  // whole rows of the block, while they are in cache
          if (nc == p.ldc) {  // rows of the block are contiguous: one pass, one partial vector at most
            apply_activation_vec(p.ep->act, p.C + ic * p.ldc, mc * nc);
          } else {
            for (int64_t r = ic; r < ic + mc; ++r) apply_activation_vec(p.ep->act, p.C + r * p.ldc + jc, nc);
          }
        }
      }
    }
  }
}

}  // namespace

void copy_runs(const float* src, int64_t src_step, float* dst, int64_t dst_step, int64_t count, int64_t width) {
  auto runs = [&](auto fixed) {
    constexpr int64_t w = decltype(fixed)::value;
    for (int64_t i = 0; i < count; ++i) std::memcpy(dst + i * dst_step, src + i * src_step, w * sizeof(float));
  };
  if (width == 32) return runs(std::integral_constant<int64_t, 32>{});
  if (width == 16) return runs(std::integral_constant<int64_t, 16>{});
  if (width == 8) return runs(std::integral_constant<int64_t, 8>{});
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(dst + i * dst_step, src + i * src_step, static_cast<size_t>(width) * sizeof(float));
  }
}

TileEpilogue tile_epilogue_for(const ActivationSpec& act, bool& taken) {
  TileEpilogue t;
  taken = act.kind == Activation::none || act.kind == Activation::relu || act.kind == Activation::clip;
  if (act.kind == Activation::relu) t.clamp = TileEpilogue::Clamp::relu;
  if (act.kind == Activation::clip) {
    t.clamp = TileEpilogue::Clamp::clip;
    t.lo = act.p0;
    t.hi = act.p1;
  }
  return t;
}

const GemmMicroKernel& gemm_micro_kernel() {
  static const GemmMicroKernel& chosen = [] () -> const GemmMicroKernel& {
    const GemmMicroKernel* k = &gemm_micro_kernel_portable();
#if defined(__x86_64__)
    const uint32_t f = cpu_features();
    if (f & kCpuAvx512) k = &gemm_micro_kernel_avx512();
    else if (f & kCpuAvx2) k = &gemm_micro_kernel_avx2();
#endif
    ORCHARD_LOG_INFO("cpu", "gemm micro-kernel chosen", {"isa", std::string(k->name)}, {"mr", k->mr}, {"nr", k->nr});
    return *k;
  }();
  return chosen;
}

std::shared_ptr<const PackedMatrix> gemm_pack_a(bool trans, int64_t M, int64_t K, const float* A, int64_t lda) {
  const GemmMicroKernel& mk = gemm_micro_kernel();
  const int64_t padded = round_up(std::max<int64_t>(M, 1), mk.mr);
  std::unique_ptr<float[]> data(new float[static_cast<size_t>(padded * std::max<int64_t>(K, 1))]);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    pack_a(trans, A, lda, M, 0, padded, pc, kc, mk.mr, data.get() + pc * padded);
  }
  return std::make_shared<const PackedMatrix>(PackedMatrix::Side::a, M, K, padded, std::move(data));
}

std::shared_ptr<const PackedMatrix> gemm_pack_b(bool trans, int64_t K, int64_t N, const float* B, int64_t ldb) {
  const GemmMicroKernel& mk = gemm_micro_kernel();
  const int64_t padded = round_up(std::max<int64_t>(N, 1), mk.nr);
  std::unique_ptr<float[]> data(new float[static_cast<size_t>(padded * std::max<int64_t>(K, 1))]);
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    pack_b(trans, B, ldb, N, pc, kc, 0, padded, mk.nr, data.get() + pc * padded);
  }
  return std::make_shared<const PackedMatrix>(PackedMatrix::Side::b, K, N, padded, std::move(data));
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const GemmOperand& a, const GemmOperand& b, float* C, int64_t ldc,
              const GemmEpilogue& ep, ThreadPool* pool) {
  if (M <= 0 || N <= 0) return;
  const GemmMicroKernel& mk = gemm_micro_kernel();
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
    epilogue_tile(ep, C, ldc, 0, 0, M, N);
    return;
  }
  const Problem p{M, N, K, &a, &b, C, ldc, &ep, &mk};
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const int threads = pool ? pool->size() : 1;
  const double packed_bytes = sizeof(float) * ((a.packed ? static_cast<double>(M) * static_cast<double>(K) : 0.0) +
                                                (b.packed ? static_cast<double>(K) * static_cast<double>(N) : 0.0));
  if (threads <= 1 || (flops < kSerialFlops && packed_bytes < kParallelBytes)) {
    run_block(p, 0, M, 0, N);
    return;
  }
  // Split the output into tm x tn blocks. Blocks along N each read all of op(A), blocks along M all of op(B):
  // split along the side whose other operand is cheaper to read again (an operand not packed at load is also
  // packed again, about twice the cost of reading it).
  // One block per thread: measured faster than 2 or 4 per thread (bench/RESULTS.md), as every extra block
  // re-reads the other operand. Block edges fall on whole register tiles, placed so that blocks cost the same
  // (a 196-column image is 96 + 100 columns, not 128 + 68: its last tile computes one 16-column vector).
  const int64_t want = threads;
  const int64_t n_panels = (N + mk.nr - 1) / mk.nr, m_panels = (M + mk.mr - 1) / mk.mr;
  const bool split_m = M * (a.packed ? 1 : 2) > N * (b.packed ? 1 : 2);
  int64_t tm = 1, tn = 1;
  if (split_m) {
    tm = std::min(want, m_panels);
    tn = std::min((want + tm - 1) / tm, n_panels);
  } else {
    tn = std::min(want, n_panels);
    tm = std::min((want + tn - 1) / tn, m_panels);
  }
  const std::vector<int64_t> rows = gemm_split(M, mk.mr, mk.row_units, tm);
  const std::vector<int64_t> cols = gemm_split(N, mk.nr, mk.col_units, tn);
  const int64_t bm = static_cast<int64_t>(rows.size()) - 1, bn = static_cast<int64_t>(cols.size()) - 1;
  pool->parallel_for(bm * bn, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const size_t i = static_cast<size_t>(t % bm), j = static_cast<size_t>(t / bm);
      run_block(p, rows[i], rows[i + 1], cols[j], cols[j + 1]);
    }
  });
}

std::vector<int64_t> gemm_split(int64_t extent, int64_t tile, int64_t units, int64_t parts) {
  const int64_t tiles = (extent + tile - 1) / tile;
  parts = std::clamp<int64_t>(parts, 1, std::max<int64_t>(tiles, 1));
  auto cost = [&](int64_t t) {  // of tiles [0, t)
    const int64_t full = std::min(t, extent / tile), rest = t > full ? extent - full * tile : 0;
    return full * units + (rest * units + tile - 1) / tile;
  };
  const int64_t total = cost(tiles);
  std::vector<int64_t> bounds{0};
  int64_t t = 0;
  for (int64_t i = 1; i < parts; ++i) {
    const int64_t target = total * i;  // times parts: the cut's ideal cost, scaled to stay integral
    ++t;
    // The cut nearest its ideal; leaves at least one tile for each later range.
    auto miss = [&](int64_t cut) { return std::abs(cost(cut) * parts - target); };
    while (t + 1 <= tiles - (parts - i) && miss(t + 1) < miss(t)) ++t;
    bounds.push_back(t * tile);
  }
  bounds.push_back(extent);
  return bounds;
}

}  // namespace orchard::cpu::opt
