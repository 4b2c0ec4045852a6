// The portable GEMM: cache blocking (MC x KC blocks of A, KC x NC blocks of B), packed panels, and a
// register-tiled MR x NR micro-kernel written as plain loops that the compiler unrolls and vectorises.
// Work is split into (M block, N block) tasks run on the thread pool; each task packs its own panels.
#include "backends/cpu/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <memory>
#include <new>

namespace orchard::cpu {

namespace {

// Tile and block sizes per element type. The MR x NR accumulators use 12 of the 16 128-bit registers
// of baseline x86-64 (NEON has 32); KC x NR of B stays in L1, the MC x KC block of A in L2.
template <class T>
struct GemmConfig;
template <>
struct GemmConfig<float> {
  static constexpr int MR = 3, NR = 16;
  static constexpr int64_t MC = 96, KC = 256, NC = 512;
};
template <>
struct GemmConfig<double> {
  static constexpr int MR = 3, NR = 8;
  static constexpr int64_t MC = 96, KC = 256, NC = 256;
};

// Packed A holds each value kBcast<T> times (one 128-bit vector), so the micro-kernel reads its
// broadcasts with plain vector loads instead of shuffles: baseline x86-64 has no broadcast load.
template <class T>
inline constexpr int kBcast = static_cast<int>(16 / sizeof(T));

// a * b + c, fused where the target has a fast fused multiply-add (so -ffp-contract=off builds still
// get FMA instructions on aarch64), else a multiply and an add.
template <class T>
inline T madd(T a, T b, T c) {
#if defined(__FP_FAST_FMAF) && defined(__FP_FAST_FMA)
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// Grows-only scratch buffer per thread, 64-byte aligned; tasks never nest, so one per thread suffices.
template <class T>
T* scratch(size_t n) {
  struct Deleter {
    void operator()(T* p) const { ::operator delete(p, std::align_val_t{64}); }
  };
  thread_local std::unique_ptr<T, Deleter> buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf.reset();
    buf.reset(static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})));
    cap = n;
  }
  return buf.get();
}

// Packs rows [0, mc) x cols [0, kc) of op(A) into MR-row panels: panel p holds, for each k, MR values
// each repeated kBcast times (rows past mc are zero).
template <class T, int MR>
void pack_a(bool trans, const T* A, int64_t lda, int64_t mc, int64_t kc, T* out) {
  constexpr int V = kBcast<T>;
  for (int64_t i0 = 0; i0 < mc; i0 += MR) {
    const int64_t m = std::min<int64_t>(MR, mc - i0);
    for (int64_t k = 0; k < kc; ++k) {
      T* dst = out + k * MR * V;
      for (int r = 0; r < MR; ++r) {
        const T v = r < m ? (trans ? A[k * lda + i0 + r] : A[(i0 + r) * lda + k]) : T(0);
        for (int l = 0; l < V; ++l) dst[r * V + l] = v;
      }
    }
    out += kc * MR * V;
  }
}

// Packs rows [0, kc) x cols [0, nc) of op(B) into NR-column panels: panel p holds k-major groups of NR
// values (columns past nc are zero).
template <class T, int NR>
void pack_b(bool trans, const T* B, int64_t ldb, int64_t kc, int64_t nc, T* out) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR) {
    const int64_t n = std::min<int64_t>(NR, nc - j0);
    if (!trans) {
      if (n == NR) {
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + k * ldb + j0;
          for (int c = 0; c < NR; ++c) out[k * NR + c] = src[c];
        }
      } else {
        for (int64_t k = 0; k < kc; ++k) {
          const T* src = B + k * ldb + j0;
          for (int c = 0; c < NR; ++c) out[k * NR + c] = c < n ? src[c] : T(0);
        }
      }
    } else {
      // op(B)[k][j] = B[j][k]
      for (int64_t k = 0; k < kc; ++k)
        for (int c = 0; c < NR; ++c) out[k * NR + c] = c < n ? B[(j0 + c) * ldb + k] : T(0);
    }
    out += kc * NR;
  }
}

// acc = sum over k of a[k] (MR values) times b[k] (NR values), as an MR x NR outer-product sum.
// Written so that the compiler keeps acc in registers and turns each row into NR / kBcast vector
// multiply-adds; not inlined so that register allocation sees the kernel alone.
template <class T, int MR, int NR>
[[gnu::noinline]] void micro_kernel(int64_t kc, const T* __restrict a, const T* __restrict b, T* __restrict out) {
  constexpr int V = kBcast<T>;
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = madd(a[i * V + j % V], b[j], acc[i][j]);
    a += MR * V;
    b += NR;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) out[i * NR + j] = acc[i][j];
}

// Writes an m x n corner of the tile `acc` into C: C = alpha*acc + beta*C (first K block) or
// C += alpha*acc (later blocks).
template <class T, int MR, int NR>
inline void store_tile(const T* acc, int64_t m, int64_t n, T alpha, T beta, bool first, T* C, int64_t ldc) {
  if (m == MR && n == NR) {
    for (int i = 0; i < MR; ++i) {
      T* c = C + i * ldc;
      const T* s = acc + i * NR;
      if (!first) {
        for (int j = 0; j < NR; ++j) c[j] += alpha * s[j];
      } else if (beta == T(0)) {
        for (int j = 0; j < NR; ++j) c[j] = alpha * s[j];
      } else {
        for (int j = 0; j < NR; ++j) c[j] = alpha * s[j] + beta * c[j];
      }
    }
    return;
  }
  for (int64_t i = 0; i < m; ++i) {
    T* c = C + i * ldc;
    const T* s = acc + i * NR;
    for (int64_t j = 0; j < n; ++j) {
      if (!first) c[j] += alpha * s[j];
      else if (beta == T(0)) c[j] = alpha * s[j];
      else c[j] = alpha * s[j] + beta * c[j];
    }
  }
}

// C[:, :] = beta * C (beta == 0 writes zeros without reading C).
template <class T>
void scale_c(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0)) std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// Matrix-vector products (M == 1 or N == 1) skip packing: packing would cost as much as the product.
template <class T>
void gemv_row(bool trans_b, int64_t N, int64_t K, T alpha, const T* a, int64_t a_step, const T* B, int64_t ldb,
              T beta, T* c, int64_t c_step) {
  // c[j] = alpha * sum_k a[k] * op(B)[k][j] + beta * c[j]
  if (!trans_b && c_step == 1) {
    constexpr int64_t kChunk = 1024;
    T tmp[kChunk];
    for (int64_t j0 = 0; j0 < N; j0 += kChunk) {
      const int64_t n = std::min(kChunk, N - j0);
      std::fill(tmp, tmp + n, T(0));
      for (int64_t k = 0; k < K; ++k) {
        const T av = a[k * a_step];
        const T* b = B + k * ldb + j0;
        for (int64_t j = 0; j < n; ++j) tmp[j] = madd(av, b[j], tmp[j]);
      }
      for (int64_t j = 0; j < n; ++j) {
        T& out = c[j0 + j];
        out = beta == T(0) ? alpha * tmp[j] : alpha * tmp[j] + beta * out;
      }
    }
    return;
  }
  if (trans_b && a_step == 1) {
    // Dot products with explicit partial sums (so they vectorise without reassociation), four rows
    // of B at a time so that each load of `a` serves four of them.
    constexpr int L = 8;
    int64_t j = 0;
    for (; j + 4 <= N; j += 4) {
      const T* b0 = B + j * ldb;
      T s[4][L] = {};
      int64_t k = 0;
      for (; k + L <= K; k += L)
        for (int r = 0; r < 4; ++r)
          for (int l = 0; l < L; ++l) s[r][l] = madd(a[k + l], b0[r * ldb + k + l], s[r][l]);
      for (int r = 0; r < 4; ++r) {
        T t = 0;
        for (int l = 0; l < L; ++l) t += s[r][l];
        for (int64_t kk = k; kk < K; ++kk) t = madd(a[kk], b0[r * ldb + kk], t);
        T& out = c[(j + r) * c_step];
        out = beta == T(0) ? alpha * t : alpha * t + beta * out;
      }
    }
    for (; j < N; ++j) {
      const T* b = B + j * ldb;
      T s[L] = {};
      int64_t k = 0;
      for (; k + L <= K; k += L)
        for (int l = 0; l < L; ++l) s[l] = madd(a[k + l], b[k + l], s[l]);
      T t = 0;
      for (int l = 0; l < L; ++l) t += s[l];
      for (; k < K; ++k) t = madd(a[k], b[k], t);
      T& out = c[j * c_step];
      out = beta == T(0) ? alpha * t : alpha * t + beta * out;
    }
    return;
  }
  for (int64_t j = 0; j < N; ++j) {
    T s = 0;
    if (trans_b) {
      const T* b = B + j * ldb;
      for (int64_t k = 0; k < K; ++k) s = madd(a[k * a_step], b[k], s);
    } else {
      for (int64_t k = 0; k < K; ++k) s = madd(a[k * a_step], B[k * ldb + j], s);
    }
    T& out = c[j * c_step];
    out = beta == T(0) ? alpha * s : alpha * s + beta * out;
  }
}

template <class T>
void gemm_impl(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc, ThreadPool* pool) {
  using Cfg = GemmConfig<T>;
  constexpr int MR = Cfg::MR, NR = Cfg::NR;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  const bool parallel = pool != nullptr && pool->size() > 1 && flops >= 4e6;

  if (M == 1) {
    // One row of C: a is row 0 of op(A).
    const int64_t a_step = trans_a ? lda : 1;
    if (parallel && N >= 256) {
      pool->parallel_for(N, 128, [&](int64_t j0, int64_t j1) {
        const T* b = trans_b ? B + j0 * ldb : B + j0;
        gemv_row<T>(trans_b, j1 - j0, K, alpha, A, a_step, b, ldb, beta, C + j0, 1);
      });
    } else {
      gemv_row<T>(trans_b, N, K, alpha, A, a_step, B, ldb, beta, C, 1);
    }
    return;
  }
  if (N == 1) {
    // One column of C: C^T = op(B)^T op(A)^T, i.e. a row product with B's column as the vector.
    const int64_t b_step = trans_b ? 1 : ldb;
    auto rows = [&](int64_t i0, int64_t i1) {
      const T* a = trans_a ? A + i0 : A + i0 * lda;
      gemv_row<T>(!trans_a, i1 - i0, K, alpha, B, b_step, a, lda, beta, C + i0 * ldc, ldc);
    };
    if (parallel && M >= 256) pool->parallel_for(M, 128, rows);
    else rows(0, M);
    return;
  }

  // Block sizes: MC a multiple of MR, NC a multiple of NR. With several threads, shrink the blocks
  // when the matrix would give fewer tasks than threads.
  int64_t mc = Cfg::MC, nc = Cfg::NC;
  const int64_t kc_max = std::min<int64_t>(Cfg::KC, K);
  if (parallel) {
    const int64_t want = static_cast<int64_t>(pool->size()) * 4;
    auto tasks = [&] { return ((M + mc - 1) / mc) * ((N + nc - 1) / nc); };
    while (tasks() < want && nc > 4 * NR) nc = std::max<int64_t>(4 * NR, (nc / 2) / NR * NR);
    while (tasks() < want && mc > 2 * MR) mc = std::max<int64_t>(2 * MR, (mc / 2) / MR * MR);
  }
  mc = std::min(mc, (M + MR - 1) / MR * MR);
  nc = std::min(nc, (N + NR - 1) / NR * NR);
  const int64_t m_blocks = (M + mc - 1) / mc;
  const int64_t n_blocks = (N + nc - 1) / nc;

  auto run_task = [&](int64_t t) {
    const int64_t ib = t % m_blocks, jb = t / m_blocks;
    const int64_t i0 = ib * mc, j0 = jb * nc;
    const int64_t m = std::min(mc, M - i0), n = std::min(nc, N - j0);
    const int64_t m_pad = (m + MR - 1) / MR * MR, n_pad = (n + NR - 1) / NR * NR;
    constexpr int V = kBcast<T>;
    T* ap = scratch<T>(static_cast<size_t>(m_pad * V * kc_max + n_pad * kc_max + MR * NR));
    T* bp = ap + m_pad * V * kc_max;
    T* acc = bp + n_pad * kc_max;
    for (int64_t p0 = 0; p0 < K; p0 += kc_max) {
      const int64_t kc = std::min(kc_max, K - p0);
      const T* a_src = trans_a ? A + p0 * lda + i0 : A + i0 * lda + p0;
      const T* b_src = trans_b ? B + j0 * ldb + p0 : B + p0 * ldb + j0;
      pack_a<T, MR>(trans_a, a_src, lda, m, kc, ap);
      pack_b<T, NR>(trans_b, b_src, ldb, kc, n, bp);
      const bool first = p0 == 0;
      for (int64_t jr = 0; jr < n; jr += NR) {
        const T* bpanel = bp + (jr / NR) * kc * NR;
        for (int64_t ir = 0; ir < m; ir += MR) {
          const T* apanel = ap + (ir / MR) * kc * MR * V;
          micro_kernel<T, MR, NR>(kc, apanel, bpanel, acc);
          store_tile<T, MR, NR>(acc, std::min<int64_t>(MR, m - ir), std::min<int64_t>(NR, n - jr), alpha, beta, first,
                                C + (i0 + ir) * ldc + j0 + jr, ldc);
        }
      }
    }
  };

  const int64_t tasks = m_blocks * n_blocks;
  if (parallel && tasks > 1) {
    pool->parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) run_task(t);
    });
  } else {
    for (int64_t t = 0; t < tasks; ++t) run_task(t);
  }
}

}  // namespace

void gemm_f32(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc, ThreadPool* pool) {
  gemm_impl<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
}

void gemm_f64(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
              int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc, ThreadPool* pool) {
  gemm_impl<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, pool);
}

}  // namespace orchard::cpu
