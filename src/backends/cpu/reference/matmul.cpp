// Matrix products: MatMul, Gemm, Einsum, MatMulInteger, QLinearMatMul. MatMul and Gemm are the triple
// loops of dense.hpp (the fast paths are the variants in opt/); Einsum and the integer products of 8-bit
// operands use the portable blocked GEMM of gemm.hpp (float64 is exact for them). float16/bfloat16 are
// computed in float.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/gemm.hpp"
#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/requantize.hpp"
#include "backends/cpu/shape_util.hpp"
#include "backends/cpu/strided_walk.hpp"
#include "backends/cpu/reference/dense.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

// Element offsets of each batch of `in_batch` (matrices of `mat` elements) when broadcast to `out_batch`.
std::vector<int64_t> batch_offsets(const Shape& in_batch, const Shape& out_batch, int64_t mat) {
  std::vector<int64_t> offs;
  offs.reserve(static_cast<size_t>(out_batch.numel()));
  for_each_offset(out_batch.dims(), broadcast_strides(in_batch, out_batch), [&](int64_t off) { offs.push_back(off * mat); });
  return offs;
}

}  // namespace

Result<MatMulPlan> plan_matmul(const Shape& a, const Shape& b) {
  if (a.rank() == 0 || b.rank() == 0) {
    return invalid_argument("operands must have rank >= 1, got ", a.to_string(), " and ", b.to_string());
  }
  std::vector<int64_t> ad = a.dims(), bd = b.dims();
  if (a.rank() == 1) ad.insert(ad.begin(), 1);
  if (b.rank() == 1) bd.push_back(1);
  MatMulPlan p;
  p.M = ad[ad.size() - 2];
  p.K = ad[ad.size() - 1];
  p.N = bd[bd.size() - 1];
  if (bd[bd.size() - 2] != p.K) {
    return invalid_argument("inner dimensions differ: ", a.to_string(), " x ", b.to_string());
  }
  p.a_batch = Shape(ad.begin(), ad.end() - 2);
  p.b_batch = Shape(bd.begin(), bd.end() - 2);
  ORCHARD_ASSIGN_OR_RETURN(Shape batch, broadcast_shapes({&p.a_batch, &p.b_batch}));
  p.out = batch;
  if (a.rank() > 1) p.out.push_back(p.M);
  if (b.rank() > 1) p.out.push_back(p.N);
  p.batches = batch.numel();
  // A batched A times an unbatched B is one tall product: fold A's batch into M.
  if (p.b_batch.numel() == 1 && p.a_batch == batch && p.batches > 1) {
    p.M *= p.batches;
    p.batches = 1;
    p.a_off = {0};
    p.b_off = {0};
    return p;
  }
  p.a_off = batch_offsets(p.a_batch, batch, p.M * p.K);
  p.b_off = batch_offsets(p.b_batch, batch, p.K * p.N);
  return p;
}

template <class C>
void gemm_plain(bool ta, bool tb, int64_t M, int64_t N, int64_t K, C alpha, const C* A, int64_t lda, const C* B,
                int64_t ldb, C beta, C* Y, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      C acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C& y = Y[i * ldc + j];
      y = beta == C(0) ? alpha * acc : alpha * acc + beta * y;
    }
  }
}

template <class C>
void matmul_plain(const MatMulPlan& p, const C* A, const C* B, C* Y) {
  for (int64_t b = 0; b < p.batches; ++b) {
    gemm_plain<C>(false, false, p.M, p.N, p.K, C(1), A + p.a_off[static_cast<size_t>(b)], p.K,
                  B + p.b_off[static_cast<size_t>(b)], p.N, C(0), Y + b * p.M * p.N, p.N);
  }
}

template void gemm_plain<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
                                int64_t, float, float*, int64_t);
template void gemm_plain<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                                 const double*, int64_t, double, double*, int64_t);
template void matmul_plain<float>(const MatMulPlan&, const float*, const float*, float*);
template void matmul_plain<double>(const MatMulPlan&, const double*, const double*, double*);

namespace {

// ---- helpers -------------------------------------------------------------------------------------

// Integer product with modular (wrap-around) arithmetic, as a row-times-matrix loop.
template <class C>
void gemm_integer(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const C* A, int64_t lda,
                  const C* B, int64_t ldb, double beta, C* Y, int64_t ldc) {
  using U = std::conditional_t<std::is_signed_v<C>, int64_t, uint64_t>;
  std::vector<uint64_t> acc(static_cast<size_t>(N));
  for (int64_t i = 0; i < M; ++i) {
    std::fill(acc.begin(), acc.end(), 0);
    for (int64_t k = 0; k < K; ++k) {
      const uint64_t a = static_cast<uint64_t>(static_cast<U>(ta ? A[k * lda + i] : A[i * lda + k]));
      if (a == 0) continue;
      for (int64_t j = 0; j < N; ++j) {
        const uint64_t b = static_cast<uint64_t>(static_cast<U>(tb ? B[j * ldb + k] : B[k * ldb + j]));
        acc[static_cast<size_t>(j)] += a * b;
      }
    }
    C* y = Y + i * ldc;
    for (int64_t j = 0; j < N; ++j) {
      const C v = static_cast<C>(static_cast<U>(acc[static_cast<size_t>(j)]));
      if (alpha == 1.0 && beta == 0.0) y[j] = v;
      else y[j] = static_cast<C>(alpha * static_cast<double>(v) + (beta == 0.0 ? 0.0 : beta * static_cast<double>(y[j])));
    }
  }
}

// Y = alpha * op(A) op(B) + beta * Y in compute type C as plain loops (MatMul and Gemm).
template <class C>
void gemm_ref(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const C* A, int64_t lda, const C* B,
              int64_t ldb, double beta, C* Y, int64_t ldc) {
  if constexpr (std::is_floating_point_v<C>) {
    gemm_plain<C>(ta, tb, M, N, K, static_cast<C>(alpha), A, lda, B, ldb, static_cast<C>(beta), Y, ldc);
  } else {
    gemm_integer<C>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Y, ldc);
  }
}

// Y = alpha * op(A) op(B) + beta * Y in compute type C (float, double or an integer type) with the blocked
// GEMM of gemm.hpp (Einsum).
template <class C>
void gemm_any(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const C* A, int64_t lda, const C* B,
              int64_t ldb, double beta, C* Y, int64_t ldc, ThreadPool* pool) {
  if constexpr (std::is_same_v<C, float>) {
    gemm_f32(ta, tb, M, N, K, static_cast<float>(alpha), A, lda, B, ldb, static_cast<float>(beta), Y, ldc, pool);
  } else if constexpr (std::is_same_v<C, double>) {
    gemm_f64(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Y, ldc, pool);
  } else {
    gemm_integer<C>(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Y, ldc);
  }
}

// Runs fn(batch, pool) for every batch: batches in parallel (each single-threaded) when there are
// many small ones, else one after another with the pool inside each product.
template <class F>
void for_batches(ThreadPool& pool, int64_t batches, double flops_per_batch, F&& fn) {
  if (batches > 1 && pool.size() > 1 && flops_per_batch < 2e7 && flops_per_batch * static_cast<double>(batches) > 1e5) {
    const int64_t grain = std::max<int64_t>(1, static_cast<int64_t>(1e5 / std::max(flops_per_batch, 1.0)));
    pool.parallel_for(batches, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) fn(b, nullptr);
    });
  } else {
    for (int64_t b = 0; b < batches; ++b) fn(b, &pool);
  }
}

// ---- MatMul --------------------------------------------------------------------------------------

Status matmul(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
  if (a->dtype() != b->dtype()) {
    return invalid_argument("operands have different element types: ", a->description(), " and ", b->description());
  }
  ORCHARD_ASSIGN_OR_RETURN(MatMulPlan p, plan_matmul(a->shape(), b->shape()));
  return dispatch<kFloats | kSignedInts | kUnsignedInts>(a->dtype(), "MatMul", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, a->dtype(), p.out));
    if (y.numel() == 0) return Status::OK();
    std::vector<C> ta, tb;
    const C* pa = as_compute<T>(*a, ta);
    const C* pb = as_compute<T>(*b, tb);
    ComputeOutput<T> out(y);
    C* py = out.data();
    const int64_t M = p.M, N = p.N, K = p.K;
    for (int64_t bi = 0; bi < p.batches; ++bi) {
      gemm_ref<C>(false, false, M, N, K, 1.0, pa + p.a_off[bi], K, pb + p.b_off[bi], N, 0.0, py + bi * M * N, N);
    }
    out.finish();
    return Status::OK();
  });
}

// ---- Gemm ----------------------------------------------------------------------------------------

Status gemm(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
  const graph::Node& node = ctx.node();
  const bool trans_a = node.attr_int("transA", 0) != 0;
  const bool trans_b = node.attr_int("transB", 0) != 0;
  const double alpha = node.attr_float("alpha", 1.0f);
  const double beta = node.attr_float("beta", 1.0f);
  if (a->dtype() != b->dtype()) {
    return invalid_argument("operands have different element types: ", a->description(), " and ", b->description());
  }
  if (a->rank() != 2 || b->rank() != 2) {
    return invalid_argument("A and B must be matrices, got ", a->description(), " and ", b->description());
  }
  const int64_t M = trans_a ? a->dim(1) : a->dim(0);
  const int64_t K = trans_a ? a->dim(0) : a->dim(1);
  const int64_t Kb = trans_b ? b->dim(1) : b->dim(0);
  const int64_t N = trans_b ? b->dim(0) : b->dim(1);
  if (K != Kb) {
    return invalid_argument("inner dimensions differ: op(A) is ", M, "x", K, ", op(B) is ", Kb, "x", N);
  }
  const Tensor* c = nullptr;
  if (ctx.has_input(2)) {
    ORCHARD_ASSIGN_OR_RETURN(c, ctx.input_tensor(2));
    if (c->dtype() != a->dtype()) {
      return invalid_argument("C has element type ", dtype_name(c->dtype()), ", A has ", dtype_name(a->dtype()));
    }
  } else if (node.opset < 11) {
    return invalid_argument("input C is required before opset 11");
  }
  const Shape out{M, N};
  if (c != nullptr) {
    auto bs = broadcast_shapes({&c->shape(), &out});
    if (!bs.ok() || *bs != out) {
      return invalid_argument("C of shape ", c->shape().to_string(), " cannot be broadcast to ", out.to_string());
    }
  }
  return dispatch<kFloats | kSignedInts | kUnsignedInts>(a->dtype(), "Gemm", [&](auto tag) -> Status {
    using T = decltype(tag);
    using Cc = compute_t<T>;
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, a->dtype(), out));
    if (y.numel() == 0) return Status::OK();
    std::vector<Cc> ta, tb;
    const Cc* pa = as_compute<T>(*a, ta);
    const Cc* pb = as_compute<T>(*b, tb);
    ComputeOutput<T> result(y);
    Cc* py = result.data();
    double eff_beta = 0.0;
    if (c != nullptr && beta != 0.0) {
      // Y = broadcast(C), then the product accumulates into it with beta.
      const T* pc = c->data<T>();
      const auto st = broadcast_strides(c->shape(), out);
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) py[i * N + j] = load(pc[i * st[0] + j * st[1]]);
      eff_beta = beta;
    }
    gemm_ref<Cc>(trans_a, trans_b, M, N, K, alpha, pa, a->dim(1), pb, b->dim(1), eff_beta, py, N);
    result.finish();
    return Status::OK();
  });
}

// ---- Einsum --------------------------------------------------------------------------------------
// Each operand becomes a dense term with one label per axis; repeated labels are reduced to their
// diagonal, labels nobody else needs are summed out, and terms are contracted pairwise as batched
// matrix products ([batch, M, K] x [batch, K, N]).

template <class C>
struct Term {
  std::vector<int> labels;  // unique
  std::vector<int64_t> dims;
  std::vector<C> data;      // row-major over dims
};

// Returns `t` with its axes reordered to `order` (a permutation of t.labels).
template <class C>
Term<C> permute(const Term<C>& t, const std::vector<int>& order) {
  if (order == t.labels) return t;
  const size_t r = order.size();
  Term<C> out;
  out.labels = order;
  out.dims.resize(r);
  std::vector<int64_t> src_strides(r);
  std::vector<int64_t> own(t.labels.size(), 1);
  for (size_t d = t.labels.size(); d-- > 1;) own[d - 1] = own[d] * t.dims[d];
  for (size_t i = 0; i < r; ++i) {
    const size_t from = static_cast<size_t>(std::find(t.labels.begin(), t.labels.end(), order[i]) - t.labels.begin());
    out.dims[i] = t.dims[from];
    src_strides[i] = own[from];
  }
  out.data.resize(t.data.size());
  if (t.data.empty()) return out;
  const size_t outer_rank = r ? r - 1 : 0;
  const int64_t inner = r ? out.dims[r - 1] : 1, inner_stride = r ? src_strides[r - 1] : 0;
  const auto cut = static_cast<std::ptrdiff_t>(outer_rank);
  StridedWalk<1> w(std::vector<int64_t>(out.dims.begin(), out.dims.begin() + cut),
                   {std::vector<int64_t>(src_strides.begin(), src_strides.begin() + cut)});
  for (size_t o = 0; o < out.data.size(); o += static_cast<size_t>(inner), w.next()) {
    for (int64_t k = 0; k < inner; ++k) {
      out.data[o + static_cast<size_t>(k)] = t.data[static_cast<size_t>(w.offset() + k * inner_stride)];
    }
  }
  return out;
}

// Sums `t` over the labels not in `keep`.
template <class C>
Term<C> sum_out(const Term<C>& t, const std::vector<int>& keep) {
  std::vector<int> kept, gone;
  for (int l : t.labels) (std::find(keep.begin(), keep.end(), l) != keep.end() ? kept : gone).push_back(l);
  if (gone.empty()) return t;
  std::vector<int> order = kept;
  order.insert(order.end(), gone.begin(), gone.end());
  Term<C> p = permute(t, order);
  Term<C> out;
  out.labels = kept;
  int64_t outer = 1, inner = 1;
  for (size_t i = 0; i < kept.size(); ++i) {
    out.dims.push_back(p.dims[i]);
    outer *= p.dims[i];
  }
  for (size_t i = kept.size(); i < order.size(); ++i) inner *= p.dims[i];
  out.data.assign(static_cast<size_t>(outer), C(0));
  for (int64_t o = 0; o < outer; ++o) {
    C s = 0;
    for (int64_t k = 0; k < inner; ++k) s += p.data[static_cast<size_t>(o * inner + k)];
    out.data[static_cast<size_t>(o)] = s;
  }
  return out;
}

// Contracts two terms over their shared labels not in `keep`; the result has labels
// [batch..., a-only..., b-only...].
template <class C>
Term<C> contract(const Term<C>& a, const Term<C>& b, const std::vector<int>& keep, ThreadPool& pool) {
  auto in = [](const std::vector<int>& v, int l) { return std::find(v.begin(), v.end(), l) != v.end(); };
  std::vector<int> batch, m_labels, n_labels, k_labels;
  std::vector<int64_t> batch_dims, m_dims, n_dims;
  int64_t B = 1, M = 1, N = 1, K = 1;
  for (size_t i = 0; i < a.labels.size(); ++i) {
    const int l = a.labels[i];
    if (in(b.labels, l)) {
      if (in(keep, l)) {
        batch.push_back(l);
        batch_dims.push_back(a.dims[i]);
        B *= a.dims[i];
      } else {
        k_labels.push_back(l);
        K *= a.dims[i];
      }
    } else {
      m_labels.push_back(l);
      m_dims.push_back(a.dims[i]);
      M *= a.dims[i];
    }
  }
  for (size_t i = 0; i < b.labels.size(); ++i) {
    if (!in(a.labels, b.labels[i])) {
      n_labels.push_back(b.labels[i]);
      n_dims.push_back(b.dims[i]);
      N *= b.dims[i];
    }
  }
  std::vector<int> ao = batch, bo = batch;
  ao.insert(ao.end(), m_labels.begin(), m_labels.end());
  ao.insert(ao.end(), k_labels.begin(), k_labels.end());
  bo.insert(bo.end(), k_labels.begin(), k_labels.end());
  bo.insert(bo.end(), n_labels.begin(), n_labels.end());
  const Term<C> pa = permute(a, ao), pb = permute(b, bo);
  Term<C> out;
  out.labels = batch;
  out.labels.insert(out.labels.end(), m_labels.begin(), m_labels.end());
  out.labels.insert(out.labels.end(), n_labels.begin(), n_labels.end());
  out.dims = batch_dims;
  out.dims.insert(out.dims.end(), m_dims.begin(), m_dims.end());
  out.dims.insert(out.dims.end(), n_dims.begin(), n_dims.end());
  out.data.assign(static_cast<size_t>(B * M * N), C(0));
  if (B * M * N == 0) return out;
  for_batches(pool, B, 2.0 * M * N * K, [&](int64_t bi, ThreadPool* tp) {
    gemm_any<C>(false, false, M, N, K, 1.0, pa.data.data() + bi * M * K, K, pb.data.data() + bi * K * N, N, 0.0,
                out.data.data() + bi * M * N, N, tp);
  });
  return out;
}

struct EinsumSpec {
  std::vector<std::vector<int>> inputs;  // labels per operand axis (ellipsis dims expanded)
  std::vector<int> output;
  std::vector<int64_t> sizes;            // per label
};

// Parses `equation` for operands of `shapes`. Letters get labels 0..51; the dims an ellipsis covers get
// labels 52 + position, right-aligned across operands (numpy broadcasting).
Result<EinsumSpec> parse_einsum(const std::string& equation, const std::vector<Shape>& shapes) {
  std::string eq;
  for (char ch : equation)
    if (ch != ' ') eq += ch;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    const size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (terms.size() != shapes.size()) {
    return invalid_argument("equation '", equation, "' has ", terms.size(), " operands, but ", shapes.size(), " were given");
  }
  auto letter = [](char ch) -> int {
    if (ch >= 'a' && ch <= 'z') return ch - 'a';
    if (ch >= 'A' && ch <= 'Z') return 26 + (ch - 'A');
    return -1;
  };
  // Parse each term into letters with an optional ellipsis position.
  struct Parsed {
    std::vector<int> letters;
    int ellipsis_at = -1;  // index into letters where "..." sits
  };
  auto parse_term = [&](const std::string& s, Parsed& p) -> Status {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '.') {
        if (s.compare(i, 3, "...") != 0 || p.ellipsis_at >= 0) return invalid_argument("equation '", equation, "' has a malformed ellipsis");
        p.ellipsis_at = static_cast<int>(p.letters.size());
        i += 2;
      } else {
        const int l = letter(s[i]);
        if (l < 0) return invalid_argument("equation '", equation, "' has an invalid character '", s[i], "'");
        p.letters.push_back(l);
      }
    }
    return Status::OK();
  };
  std::vector<Parsed> parsed(terms.size());
  int64_t ell_rank = 0;
  for (size_t t = 0; t < terms.size(); ++t) {
    ORCHARD_RETURN_IF_ERROR(parse_term(terms[t], parsed[t]));
    const int64_t rank = static_cast<int64_t>(shapes[t].rank());
    const int64_t nl = static_cast<int64_t>(parsed[t].letters.size());
    if (parsed[t].ellipsis_at < 0 ? rank != nl : rank < nl) {
      return invalid_argument("operand ", t, " of shape ", shapes[t].to_string(), " does not match term '", terms[t], "'");
    }
    if (parsed[t].ellipsis_at >= 0) ell_rank = std::max(ell_rank, rank - nl);
  }
  EinsumSpec spec;
  spec.sizes.assign(static_cast<size_t>(52 + ell_rank), -1);
  auto set_size = [&](int l, int64_t d) -> Status {
    int64_t& s = spec.sizes[static_cast<size_t>(l)];
    if (s == -1 || s == 1) s = d;
    else if (d != s && d != 1) return invalid_argument("equation '", equation, "': a label has sizes ", s, " and ", d);
    return Status::OK();
  };
  for (size_t t = 0; t < terms.size(); ++t) {
    const Parsed& p = parsed[t];
    const int64_t rank = static_cast<int64_t>(shapes[t].rank());
    const int64_t n_ell = p.ellipsis_at < 0 ? 0 : rank - static_cast<int64_t>(p.letters.size());
    std::vector<int>& labels = spec.inputs.emplace_back();
    for (int i = 0; i <= static_cast<int>(p.letters.size()); ++i) {
      if (i == p.ellipsis_at)
        for (int64_t e = 0; e < n_ell; ++e) labels.push_back(static_cast<int>(52 + ell_rank - n_ell + e));
      if (i < static_cast<int>(p.letters.size())) labels.push_back(p.letters[static_cast<size_t>(i)]);
    }
    for (size_t d = 0; d < labels.size(); ++d) ORCHARD_RETURN_IF_ERROR(set_size(labels[d], shapes[t][d]));
  }
  if (arrow != std::string::npos) {
    Parsed out;
    ORCHARD_RETURN_IF_ERROR(parse_term(eq.substr(arrow + 2), out));
    for (int i = 0; i <= static_cast<int>(out.letters.size()); ++i) {
      if (i == out.ellipsis_at)
        for (int64_t e = 0; e < ell_rank; ++e) spec.output.push_back(static_cast<int>(52 + e));
      if (i < static_cast<int>(out.letters.size())) {
        const int l = out.letters[static_cast<size_t>(i)];
        if (spec.sizes[static_cast<size_t>(l)] < 0) return invalid_argument("equation '", equation, "': output label not in any input");
        if (std::find(spec.output.begin(), spec.output.end(), l) != spec.output.end()) {
          return invalid_argument("equation '", equation, "': output label repeated");
        }
        spec.output.push_back(l);
      }
    }
  } else {
    // Implicit output: the broadcast ellipsis dims, then letters used exactly once, alphabetically.
    for (int64_t e = 0; e < ell_rank; ++e) spec.output.push_back(static_cast<int>(52 + e));
    std::vector<int> count(52, 0);
    for (const Parsed& p : parsed)
      for (int l : p.letters) ++count[static_cast<size_t>(l)];
    // ASCII order: upper case letters (labels 26..51) sort before lower case ones.
    for (int l = 26; l < 52; ++l)
      if (count[static_cast<size_t>(l)] == 1) spec.output.push_back(l);
    for (int l = 0; l < 26; ++l)
      if (count[static_cast<size_t>(l)] == 1) spec.output.push_back(l);
  }
  return spec;
}

// Turns operand data (axes labelled `labels`, possibly repeated) into a term with unique labels, taking
// diagonals and expanding size-1 axes that broadcast against other operands.
template <class C>
Term<C> make_term(const C* data, const Shape& shape, const std::vector<int>& labels, const std::vector<int64_t>& sizes) {
  Term<C> t;
  std::vector<int64_t> strides = strides_of(shape);
  std::vector<int64_t> stride_of;  // per unique label: summed strides (diagonal)
  for (size_t d = 0; d < labels.size(); ++d) {
    const int l = labels[d];
    const int64_t st = shape[d] == 1 ? 0 : strides[d];
    auto it = std::find(t.labels.begin(), t.labels.end(), l);
    if (it == t.labels.end()) {
      t.labels.push_back(l);
      t.dims.push_back(sizes[static_cast<size_t>(l)]);
      stride_of.push_back(st);
    } else {
      stride_of[static_cast<size_t>(it - t.labels.begin())] += st;
    }
  }
  for_each_offset(t.dims, stride_of, [&](int64_t off) { t.data.push_back(data[off]); });
  return t;
}

Status einsum(OpContext& ctx) {
  const std::string equation = ctx.node().attr_string("equation", "");
  if (equation.empty()) return invalid_argument("attribute 'equation' is missing");
  std::vector<const Tensor*> xs;
  std::vector<Shape> shapes;
  for (size_t i = 0; i < ctx.num_inputs(); ++i) {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(i));
    if (!xs.empty() && x->dtype() != xs[0]->dtype()) {
      return invalid_argument("operands have different element types: ", xs[0]->description(), " and ", x->description());
    }
    xs.push_back(x);
    shapes.push_back(x->shape());
  }
  if (xs.empty()) return invalid_argument("Einsum needs at least one operand");
  ORCHARD_ASSIGN_OR_RETURN(EinsumSpec spec, parse_einsum(equation, shapes));
  return dispatch<kFloats | kSignedInts | kUnsignedInts>(xs[0]->dtype(), "Einsum", [&](auto tag) -> Status {
    using T = decltype(tag);
    using C = compute_t<T>;
    std::vector<Term<C>> terms;
    for (size_t i = 0; i < xs.size(); ++i) {
      std::vector<C> tmp;
      const C* p = as_compute<T>(*xs[i], tmp);
      terms.push_back(make_term<C>(p, shapes[i], spec.inputs[i], spec.sizes));
    }
    // Labels still needed after term i: the output's and those of terms after i.
    auto needed_after = [&](size_t i) {
      std::vector<int> keep = spec.output;
      for (size_t j = i + 1; j < terms.size(); ++j) keep.insert(keep.end(), terms[j].labels.begin(), terms[j].labels.end());
      return keep;
    };
    Term<C> acc = sum_out(terms[0], needed_after(0));
    for (size_t i = 1; i < terms.size(); ++i) {
      std::vector<int> keep = needed_after(i);
      // Sum out what only this term has and nobody needs, then contract with the running product.
      std::vector<int> keep_b = keep;
      keep_b.insert(keep_b.end(), acc.labels.begin(), acc.labels.end());
      Term<C> b = sum_out(terms[i], keep_b);
      std::vector<int> keep_a = keep;
      keep_a.insert(keep_a.end(), b.labels.begin(), b.labels.end());
      acc = sum_out(acc, keep_a);
      acc = contract(acc, b, keep, ctx.pool());
    }
    acc = sum_out(acc, spec.output);
    acc = permute(acc, spec.output);
    Shape out_shape;
    for (int l : spec.output) out_shape.push_back(spec.sizes[static_cast<size_t>(l)]);
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, xs[0]->dtype(), out_shape));
    T* o = y.data<T>();
    for (int64_t i = 0; i < y.numel(); ++i) o[i] = store<T>(acc.data[static_cast<size_t>(i)]);
    return Status::OK();
  });
}

// ---- MatMulInteger, QLinearMatMul ----------------------------------------------------------------

// A zero point or scale: one value (per tensor), one per row of A / column of B (`per` of them), or
// one per row / column of every batch.
struct QuantParam {
  const Tensor* t = nullptr;
  int64_t n = 0;
  double fallback = 0;  // when the input is omitted
  double at(int64_t i) const { return t == nullptr ? fallback : element_as_double(*t, n == 1 ? 0 : i % n); }
};

Result<QuantParam> quant_param(const OpContext& ctx, size_t input, const char* what, int64_t per, int64_t batches) {
  QuantParam q;
  if (!ctx.has_input(input)) return q;
  q.t = &ctx.input(input);
  q.n = q.t->numel();
  if (q.n != 1 && q.n != per && q.n != per * batches) {
    return invalid_argument(what, " of shape ", q.t->shape().to_string(), " must have 1, ", per, " or ", per * batches,
                            " elements");
  }
  return q;
}

// Computes the integer products sum_k (a - a_zp)(b - b_zp) of every output element into `out`, as
// doubles (exact for 8-bit operands).
Status integer_matmul(OpContext& ctx, const Tensor& a, const Tensor& b, const QuantParam& a_zp, const QuantParam& b_zp,
                      MatMulPlan& p, std::vector<double>& out) {
  const int64_t K = p.K, N = p.N;
  // Operands minus their zero points, in double. a_zp is per row of A (over A's own batches), b_zp per
  // column of B.
  std::vector<double> ad(static_cast<size_t>(a.numel())), bd(static_cast<size_t>(b.numel()));
  for (int64_t i = 0; i < a.numel(); ++i) ad[static_cast<size_t>(i)] = element_as_double(a, i) - a_zp.at(i / K);
  for (int64_t i = 0; i < b.numel(); ++i) {
    const int64_t col = (i / (K * N)) * N + i % N;
    bd[static_cast<size_t>(i)] = element_as_double(b, i) - b_zp.at(col);
  }
  const int64_t M = p.M;
  out.assign(static_cast<size_t>(p.batches * M * N), 0.0);
  if (out.empty()) return Status::OK();
  for_batches(ctx.pool(), p.batches, 2.0 * M * N * K, [&](int64_t bi, ThreadPool* tp) {
    gemm_f64(false, false, M, N, K, 1.0, ad.data() + p.a_off[bi], K, bd.data() + p.b_off[bi], N, 0.0,
             out.data() + bi * M * N, N, tp);
  });
  return Status::OK();
}

Status matmul_integer(OpContext& ctx) {
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* a, ctx.input_tensor(0));
  ORCHARD_ASSIGN_OR_RETURN(const Tensor* b, ctx.input_tensor(1));
  if (!is_8bit(a->dtype()) || !is_8bit(b->dtype())) {
    return unsupported("MatMulInteger: operands must be int8 or uint8, got ", a->description(), " and ", b->description());
  }
  ORCHARD_ASSIGN_OR_RETURN(MatMulPlan p, plan_matmul(a->shape(), b->shape()));
  const int64_t rows = a->rank() >= 2 ? a->dim(a->rank() - 2) : 1;
  const int64_t cols = b->rank() >= 2 ? b->dim(b->rank() - 1) : 1;
  ORCHARD_ASSIGN_OR_RETURN(QuantParam a_zp, quant_param(ctx, 2, "a_zero_point", rows, p.a_batch.numel()));
  ORCHARD_ASSIGN_OR_RETURN(QuantParam b_zp, quant_param(ctx, 3, "b_zero_point", cols, p.b_batch.numel()));
  std::vector<double> acc;
  ORCHARD_RETURN_IF_ERROR(integer_matmul(ctx, *a, *b, a_zp, b_zp, p, acc));
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, DType::int32, p.out));
  int32_t* o = y.data<int32_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    o[i] = static_cast<int32_t>(static_cast<int64_t>(acc[static_cast<size_t>(i)]));
  }
  return Status::OK();
}

Status qlinear_matmul(OpContext& ctx) {
  for (size_t i = 0; i < 8; ++i) {
    if (!ctx.has_input(i)) return invalid_argument("input ", i, " is required");
  }
  const Tensor& a = ctx.input(0);
  const Tensor& b = ctx.input(3);
  const Tensor& y_zp = ctx.input(7);
  if (!is_8bit(a.dtype()) || !is_8bit(b.dtype()) || !is_8bit(y_zp.dtype())) {
    return unsupported("QLinearMatMul: a, b and y_zero_point must be int8 or uint8, got ", a.description(), ", ",
                       b.description(), " and ", y_zp.description());
  }
  if (ctx.input(6).numel() != 1 || y_zp.numel() != 1) {
    return invalid_argument("y_scale and y_zero_point must be scalars");
  }
  ORCHARD_ASSIGN_OR_RETURN(MatMulPlan p, plan_matmul(a.shape(), b.shape()));
  const int64_t rows = a.rank() >= 2 ? a.dim(a.rank() - 2) : 1;
  const int64_t cols = b.rank() >= 2 ? b.dim(b.rank() - 1) : 1;
  ORCHARD_ASSIGN_OR_RETURN(QuantParam a_scale, quant_param(ctx, 1, "a_scale", rows, p.a_batch.numel()));
  ORCHARD_ASSIGN_OR_RETURN(QuantParam a_zp, quant_param(ctx, 2, "a_zero_point", rows, p.a_batch.numel()));
  ORCHARD_ASSIGN_OR_RETURN(QuantParam b_scale, quant_param(ctx, 4, "b_scale", cols, p.b_batch.numel()));
  ORCHARD_ASSIGN_OR_RETURN(QuantParam b_zp, quant_param(ctx, 5, "b_zero_point", cols, p.b_batch.numel()));
  std::vector<double> acc;
  ORCHARD_RETURN_IF_ERROR(integer_matmul(ctx, a, b, a_zp, b_zp, p, acc));
  const float y_scale = static_cast<float>(element_as_double(ctx.input(6), 0));
  const double y_zero = element_as_double(y_zp, 0);
  ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, y_zp.dtype(), p.out));
  const int64_t N = p.N;
  for (int64_t i = 0; i < y.numel(); ++i) {
    // The scale of output row i / N (a row of A) and column i % N (a column of B).
    const float multiplier =
        static_cast<float>(a_scale.at(i / N)) * static_cast<float>(b_scale.at(i % N)) / y_scale;
    store_requantized(y, i, acc[static_cast<size_t>(i)], multiplier, y_zero);
  }
  return Status::OK();
}

constexpr KernelDef kKernels[] = {
    {"", "MatMul", 1, kVerifiedOpset, stateless<matmul>},
    {"", "Gemm", 1, kVerifiedOpset, stateless<gemm>},
    {"", "Einsum", 12, kVerifiedOpset, stateless<einsum>},
    {"", "MatMulInteger", 10, kVerifiedOpset, stateless<matmul_integer>},
    {"", "QLinearMatMul", 10, kVerifiedOpset, stateless<qlinear_matmul>},
};

}  // namespace

std::span<const KernelDef> matmul_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
