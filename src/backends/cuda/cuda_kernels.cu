// The CUDA backend's own device kernels: strided copies (Transpose, Slice, Concat, Expand), broadcasting
// binary and unary elementwise math, comparisons, Where, pooling, BatchNormalization, Softmax, LayerNormalization,
// Cast, Gather, fills and reductions. Math in float32 for float16 and bfloat16 data. One file, because nvcc is
// slow; each kernel is a plain grid-stride loop or one block per row.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "backends/cuda/cuda_kernels.hpp"
#include "backends/cuda/fast_div.hpp"

namespace orchard::cuda {

namespace {

constexpr int kThreads = 256;

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 * 8 ? 65535 * 8 : blocks));
}

template <class T>
__device__ __forceinline__ float load(const T* p, int64_t i) {
  return static_cast<float>(p[i]);
}
template <>
__device__ __forceinline__ float load<__half>(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
template <class T>
__device__ __forceinline__ void store(T* p, int64_t i, float v) {
  p[i] = static_cast<T>(v);
}
template <>
__device__ __forceinline__ void store<__half>(__half* p, int64_t i, float v) {
  p[i] = __float2half(v);
}
template <>
__device__ __forceinline__ float load<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}
template <>
__device__ __forceinline__ void store<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, float v) {
  p[i] = __float2bfloat16(v);  // round to nearest even
}

template <class T>
inline constexpr bool is_float16_or_bfloat16 = std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

template <class T>
struct Tag {
  using type = T;
};

// Calls f(Tag<T>{}) with T the device type of float element type t: __half (f16), __nv_bfloat16 (bf16), else
// float. The launchers of the float kernels take their element type through it.
template <class F>
cudaError_t with_float_type(Elem t, F&& f) {
  switch (t) {
    case Elem::f16: return f(Tag<__half>{});
    case Elem::bf16: return f(Tag<__nv_bfloat16>{});
    default: return f(Tag<float>{});
  }
}

// Offsets of element `i` of the iteration space in operands 0 and 1.
__device__ __forceinline__ void offsets(const Layout& l, int64_t i, int64_t& o0, int64_t& o1) {
  o0 = l.offset[0];
  o1 = l.offset[1];
  for (int d = l.rank - 1; d >= 0; --d) {
    const int64_t c = i % l.dims[d];
    i /= l.dims[d];
    o0 += c * l.stride[0][d];
    o1 += c * l.stride[1][d];
  }
}

// The two-operand Layout when the iteration space and every offset it reaches lie below 2^31 (strides not
// negative): 32-bit indices, each dim's division a FastDiv. Most spaces are such; int64 division per dim and
// element is the likely reason the float16 head-split transposes of bert_base ran at about a fifth of the memory
// bandwidth (session 7's profile).
struct Layout32 {
  int rank = 0;
  FastDiv dims[kMaxRank];
  uint32_t stride[2][kMaxRank] = {};
  uint32_t offset[2] = {};
};

__device__ __forceinline__ void offsets(const Layout32& l, uint32_t i, uint32_t& o0, uint32_t& o1) {
  o0 = l.offset[0];
  o1 = l.offset[1];
  for (int d = l.rank - 1; d >= 0; --d) {
    const uint32_t q = fast_div(l.dims[d], i);
    const uint32_t c = i - q * l.dims[d].d;
    i = q;
    o0 += c * l.stride[0][d];
    o1 += c * l.stride[1][d];
  }
}

int64_t numel(const Layout& l) {
  int64_t n = 1;
  for (int d = 0; d < l.rank; ++d) n *= l.dims[d];
  return n;
}

bool to_layout32(const Layout& l, int64_t n, Layout32& out) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  if (n >= kLimit) return false;
  out.rank = l.rank;
  for (int k = 0; k < 2; ++k) {
    int64_t reach = l.offset[k];
    for (int d = 0; d < l.rank; ++d) {
      if (l.stride[k][d] < 0 || l.stride[k][d] >= kLimit) return false;
      reach += (l.dims[d] - 1) * l.stride[k][d];
      if (reach >= kLimit) return false;
    }
    if (l.offset[k] < 0) return false;
    out.offset[k] = static_cast<uint32_t>(l.offset[k]);
    for (int d = 0; d < l.rank; ++d) out.stride[k][d] = static_cast<uint32_t>(l.stride[k][d]);
  }
  for (int d = 0; d < l.rank; ++d) out.dims[d] = make_fast_div(static_cast<uint32_t>(l.dims[d]));
  return true;
}

// Calls launch(layout, n) with the 32-bit layout where it applies, else with the 64-bit one.
template <class F>
void with_index_width(const Layout& l, int64_t n, F&& launch) {
  Layout32 l32;
  if (to_layout32(l, n, l32)) {
    launch(l32, static_cast<uint32_t>(n));
  } else {
    launch(l, n);
  }
}

// L, I: Layout with int64_t or Layout32 with uint32_t (with_index_width).
template <class T, class L, class I>
__global__ void strided_copy_kernel(const T* __restrict__ src, T* __restrict__ dst, L l, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    I s, d;
    offsets(l, i, s, d);
    dst[d] = src[s];
  }
}

__device__ __forceinline__ float apply_binary(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return powf(a, b);
    case BinaryOp::max: return (a != a || b != b) ? a + b : fmaxf(a, b);
    case BinaryOp::min: return (a != a || b != b) ? a + b : fminf(a, b);
  }
  return 0.f;
}

template <class T, class L, class I>
__global__ void binary_kernel(BinaryOp op, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                              L l, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    I ia, ib;
    offsets(l, i, ia, ib);
    store(out, i, apply_binary(op, load(a, ia), load(b, ib)));
  }
}

__device__ __forceinline__ float apply_unary(UnaryOp op, float x, float alpha, float beta) {
  switch (op) {
    case UnaryOp::relu: return x > 0.f ? x : 0.f;
    case UnaryOp::sigmoid: return 1.f / (1.f + expf(-x));
    case UnaryOp::tanh: return tanhf(x);
    case UnaryOp::erf: return erff(x);
    case UnaryOp::exp: return expf(x);
    case UnaryOp::log: return logf(x);
    case UnaryOp::sqrt: return sqrtf(x);
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return fabsf(x);
    case UnaryOp::reciprocal: return 1.f / x;
    case UnaryOp::softplus: return x > 20.f ? x : log1pf(expf(x));
    case UnaryOp::softsign: return x / (1.f + fabsf(x));
    case UnaryOp::leaky_relu: return x < 0.f ? alpha * x : x;
    case UnaryOp::elu: return x < 0.f ? alpha * (expf(x) - 1.f) : x;
    case UnaryOp::selu: return x <= 0.f ? beta * (alpha * expf(x) - alpha) : beta * x;
    case UnaryOp::hard_sigmoid: return x != x ? x : fmaxf(0.f, fminf(1.f, alpha * x + beta));  // NaN stays NaN
    case UnaryOp::hard_swish: return x * fmaxf(0.f, fminf(1.f, x / 6.f + 0.5f));
    case UnaryOp::clip: return x != x ? x : fminf(fmaxf(x, alpha), beta);
    case UnaryOp::sin: return sinf(x);
    case UnaryOp::cos: return cosf(x);
    case UnaryOp::floor: return floorf(x);
    case UnaryOp::ceil: return ceilf(x);
    case UnaryOp::identity: return x;
    case UnaryOp::gelu: return 0.5f * x * (1.f + erff(x * 0.7071067811865476f));
    case UnaryOp::gelu_tanh: return 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
    case UnaryOp::silu: return x / (1.f + expf(-x));
  }
  return 0.f;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* __restrict__ x, T* __restrict__ y, int64_t n, float alpha, float beta) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    store(y, i, apply_unary(op, load(x, i), alpha, beta));
  }
}

// ---- fast paths: layouts collapsed to at most 3 dims, several elements per thread ----

// Returns l with unit dims dropped and adjacent dims merged where each of the first `ops` operands steps through
// them as through one dim (outer stride == inner stride * inner size): the same elements in the same order.
Layout collapse(const Layout& l, int ops) {
  Layout c;
  for (int k = 0; k < 3; ++k) c.offset[k] = l.offset[k];
  int r = 0;
  for (int d = 0; d < l.rank; ++d) {
    if (l.dims[d] == 1) continue;
    bool merge = r > 0;
    for (int k = 0; k < ops && merge; ++k) merge = c.stride[k][r - 1] == l.stride[k][d] * l.dims[d];
    if (merge) {
      c.dims[r - 1] *= l.dims[d];
      for (int k = 0; k < ops; ++k) c.stride[k][r - 1] = l.stride[k][d];
      continue;
    }
    c.dims[r] = l.dims[d];
    for (int k = 0; k < ops; ++k) c.stride[k][r] = l.stride[k][d];
    ++r;
  }
  c.rank = r;
  return c;
}

// A collapsed layout of rank <= 3 as dims [d0, d1, d2] (leading unit dims added), for operands 0..2.
struct Dims3 {
  int64_t d1 = 1, d2 = 1;
  int64_t st[3][3] = {};
  int64_t off[3] = {};
};

Dims3 dims3(const Layout& c) {
  Dims3 f;
  const int shift = 3 - c.rank;
  for (int d = 0; d < c.rank; ++d) {
    if (d + shift == 1) f.d1 = c.dims[d];
    if (d + shift == 2) f.d2 = c.dims[d];
    for (int k = 0; k < 3; ++k) f.st[k][d + shift] = c.stride[k][d];
  }
  for (int k = 0; k < 3; ++k) f.off[k] = c.offset[k];
  return f;
}

template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Reads V elements at p (one element repeated when `repeat`: the operand broadcasts along the innermost dim).
template <class T, int V>
__device__ __forceinline__ void load_pack(const T* p, bool repeat, float (&x)[V]) {
  if (repeat || V == 1) {
    const float v = load(p, 0);
#pragma unroll
    for (int j = 0; j < V; ++j) x[j] = v;
    return;
  }
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int j = 0; j < V; ++j) x[j] = load(pk.v, j);
}

template <class T, int V>
__device__ __forceinline__ void store_pack(T* p, const float (&x)[V]) {
  Pack<T, V> pk;
#pragma unroll
  for (int j = 0; j < V; ++j) store(pk.v, j, x[j]);
  *reinterpret_cast<Pack<T, V>*>(p) = pk;
}

// out[v*V .. v*V+V) = a op b over a [d0, d1, d2] space with d2 % V == 0: operands step 1 (or 0, broadcast) along
// d2 when V > 1; any stride when V == 1. I: the index type (32-bit when the space allows).
template <class T, int V, class I>
__global__ void binary3_kernel(BinaryOp op, const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out,
                               Dims3 f, I nv) {
  const I d2v = static_cast<I>(f.d2 / V), d1 = static_cast<I>(f.d1);
  for (I v = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; v < nv; v += static_cast<I>(gridDim.x) * blockDim.x) {
    const I r = v / d2v, i2 = (v - r * d2v) * V, i1 = r % d1, i0 = r / d1;
    float xa[V], xb[V];
    load_pack<T, V>(a + f.off[0] + i0 * f.st[0][0] + i1 * f.st[0][1] + i2 * f.st[0][2], f.st[0][2] == 0, xa);
    load_pack<T, V>(b + f.off[1] + i0 * f.st[1][0] + i1 * f.st[1][1] + i2 * f.st[1][2], f.st[1][2] == 0, xb);
#pragma unroll
    for (int j = 0; j < V; ++j) xa[j] = apply_binary(op, xa[j], xb[j]);
    store_pack<T, V>(out + static_cast<int64_t>(v) * V, xa);
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Whether operand k of f can be read V elements at a time (see binary3_kernel).
bool packable(const Dims3& f, int k, const void* base, int V) {
  if (f.st[k][2] == 0) return true;
  return f.st[k][2] == 1 && f.off[k] % V == 0 && f.st[k][0] % V == 0 && f.st[k][1] % V == 0 && aligned16(base);
}

template <class T, int V>
void launch_binary3(BinaryOp op, const T* a, const T* b, T* out, const Dims3& f, int64_t n, cudaStream_t stream) {
  const int64_t nv = n / V;
  if (nv < INT32_MAX) {
    binary3_kernel<T, V, uint32_t><<<grid_for(nv), kThreads, 0, stream>>>(op, a, b, out, f, static_cast<uint32_t>(nv));
  } else {
    binary3_kernel<T, V, int64_t><<<grid_for(nv), kThreads, 0, stream>>>(op, a, b, out, f, nv);
  }
}

// The binary op on element type T: 16-byte accesses where the collapsed layout allows, the strided kernel otherwise.
template <class T>
void binary_typed(BinaryOp op, const T* a, const T* b, T* out, const Layout& l, int64_t n, cudaStream_t stream) {
  const Layout c = collapse(l, 2);
  if (c.rank > 3) {
    with_index_width(c, n, [&](const auto& lw, auto nw) {
      binary_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, a, b, out, lw, nw);
    });
    return;
  }
  const Dims3 f = dims3(c);
  constexpr int V = 16 / sizeof(T);
  if (f.d2 % V == 0 && aligned16(out) && packable(f, 0, a, V) && packable(f, 1, b, V)) {
    launch_binary3<T, V>(op, a, b, out, f, n, stream);
  } else {
    launch_binary3<T, 1>(op, a, b, out, f, n, stream);
  }
}

// y = act(y + bias + z), V elements per thread; V > 1 only where each pack's bias is one value (inner % V == 0) or
// V consecutive values (inner == 1, channels % V == 0).
template <class T, int V>
__global__ void epilogue_kernel(T* __restrict__ y, int64_t nv, const T* __restrict__ bias, int64_t channels,
                                int64_t inner, const T* __restrict__ z, UnaryOp act, float alpha, float beta) {
  for (int64_t v = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; v < nv;
       v += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t i = v * V;
    float x[V], t[V];
    load_pack<T, V>(y + i, false, x);
    if (bias) {
      if (inner == 1) {
        load_pack<T, V>(bias + i % channels, false, t);
      } else {
        load_pack<T, V>(bias + (i / inner) % channels, true, t);
      }
#pragma unroll
      for (int j = 0; j < V; ++j) x[j] += t[j];
    }
    if (z) {
      load_pack<T, V>(z + i, false, t);
#pragma unroll
      for (int j = 0; j < V; ++j) x[j] += t[j];
    }
#pragma unroll
    for (int j = 0; j < V; ++j) x[j] = apply_unary(act, x[j], alpha, beta);
    store_pack<T, V>(y + i, x);
  }
}

template <class T>
void epilogue_typed(T* y, int64_t n, const T* bias, int64_t channels, int64_t inner, const T* z, UnaryOp act,
                    float alpha, float beta, cudaStream_t stream) {
  constexpr int V = 16 / sizeof(T);
  const bool bias_ok = !bias || (inner == 1 ? channels % V == 0 && aligned16(bias) : inner % V == 0);
  if (n % V == 0 && aligned16(y) && (!z || aligned16(z)) && bias_ok) {
    epilogue_kernel<T, V><<<grid_for(n / V), kThreads, 0, stream>>>(y, n / V, bias, channels, inner, z, act, alpha, beta);
  } else {
    epilogue_kernel<T, 1><<<grid_for(n), kThreads, 0, stream>>>(y, n, bias, channels, inner, z, act, alpha, beta);
  }
}

// Returns the block-wide reduction (sum, or max when `is_max`) of v; every thread gets the result.
__device__ float block_reduce(float v, bool is_max) {
  __shared__ float buf[32];
  for (int o = 16; o > 0; o /= 2) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();  // buf may still be read by a previous reduction
  if (lane == 0) buf[warp] = v;
  __syncthreads();
  const int warps = (blockDim.x + 31) / 32;
  v = threadIdx.x < warps ? buf[threadIdx.x] : (is_max ? -FLT_MAX : 0.f);
  if (warp == 0) {
    for (int o = 16; o > 0; o /= 2) {
      const float w = __shfl_xor_sync(0xffffffffu, v, o);
      v = is_max ? fmaxf(v, w) : v + w;
    }
    if (lane == 0) buf[0] = v;
  }
  __syncthreads();
  return buf[0];
}

// One block per (outer, inner) row of n elements spaced `inner` apart.
template <class T>
__global__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t inner, bool log) {
  const int64_t row = blockIdx.x;
  const int64_t base = (row / inner) * n * inner + row % inner;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmaxf(m, load(x, base + j * inner));
  m = block_reduce(m, true);
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += expf(load(x, base + j * inner) - m);
  s = block_reduce(s, false);
  const float ls = logf(s);
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const float v = load(x, base + j * inner) - m;
    store(y, base + j * inner, log ? v - ls : expf(v) / s);
  }
}

template <class T>
__global__ void layer_norm_kernel(const T* __restrict__ x, const T* __restrict__ scale, const T* __restrict__ bias,
                                  T* __restrict__ y, int64_t cols, float eps) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * cols;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += load(x, base + j);
  const float mean = block_reduce(s, false) / static_cast<float>(cols);
  float v = 0.f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = load(x, base + j) - mean;
    v += d * d;
  }
  const float inv = rsqrtf(block_reduce(v, false) / static_cast<float>(cols) + eps);
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float b = bias ? load(bias, j) : 0.f;
    store(y, base + j, (load(x, base + j) - mean) * inv * load(scale, j) + b);
  }
}

template <class S, class D>
__device__ __forceinline__ D convert(S v) {
  return static_cast<D>(v);
}

template <class S, class D>
__global__ void cast_kernel(const S* __restrict__ src, D* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    if constexpr (std::is_same_v<S, D>) {
      dst[i] = src[i];
    } else if constexpr (is_float16_or_bfloat16<S>) {
      const float f = load(src, i);  // exact; float16 <-> bfloat16 rounds once, in store
      if constexpr (std::is_same_v<D, bool>) {
        dst[i] = f != 0.f;
      } else if constexpr (is_float16_or_bfloat16<D>) {
        store(dst, i, f);
      } else {
        dst[i] = static_cast<D>(f);
      }
    } else if constexpr (is_float16_or_bfloat16<D>) {
      store(dst, i, static_cast<float>(src[i]));
    } else if constexpr (std::is_same_v<D, bool>) {
      dst[i] = src[i] != S(0);
    } else {
      dst[i] = static_cast<D>(src[i]);
    }
  }
}

template <class T, class I>
__global__ void gather_kernel(const T* __restrict__ data, const I* __restrict__ idx, T* __restrict__ out,
                              int64_t axis_dim, int64_t num_idx, int64_t inner, int64_t n, DeviceFault* fault) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t k = i % inner;
    const int64_t j = (i / inner) % num_idx;
    const int64_t o = i / (inner * num_idx);
    const int64_t given = static_cast<int64_t>(idx[j]);
    const int64_t v = given < 0 ? given + axis_dim : given;
    if (v < 0 || v >= axis_dim) {
      out[i] = T{};
      if (k == 0) {
        fault->value = given;
        fault->limit = axis_dim;
        fault->code = FaultCode::gather_index;
      }
      continue;
    }
    out[i] = data[(o * axis_dim + v) * inner + k];
  }
}

__global__ void merge_fault_kernel(DeviceFault* from, DeviceFault* to) {
  if (from->code == FaultCode::none) return;
  if (to->code == FaultCode::none) *to = *from;
  from->code = FaultCode::none;
}

template <class T>
__global__ void reduce_kernel(ReduceOp op, const T* __restrict__ x, T* __restrict__ y, int64_t n, int64_t inner,
                              int64_t outputs) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < outputs;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t base = (i / inner) * n * inner + i % inner;
    float acc = op == ReduceOp::max ? -INFINITY : (op == ReduceOp::min ? INFINITY : 0.f);
    for (int64_t j = 0; j < n; ++j) {
      const float v = load(x, base + j * inner);
      switch (op) {
        case ReduceOp::sum:
        case ReduceOp::mean: acc += v; break;
        case ReduceOp::sum_square: acc += v * v; break;
        case ReduceOp::max: acc = (v != v || v > acc) ? v : acc; break;
        case ReduceOp::min: acc = (v != v || v < acc) ? v : acc; break;
      }
    }
    if (op == ReduceOp::mean) acc /= static_cast<float>(n);
    store(y, i, acc);
  }
}

__device__ __forceinline__ bool apply_predicate(PredicateOp op, float a, float b) {
  switch (op) {
    case PredicateOp::equal: return a == b;
    case PredicateOp::less: return a < b;
    case PredicateOp::greater: return a > b;
    case PredicateOp::less_equal: return a <= b;
    case PredicateOp::greater_equal: return a >= b;
    case PredicateOp::logical_and: return a != 0.f && b != 0.f;
    case PredicateOp::logical_or: return a != 0.f || b != 0.f;
    case PredicateOp::logical_xor: return (a != 0.f) != (b != 0.f);
  }
  return false;
}

template <class T, class L, class I>
__global__ void predicate_kernel(PredicateOp op, const T* __restrict__ a, const T* __restrict__ b,
                                 bool* __restrict__ out, L l, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    I ia, ib;
    offsets(l, i, ia, ib);
    out[i] = apply_predicate(op, load(a, ia), load(b, ib));
  }
}

template <class T>
__global__ void predicate_unary_kernel(bool is_nan, const T* __restrict__ x, bool* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = load(x, i);
    y[i] = is_nan ? v != v : v == 0.f;
  }
}

template <class T>
__global__ void where_kernel(const bool* __restrict__ cond, const T* __restrict__ x, const T* __restrict__ y,
                             T* __restrict__ out, Layout l, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t ic = 0, ix = 0, iy = 0, rest = i;
    for (int d = l.rank - 1; d >= 0; --d) {
      const int64_t c = rest % l.dims[d];
      rest /= l.dims[d];
      ic += c * l.stride[0][d];
      ix += c * l.stride[1][d];
      iy += c * l.stride[2][d];
    }
    out[i] = cond[ic] ? x[ix] : y[iy];
  }
}

// One thread per output element; window positions outside the input are skipped.
template <class T>
__global__ void pool2d_kernel(const T* __restrict__ x, T* __restrict__ y, Pool2d p, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = i % p.out_w, oh = (i / p.out_w) % p.out_h, plane = i / (p.out_w * p.out_h);
    const T* in = x + plane * p.in_h * p.in_w;
    const int64_t h0 = oh * p.s_h - p.pad_top, w0 = ow * p.s_w - p.pad_left;
    float acc = p.max ? -INFINITY : 0.f;
    int64_t count = 0, padded = 0;
    for (int64_t kh = 0; kh < p.k_h; ++kh) {
      const int64_t ih = h0 + kh * p.d_h;
      const bool row_in = ih >= 0 && ih < p.in_h;
      const bool row_padded = ih >= -p.pad_top && ih < p.in_h + p.pad_bottom;
      for (int64_t kw = 0; kw < p.k_w; ++kw) {
        const int64_t iw = w0 + kw * p.d_w;
        padded += row_padded && iw >= -p.pad_left && iw < p.in_w + p.pad_right;
        if (!row_in || iw < 0 || iw >= p.in_w) continue;
        const float v = load(in, ih * p.in_w + iw);
        if (p.max) acc = (count == 0 || v > acc) ? v : acc;  // the first element, then larger ones (as the CPU)
        else acc += v;
        ++count;
      }
    }
    if (!p.max) {
      const int64_t div = p.include_pad ? padded : count;
      acc = div > 0 ? acc / static_cast<float>(div) : 0.f;
    }
    store(y, i, acc);
  }
}

template <class T>
__global__ void batch_norm_kernel(const T* __restrict__ x, const T* __restrict__ scale, const T* __restrict__ bias,
                                  const T* __restrict__ mean, const T* __restrict__ var, T* __restrict__ y, int64_t c,
                                  int64_t inner, float eps, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ch = (i / inner) % c;
    const float inv = rsqrtf(load(var, ch) + eps);
    store(y, i, (load(x, i) - load(mean, ch)) * inv * load(scale, ch) + load(bias, ch));
  }
}

template <class T>
__global__ void arithmetic_fill_kernel(T* __restrict__ dst, int64_t n, float start, float delta) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    store(dst, i, start + static_cast<float>(i) * delta);
  }
}

// One warp per query row: the row's scores in shared memory (lane j takes columns j, j+32, ...; reads of Kt's row d
// are coalesced), the softmax by warp shuffles, then lane c takes output columns c, c+32, ... (coalesced V reads).
// Blocks: x = output batch, y = a chunk of rows. Shared memory: per warp Sk scores and D query values (float).
template <class T>
__global__ void attention_kernel(const T* __restrict__ q, const T* __restrict__ kt, const T* __restrict__ v,
                                 const T* __restrict__ mask, T* __restrict__ out, Attention a) {
  extern __shared__ float smem[];
  const int warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float* p = smem + static_cast<int64_t>(warp) * (a.sk + a.d);
  float* qr = p + a.sk;
  const int64_t b = blockIdx.x;
  const AttentionOffsets off = attention_offsets(a, b);
  const int64_t qo = off.q, kto = off.kt, vo = off.v, mo = off.mask, oo = off.out;
  for (int64_t i = static_cast<int64_t>(blockIdx.y) * warps + warp; i < a.sq;
       i += static_cast<int64_t>(gridDim.y) * warps) {
    for (int64_t d = lane; d < a.d; d += 32) qr[d] = load(q, qo + i * a.q_row + d);
    __syncwarp();
    float mx = -INFINITY;
    for (int64_t j = lane; j < a.sk; j += 32) {
      float acc = 0.f;
      const T* col = kt + kto + j * a.kt_col;
      for (int64_t d = 0; d < a.d; ++d) acc += qr[d] * load(col, d * a.kt_row);
      float s = a.scale * acc;
      if (mask) s += load(mask, mo + i * a.m_row + j * a.m_col);
      p[j] = s;
      mx = fmaxf(mx, s);
    }
    for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float sum = 0.f;
    for (int64_t j = lane; j < a.sk; j += 32) {
      const float e = expf(p[j] - mx);
      p[j] = e;
      sum += e;
    }
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    for (int64_t j = lane; j < a.sk; j += 32) {
      const float pj = p[j] / sum;
      p[j] = (a.nan_to_zero && pj != pj) ? 0.f : pj;
    }
    __syncwarp();
    for (int64_t c = lane; c < a.dv; c += 32) {
      float acc = 0.f;
      for (int64_t j = 0; j < a.sk; ++j) acc += p[j] * load(v, vo + j * a.v_row + c);
      store(out, oo + i * a.o_row + c, acc);
    }
    __syncwarp();  // p and qr are rewritten for the next row
  }
}

// The masked softmax between the two products of the tensor-core attention path: one warp per row r of the
// float32 scores s ([batches * sq, sk], already scaled), p[r, :] = softmax(s[r, :] + mask) in T, NaN -> 0 when
// nan_to_zero. kPer > 0: a row of at most 32 * kPer columns stays in registers (lane takes columns lane + 32 k:
// coalesced reads and writes); kPer == 0: any length, three passes over the row (it stays in L1/L2).
template <class T, int kPer>
__global__ void attention_softmax_kernel(const float* __restrict__ s, const T* __restrict__ mask, T* __restrict__ p,
                                         Attention a, int64_t rows) {
  const int warps = blockDim.x / 32, lane = threadIdx.x % 32;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * warps + threadIdx.x / 32; r < rows;
       r += static_cast<int64_t>(gridDim.x) * warps) {
    const float* sr = s + r * a.sk;
    T* pr = p + r * a.sk;
    const T* mr = nullptr;
    if (mask) {
      int64_t rest = r / a.sq, mo = (r % a.sq) * a.m_row;
      for (int d = a.batch_rank - 1; d >= 0; --d) {
        mo += (rest % a.batch_dims[d]) * a.m_bs[d];
        rest /= a.batch_dims[d];
      }
      mr = mask + mo;
    }
    auto score = [&](int64_t j) { return mr ? sr[j] + load(mr, j * a.m_col) : sr[j]; };
    float mx = -INFINITY, sum = 0.f;
    if constexpr (kPer > 0) {
      float v[kPer];
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int64_t j = lane + 32 * k;
        v[k] = j < a.sk ? score(j) : -INFINITY;
        mx = fmaxf(mx, v[k]);
      }
      for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        v[k] = lane + 32 * k < a.sk ? expf(v[k] - mx) : 0.f;
        sum += v[k];
      }
      for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int64_t j = lane + 32 * k;
        const float pj = v[k] / sum;
        if (j < a.sk) store(pr, j, (a.nan_to_zero && pj != pj) ? 0.f : pj);
      }
    } else {
      for (int64_t j = lane; j < a.sk; j += 32) mx = fmaxf(mx, score(j));
      for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      for (int64_t j = lane; j < a.sk; j += 32) sum += expf(score(j) - mx);
      for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      for (int64_t j = lane; j < a.sk; j += 32) {
        const float pj = expf(score(j) - mx) / sum;
        store(pr, j, (a.nan_to_zero && pj != pj) ? 0.f : pj);
      }
    }
  }
}

template <class F>
cudaError_t launched(F&& launch) {
  launch();
  return cudaGetLastError();
}

}  // namespace

cudaError_t strided_copy(const void* src, void* dst, size_t elem_size, const Layout& layout, cudaStream_t stream) {
  int64_t n = numel(layout);
  if (n == 0) return cudaSuccess;
  Layout l = collapse(layout, 2);
  // Where both sides run contiguously along the innermost dim, move 16, 8 or 4 bytes per element.
  const int r = l.rank;
  for (size_t unit = 16; r > 0 && unit > elem_size; unit /= 2) {
    const int64_t w = static_cast<int64_t>(unit / elem_size);
    bool ok = l.stride[0][r - 1] == 1 && l.stride[1][r - 1] == 1 && l.dims[r - 1] % w == 0 && l.offset[0] % w == 0 &&
              l.offset[1] % w == 0 && reinterpret_cast<uintptr_t>(src) % unit == 0 &&
              reinterpret_cast<uintptr_t>(dst) % unit == 0;
    for (int d = 0; d + 1 < r && ok; ++d) ok = l.stride[0][d] % w == 0 && l.stride[1][d] % w == 0;
    if (!ok) continue;
    l.dims[r - 1] /= w;
    for (int d = 0; d + 1 < r; ++d) {
      l.stride[0][d] /= w;
      l.stride[1][d] /= w;
    }
    l.offset[0] /= w;
    l.offset[1] /= w;
    n /= w;
    elem_size = unit;
    break;
  }
  return launched([&] {
    with_index_width(l, n, [&](const auto& lw, auto nw) {
      switch (elem_size) {
        case 1: strided_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint8_t*>(src), static_cast<uint8_t*>(dst), lw, nw); break;
        case 2: strided_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint16_t*>(src), static_cast<uint16_t*>(dst), lw, nw); break;
        case 4: strided_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint32_t*>(src), static_cast<uint32_t*>(dst), lw, nw); break;
        case 8: strided_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint64_t*>(src), static_cast<uint64_t*>(dst), lw, nw); break;
        default: strided_copy_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst), lw, nw); break;
      }
    });
  });
}

cudaError_t binary(BinaryOp op, Elem t, const void* a, const void* b, void* out, const Layout& l, cudaStream_t stream) {
  const int64_t n = numel(l);
  if (n == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      binary_typed(op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), l, n, stream);
    });
  });
}

cudaError_t epilogue(Elem t, void* y, int64_t n, const void* bias, int64_t channels, int64_t inner, const void* z,
                     UnaryOp act, float alpha, float beta, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (bias && (channels <= 0 || inner <= 0)) return cudaErrorInvalidValue;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      epilogue_typed(static_cast<T*>(y), n, static_cast<const T*>(bias), channels, inner, static_cast<const T*>(z), act,
                     alpha, beta, stream);
    });
  });
}

namespace {
template <class T>
cudaError_t attention_typed(const T* q, const T* kt, const T* v, const T* mask, T* out, const Attention& a,
                            cudaStream_t stream) {
  // Warps per block: 4 where their rows fit in the default 48 KiB of shared memory, else fewer, else one warp with
  // the larger opt-in size.
  const size_t row_bytes = static_cast<size_t>(a.sk + a.d) * sizeof(float);
  int warps = 4;
  while (warps > 1 && warps * row_bytes > 48 * 1024) --warps;
  const size_t smem = warps * row_bytes;
  if (smem > 48 * 1024) {
    int max_optin = 0;
    if (cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0) != cudaSuccess ||
        smem > static_cast<size_t>(max_optin)) {
      return cudaErrorInvalidValue;
    }
    const cudaError_t e = cudaFuncSetAttribute(attention_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                               static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  // Four rows per warp where there are many rows, one where few (batch 1: every SM busy).
  const int64_t per_warp = a.batches * a.sq >= 132 * 64 ? 4 : 1;
  const int64_t chunks = (a.sq + warps * per_warp - 1) / (warps * per_warp);
  const dim3 grid(static_cast<unsigned>(a.batches), static_cast<unsigned>(chunks < 65535 ? chunks : 65535));
  return launched([&] { attention_kernel<T><<<grid, warps * 32, smem, stream>>>(q, kt, v, mask, out, a); });
}
}  // namespace

cudaError_t attention(Elem t, const void* q, const void* kt, const void* v, const void* mask, void* out,
                      const Attention& a, cudaStream_t stream) {
  if (a.batches == 0 || a.sq == 0 || a.dv == 0) return cudaSuccess;
  if (a.batches > INT32_MAX || a.batch_rank > kMaxRank) return cudaErrorInvalidConfiguration;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return attention_typed(static_cast<const T*>(q), static_cast<const T*>(kt), static_cast<const T*>(v),
                           static_cast<const T*>(mask), static_cast<T*>(out), a, stream);
  });
}

namespace {
template <class T>
cudaError_t attention_softmax_typed(const float* s, const T* mask, T* p, const Attention& a, cudaStream_t stream) {
  const int64_t rows = a.batches * a.sq;
  constexpr int kWarps = 4;
  const int64_t blocks = (rows + kWarps - 1) / kWarps;
  const unsigned grid = static_cast<unsigned>(blocks < 65535 * 8 ? blocks : 65535 * 8);
  const unsigned threads = kWarps * 32;
  return launched([&] {
    if (a.sk <= 32 * 4) attention_softmax_kernel<T, 4><<<grid, threads, 0, stream>>>(s, mask, p, a, rows);
    else if (a.sk <= 32 * 8) attention_softmax_kernel<T, 8><<<grid, threads, 0, stream>>>(s, mask, p, a, rows);
    else if (a.sk <= 32 * 16) attention_softmax_kernel<T, 16><<<grid, threads, 0, stream>>>(s, mask, p, a, rows);
    else if (a.sk <= 32 * 32) attention_softmax_kernel<T, 32><<<grid, threads, 0, stream>>>(s, mask, p, a, rows);
    else attention_softmax_kernel<T, 0><<<grid, threads, 0, stream>>>(s, mask, p, a, rows);
  });
}
}  // namespace

cudaError_t attention_softmax(Elem t, const float* scores, const void* mask, void* p, const Attention& a,
                              cudaStream_t stream) {
  if (a.batches == 0 || a.sq == 0 || a.sk == 0) return cudaSuccess;
  if (a.batch_rank > kMaxRank) return cudaErrorInvalidConfiguration;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return attention_softmax_typed(scores, static_cast<const T*>(mask), static_cast<T*>(p), a, stream);
  });
}

namespace {
__global__ void attention_pointers_kernel(const char* q, const char* kt, const char* v, char* scores, char* probs,
                                          char* y, int64_t es, int64_t pes, Attention a, void** out) {
  const int64_t n = a.batches;
  for (int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; b < n;
       b += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const AttentionOffsets o = attention_offsets(a, b);
    const int64_t cells = b * a.sq * a.sk;
    out[b] = const_cast<char*>(q + o.q * es);
    out[n + b] = const_cast<char*>(kt + o.kt * es);
    out[2 * n + b] = scores + cells * static_cast<int64_t>(sizeof(float));
    out[3 * n + b] = probs + cells * pes;
    out[4 * n + b] = const_cast<char*>(v + o.v * es);
    out[5 * n + b] = y + o.out * es;
  }
}
}  // namespace

cudaError_t attention_pointers(const void* q, const void* kt, const void* v, void* scores, void* probs, void* y,
                               int64_t es, int64_t pes, const Attention& a, void** out, cudaStream_t stream) {
  if (a.batches == 0) return cudaSuccess;
  if (a.batch_rank > kMaxRank) return cudaErrorInvalidConfiguration;
  const int threads = 128;
  const int64_t blocks = (a.batches + threads - 1) / threads;
  attention_pointers_kernel<<<static_cast<unsigned>(blocks < 4096 ? blocks : 4096), threads, 0, stream>>>(
      static_cast<const char*>(q), static_cast<const char*>(kt), static_cast<const char*>(v),
      static_cast<char*>(scores), static_cast<char*>(probs), static_cast<char*>(y), es, pes, a, out);
  return cudaGetLastError();
}

cudaError_t unary(UnaryOp op, Elem t, const void* x, void* y, int64_t n, float alpha, float beta, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      unary_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, static_cast<const T*>(x), static_cast<T*>(y), n, alpha,
                                                         beta);
    });
  });
}

cudaError_t softmax(Elem t, const void* x, void* y, int64_t outer, int64_t n, int64_t inner, bool log, cudaStream_t stream) {
  const int64_t rows = outer * inner;
  if (rows == 0 || n == 0) return cudaSuccess;
  if (rows > INT32_MAX) return cudaErrorInvalidConfiguration;
  const unsigned grid = static_cast<unsigned>(rows);
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      softmax_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), n, inner, log);
    });
  });
}

cudaError_t layer_norm(Elem t, const void* x, const void* scale, const void* bias, void* y, int64_t rows, int64_t cols,
                       float eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (rows > INT32_MAX) return cudaErrorInvalidConfiguration;
  const unsigned grid = static_cast<unsigned>(rows);
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      layer_norm_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(scale),
                                                       static_cast<const T*>(bias), static_cast<T*>(y), cols, eps);
    });
  });
}

namespace {
template <class S>
cudaError_t cast_from(Elem to, const S* src, void* dst, int64_t n, cudaStream_t stream) {
  return launched([&] {
    switch (to) {
      case Elem::f32: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<float*>(dst), n); break;
      case Elem::f16: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<__half*>(dst), n); break;
      case Elem::bf16: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<__nv_bfloat16*>(dst), n); break;
      case Elem::i32: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<int32_t*>(dst), n); break;
      case Elem::i64: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<int64_t*>(dst), n); break;
      case Elem::boolean: cast_kernel<<<grid_for(n), kThreads, 0, stream>>>(src, static_cast<bool*>(dst), n); break;
    }
  });
}
}  // namespace

cudaError_t cast(Elem from, Elem to, const void* src, void* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (from) {
    case Elem::f32: return cast_from(to, static_cast<const float*>(src), dst, n, stream);
    case Elem::f16: return cast_from(to, static_cast<const __half*>(src), dst, n, stream);
    case Elem::bf16: return cast_from(to, static_cast<const __nv_bfloat16*>(src), dst, n, stream);
    case Elem::i32: return cast_from(to, static_cast<const int32_t*>(src), dst, n, stream);
    case Elem::i64: return cast_from(to, static_cast<const int64_t*>(src), dst, n, stream);
    case Elem::boolean: return cast_from(to, static_cast<const bool*>(src), dst, n, stream);
  }
  return cudaErrorInvalidValue;
}

namespace {
template <class I>
void launch_gather(const void* data, const I* idx, void* out, size_t elem_size, int64_t axis_dim,
                   int64_t num_idx, int64_t inner, int64_t n, DeviceFault* fault, cudaStream_t stream) {
  switch (elem_size) {
    case 1: gather_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint8_t*>(data), idx, static_cast<uint8_t*>(out), axis_dim, num_idx, inner, n, fault); break;
    case 2: gather_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint16_t*>(data), idx, static_cast<uint16_t*>(out), axis_dim, num_idx, inner, n, fault); break;
    case 4: gather_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint32_t*>(data), idx, static_cast<uint32_t*>(out), axis_dim, num_idx, inner, n, fault); break;
    default: gather_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const uint64_t*>(data), idx, static_cast<uint64_t*>(out), axis_dim, num_idx, inner, n, fault); break;
  }
}
}  // namespace

cudaError_t gather(const void* data, const void* idx, bool wide, void* out, size_t elem_size, int64_t outer,
                   int64_t axis_dim, int64_t num_idx, int64_t inner, DeviceFault* fault, cudaStream_t stream) {
  const int64_t n = outer * num_idx * inner;
  if (n == 0) return cudaSuccess;
  return launched([&] {
    if (wide) {
      launch_gather(data, static_cast<const int64_t*>(idx), out, elem_size, axis_dim, num_idx, inner, n, fault, stream);
    } else {
      launch_gather(data, static_cast<const int32_t*>(idx), out, elem_size, axis_dim, num_idx, inner, n, fault, stream);
    }
  });
}

cudaError_t merge_fault(DeviceFault* from, DeviceFault* to, cudaStream_t stream) {
  return launched([&] { merge_fault_kernel<<<1, 1, 0, stream>>>(from, to); });
}

cudaError_t reduce(ReduceOp op, Elem t, const void* x, void* y, int64_t outer, int64_t n, int64_t inner,
                   cudaStream_t stream) {
  const int64_t outputs = outer * inner;
  if (outputs == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      reduce_kernel<<<grid_for(outputs), kThreads, 0, stream>>>(op, static_cast<const T*>(x), static_cast<T*>(y), n,
                                                                inner, outputs);
    });
  });
}

cudaError_t predicate(PredicateOp op, Elem t, const void* a, const void* b, bool* out, const Layout& layout,
                      cudaStream_t stream) {
  const int64_t n = numel(layout);
  if (n == 0) return cudaSuccess;
  const Layout l = collapse(layout, 2);
  auto launch = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      with_index_width(l, n, [&](const auto& lw, auto nw) {
        predicate_kernel<<<grid_for(n), kThreads, 0, stream>>>(op, static_cast<const T*>(a), static_cast<const T*>(b),
                                                               out, lw, nw);
      });
    });
  };
  return t == Elem::boolean ? launch(Tag<bool>{}) : with_float_type(t, launch);
}

cudaError_t predicate_unary(bool is_nan, Elem t, const void* x, bool* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  auto launch = [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      predicate_unary_kernel<<<grid_for(n), kThreads, 0, stream>>>(is_nan, static_cast<const T*>(x), y, n);
    });
  };
  return t == Elem::boolean ? launch(Tag<bool>{}) : with_float_type(t, launch);
}

cudaError_t where(const bool* cond, const void* x, const void* y, void* out, size_t elem_size, const Layout& layout,
                  cudaStream_t stream) {
  const int64_t n = numel(layout);
  if (n == 0) return cudaSuccess;
  const Layout l = collapse(layout, 3);
  return launched([&] {
    switch (elem_size) {
      case 1: where_kernel<<<grid_for(n), kThreads, 0, stream>>>(cond, static_cast<const uint8_t*>(x), static_cast<const uint8_t*>(y), static_cast<uint8_t*>(out), l, n); break;
      case 2: where_kernel<<<grid_for(n), kThreads, 0, stream>>>(cond, static_cast<const uint16_t*>(x), static_cast<const uint16_t*>(y), static_cast<uint16_t*>(out), l, n); break;
      case 4: where_kernel<<<grid_for(n), kThreads, 0, stream>>>(cond, static_cast<const uint32_t*>(x), static_cast<const uint32_t*>(y), static_cast<uint32_t*>(out), l, n); break;
      default: where_kernel<<<grid_for(n), kThreads, 0, stream>>>(cond, static_cast<const uint64_t*>(x), static_cast<const uint64_t*>(y), static_cast<uint64_t*>(out), l, n); break;
    }
  });
}

cudaError_t pool2d(Elem t, const void* x, void* y, const Pool2d& p, cudaStream_t stream) {
  const int64_t n = p.planes * p.out_h * p.out_w;
  if (n == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      pool2d_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<T*>(y), p, n);
    });
  });
}

cudaError_t batch_norm(Elem t, const void* x, const void* scale, const void* bias, const void* mean, const void* var,
                       void* y, int64_t n, int64_t c, int64_t inner, float eps, cudaStream_t stream) {
  const int64_t total = n * c * inner;
  if (total == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      batch_norm_kernel<<<grid_for(total), kThreads, 0, stream>>>(
          static_cast<const T*>(x), static_cast<const T*>(scale), static_cast<const T*>(bias),
          static_cast<const T*>(mean), static_cast<const T*>(var), static_cast<T*>(y), c, inner, eps, total);
    });
  });
}

cudaError_t arithmetic_fill(Elem t, void* dst, int64_t n, float start, float delta, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return with_float_type(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return launched([&] {
      arithmetic_fill_kernel<<<grid_for(n), kThreads, 0, stream>>>(static_cast<T*>(dst), n, start, delta);
    });
  });
}

}  // namespace orchard::cuda
