// Recurrent layers: RNN, GRU, LSTM (all directions, sequence_lens, layout 0/1, every output).
// The input projection X·W^T (+ bias) is computed for all steps up front; each step then adds H·R^T
// per batch entry (batch entries run in parallel). Math is done in float (double for float64).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "backends/cpu/element_types.hpp"
#include "backends/cpu/kernel_inputs.hpp"
#include "backends/cpu/parallel.hpp"
#include "backends/cpu/reference/families.hpp"

namespace orchard::cpu::reference {

namespace {

enum class CellKind : unsigned char { rnn, gru, lstm };

// One activation function of the ONNX recurrent-op list, with its alpha/beta.
struct Activation {
  enum class Kind : unsigned char { relu, tanh, sigmoid, affine, leaky_relu, thresholded_relu, scaled_tanh, hard_sigmoid, elu, softsign, softplus };
  Kind kind = Kind::tanh;
  float alpha = 0, beta = 0;

  template <class C>
  C operator()(C x) const {
    const C a = static_cast<C>(alpha), b = static_cast<C>(beta);
    switch (kind) {
      case Kind::relu: return x > C(0) ? x : C(0);
      case Kind::tanh: return std::tanh(x);
      case Kind::sigmoid: return C(1) / (C(1) + std::exp(-x));
      case Kind::affine: return a * x + b;
      case Kind::leaky_relu: return x >= C(0) ? x : a * x;
      case Kind::thresholded_relu: return x > a ? x : C(0);
      case Kind::scaled_tanh: return a * std::tanh(b * x);
      case Kind::hard_sigmoid: return std::clamp(a * x + b, C(0), C(1));
      case Kind::elu: return x >= C(0) ? x : a * (std::exp(x) - C(1));
      case Kind::softsign: return x / (C(1) + std::fabs(x));
      case Kind::softplus: return std::log1p(std::exp(-std::fabs(x))) + std::max(x, C(0));
    }
    return x;
  }
};

struct ActivationInfo {
  std::string_view name;
  Activation::Kind kind;
  bool uses_alpha, uses_beta;
  float alpha, beta;  // the defaults of the corresponding ONNX operators
};

constexpr ActivationInfo kActivations[] = {
    {"relu", Activation::Kind::relu, false, false, 0, 0},
    {"tanh", Activation::Kind::tanh, false, false, 0, 0},
    {"sigmoid", Activation::Kind::sigmoid, false, false, 0, 0},
    {"affine", Activation::Kind::affine, true, true, 1.0f, 0.0f},
    {"leakyrelu", Activation::Kind::leaky_relu, true, false, 0.01f, 0},
    {"thresholdedrelu", Activation::Kind::thresholded_relu, true, false, 1.0f, 0},
    {"scaledtanh", Activation::Kind::scaled_tanh, true, true, 1.0f, 1.0f},
    {"hardsigmoid", Activation::Kind::hard_sigmoid, true, true, 0.2f, 0.5f},
    {"elu", Activation::Kind::elu, true, false, 1.0f, 0},
    {"softsign", Activation::Kind::softsign, false, false, 0, 0},
    {"softplus", Activation::Kind::softplus, false, false, 0, 0},
};

// Parses `activations` with `activation_alpha`/`activation_beta` (consumed in order by the functions
// that take them). Returns per_dir * dirs functions; a list for one direction is reused for both.
Result<std::vector<Activation>> parse_activations(const graph::Node& node, size_t per_dir, int dirs,
                                                  const std::vector<std::string>& defaults) {
  std::vector<std::string> names = node.attr_strings("activations");
  if (names.empty()) {
    for (int d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() == per_dir && dirs == 2) {
    const std::vector<std::string> one = names;
    names.insert(names.end(), one.begin(), one.end());
  }
  if (names.size() != per_dir * static_cast<size_t>(dirs)) {
    return invalid_argument("activations has ", names.size(), " entries; expected ", per_dir * dirs);
  }
  const std::vector<float> alphas = node.attr_floats("activation_alpha");
  const std::vector<float> betas = node.attr_floats("activation_beta");
  size_t ai = 0, bi = 0;
  std::vector<Activation> out;
  for (const std::string& name : names) {
    std::string key;
    for (char ch : name) key.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    const ActivationInfo* info = nullptr;
    for (const auto& a : kActivations) {
      if (a.name == key) info = &a;
    }
    if (info == nullptr) return unsupported("activation '", name, "' is not supported");
    Activation act;
    act.kind = info->kind;
    act.alpha = info->alpha;
    act.beta = info->beta;
    if (info->uses_alpha && ai < alphas.size()) act.alpha = alphas[ai++];
    if (info->uses_beta && bi < betas.size()) act.beta = betas[bi++];
    out.push_back(act);
  }
  return out;
}

template <class C>
C dot(const C* a, const C* b, int64_t n) {
  C s = 0;
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

class RecurrentKernel final : public OpKernel {
 public:
  template <CellKind K>
  static Result<std::unique_ptr<OpKernel>> create(const KernelCreateContext& ctx) {
    auto k = std::make_unique<RecurrentKernel>();
    const graph::Node& node = ctx.node;
    k->cell_ = K;
    k->gates_ = K == CellKind::rnn ? 1 : K == CellKind::gru ? 3 : 4;
    k->hidden_ = node.attr_int("hidden_size", -1);
    const std::string dir = node.attr_string("direction", "forward");
    if (dir == "forward") k->dirs_ = 1;
    else if (dir == "reverse") k->dirs_ = 1, k->reverse_ = true;
    else if (dir == "bidirectional") k->dirs_ = 2;
    else return invalid_argument("direction '", dir, "' is not forward, reverse or bidirectional");
    const graph::Attribute* clip = node.attr("clip");
    if (clip != nullptr) {
      if (!(clip->f > 0)) return invalid_argument("clip ", clip->f, " must be positive");
      k->clip_ = clip->f;
    }
    k->layout_ = node.opset >= 14 ? node.attr_int("layout", 0) : 0;
    if (k->layout_ != 0 && k->layout_ != 1) return invalid_argument("layout ", k->layout_, " must be 0 or 1");
    k->linear_before_reset_ = node.attr_int("linear_before_reset", 0) != 0;
    k->input_forget_ = node.attr_int("input_forget", 0) != 0;
    std::vector<std::string> defaults;
    if (K == CellKind::rnn) defaults = {"Tanh"};
    else if (K == CellKind::gru) defaults = {"Sigmoid", "Tanh"};
    else defaults = {"Sigmoid", "Tanh", "Tanh"};
    ORCHARD_ASSIGN_OR_RETURN(k->acts_, parse_activations(node, defaults.size(), k->dirs_, defaults));
    return std::unique_ptr<OpKernel>(std::move(k));
  }

  Status run(OpContext& ctx) const override {
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* x, ctx.input_tensor(0));
    return dispatch<kFloats>(x->dtype(), ctx.node().op_type, [&](auto tag) -> Status {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, double>) return run_typed<T, double>(ctx);
      else return run_typed<T, float>(ctx);
    });
  }

 private:
  template <class T, class C>
  Status run_typed(OpContext& ctx) const {
    const Tensor& x = ctx.input(0);
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* w, ctx.input_tensor(1));
    ORCHARD_ASSIGN_OR_RETURN(const Tensor* r, ctx.input_tensor(2));
    if (x.rank() != 3) return invalid_argument("X must have rank 3, got ", x.description());
    const int64_t seq = layout_ ? x.dim(1) : x.dim(0);
    const int64_t batch = layout_ ? x.dim(0) : x.dim(1);
    const int64_t in = x.dim(2);
    const int64_t dirs = dirs_;
    const int64_t gates = gates_;
    if (r->rank() != 3) return invalid_argument("R must have rank 3, got ", r->description());
    const int64_t hid = hidden_ > 0 ? hidden_ : r->dim(2);
    const int64_t gh = gates * hid;
    auto check = [&](const Tensor* t, std::string_view what, Shape want) -> Status {
      if (t->dtype() != x.dtype()) return invalid_argument(what, " ", t->description(), " must have the element type of X ", x.description());
      if (t->shape() != want) return invalid_argument(what, " ", t->description(), " must have shape ", want.to_string());
      return Status::OK();
    };
    ORCHARD_RETURN_IF_ERROR(check(w, "W", Shape{dirs, gh, in}));
    ORCHARD_RETURN_IF_ERROR(check(r, "R", Shape{dirs, gh, hid}));
    const Shape state_shape = layout_ ? Shape{batch, dirs, hid} : Shape{dirs, batch, hid};
    const Tensor* b = nullptr;
    const Tensor* h0 = nullptr;
    const Tensor* c0 = nullptr;
    const Tensor* p = nullptr;
    if (ctx.has_input(3)) {
      ORCHARD_ASSIGN_OR_RETURN(b, ctx.input_tensor(3));
      ORCHARD_RETURN_IF_ERROR(check(b, "B", Shape{dirs, 2 * gh}));
    }
    std::vector<int64_t> lens(static_cast<size_t>(batch), seq);
    if (ctx.has_input(4)) {
      ORCHARD_ASSIGN_OR_RETURN(const Tensor* sl, ctx.input_tensor(4));
      if (!dtype_is_integer(sl->dtype()) || sl->numel() != batch) {
        return invalid_argument("sequence_lens must hold ", batch, " integers, got ", sl->description());
      }
      for (int64_t i = 0; i < batch; ++i) {
        lens[i] = element_as_int(*sl, i);
        if (lens[i] < 0 || lens[i] > seq) return invalid_argument("sequence_lens[", i, "] = ", lens[i], " is outside [0, ", seq, "]");
      }
    }
    if (ctx.has_input(5)) {
      ORCHARD_ASSIGN_OR_RETURN(h0, ctx.input_tensor(5));
      ORCHARD_RETURN_IF_ERROR(check(h0, "initial_h", state_shape));
    }
    if (cell_ == CellKind::lstm && ctx.has_input(6)) {
      ORCHARD_ASSIGN_OR_RETURN(c0, ctx.input_tensor(6));
      ORCHARD_RETURN_IF_ERROR(check(c0, "initial_c", state_shape));
    }
    if (cell_ == CellKind::lstm && ctx.has_input(7)) {
      ORCHARD_ASSIGN_OR_RETURN(p, ctx.input_tensor(7));
      ORCHARD_RETURN_IF_ERROR(check(p, "P", Shape{dirs, 3 * hid}));
    }

    const Shape y_shape = layout_ ? Shape{batch, seq, dirs, hid} : Shape{seq, dirs, batch, hid};
    ORCHARD_ASSIGN_OR_RETURN(Tensor y, ctx.make_output(0, x.dtype(), y_shape));
    Tensor yh, yc;
    if (ctx.num_outputs() > 1) {
      ORCHARD_ASSIGN_OR_RETURN(yh, ctx.make_output(1, x.dtype(), state_shape));
    }
    if (cell_ == CellKind::lstm && ctx.num_outputs() > 2) {
      ORCHARD_ASSIGN_OR_RETURN(yc, ctx.make_output(2, x.dtype(), state_shape));
    }
    T* py = y.data<T>();
    std::fill(py, py + y.numel(), store<T>(C(0)));

    std::vector<C> xs, ws, rs, bs, h0s, c0s, ps;
    const C* px = as_compute<T>(x, xs);
    const C* pw = as_compute<T>(*w, ws);
    const C* pr = as_compute<T>(*r, rs);
    const C* pb = b ? as_compute<T>(*b, bs) : nullptr;
    const C* ph0 = h0 ? as_compute<T>(*h0, h0s) : nullptr;
    const C* pc0 = c0 ? as_compute<T>(*c0, c0s) : nullptr;
    const C* pp = p ? as_compute<T>(*p, ps) : nullptr;
    const bool is_gru = cell_ == CellKind::gru, is_lstm = cell_ == CellKind::lstm;
    const size_t per_dir = static_cast<size_t>(gates_ == 1 ? 1 : gates_ == 3 ? 2 : 3);
    const C clip = static_cast<C>(clip_);
    auto clipped = [&](C v) { return clip_ > 0 ? std::clamp(v, -clip, clip) : v; };
    // Index of (dir, batch) in a state tensor, and of (step, dir, batch) in Y, in elements.
    auto state_at = [&](int64_t d, int64_t bi) { return (layout_ ? bi * dirs + d : d * batch + bi) * hid; };
    auto y_at = [&](int64_t t, int64_t d, int64_t bi) {
      return (layout_ ? (bi * seq + t) * dirs + d : (t * dirs + d) * batch + bi) * hid;
    };

    std::vector<C> xw(static_cast<size_t>(seq * batch * gh));
    std::vector<C> h(static_cast<size_t>(batch * hid)), c(is_lstm ? static_cast<size_t>(batch * hid) : 0);
    const int64_t step_work = gh * (hid + 8);
    const int64_t grain = grain_for(step_work);
    for (int64_t d = 0; d < dirs; ++d) {
      const bool reverse = reverse_ || d == 1;
      const C* wd = pw + d * gh * in;
      const C* rd = pr + d * gh * hid;
      const C* wb = pb ? pb + d * 2 * gh : nullptr;
      const C* rb = pb ? wb + gh : nullptr;
      const Activation* act = acts_.data() + d * per_dir;
      // The recurrent bias of the GRU candidate gate stays inside r * (...) when linear_before_reset.
      const int64_t fold_limit = is_gru && linear_before_reset_ ? 2 * hid : gh;
      // Input projection for every (step, batch) row.
      ctx.pool().parallel_for(seq * batch, grain_for(gh * in),
                              [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
          const int64_t t = row / batch, bi = row % batch;
          const C* xr = px + (layout_ ? bi * seq + t : t * batch + bi) * in;
          C* out = xw.data() + row * gh;
          for (int64_t j = 0; j < gh; ++j) {
            C v = dot(xr, wd + j * in, in);
            if (wb) v += wb[j] + (j < fold_limit ? rb[j] : C(0));
            out[j] = v;
          }
        }
      });
      for (int64_t bi = 0; bi < batch; ++bi) {
        for (int64_t k = 0; k < hid; ++k) {
          h[bi * hid + k] = ph0 ? ph0[state_at(d, bi) + k] : C(0);
          if (is_lstm) c[bi * hid + k] = pc0 ? pc0[state_at(d, bi) + k] : C(0);
        }
      }
      const C* pi = pp ? pp + d * 3 * hid : nullptr;
      const C* po = pi ? pi + hid : nullptr;
      const C* pf = pi ? pi + 2 * hid : nullptr;
      for (int64_t s = 0; s < seq; ++s) {
        ORCHARD_RETURN_IF_ERROR(ctx.check_abort());
        ctx.pool().parallel_for(batch, grain, [&](int64_t begin, int64_t end) {
          std::vector<C> g(static_cast<size_t>(gh)), tmp(static_cast<size_t>(hid)), hn(static_cast<size_t>(hid));
          for (int64_t bi = begin; bi < end; ++bi) {
            if (s >= lens[bi]) continue;
            const int64_t t = reverse ? lens[bi] - 1 - s : s;
            C* hp = h.data() + bi * hid;
            const C* xg = xw.data() + (t * batch + bi) * gh;
            if (cell_ == CellKind::rnn) {
              for (int64_t j = 0; j < hid; ++j) hn[j] = act[0](clipped(xg[j] + dot(hp, rd + j * hid, hid)));
            } else if (is_gru) {
              // g[0,H) = z, g[H,2H) = r.
              for (int64_t j = 0; j < 2 * hid; ++j) g[j] = act[0](clipped(xg[j] + dot(hp, rd + j * hid, hid)));
              const C* rh = rd + 2 * hid * hid;
              if (linear_before_reset_) {
                for (int64_t j = 0; j < hid; ++j) {
                  const C rec = dot(hp, rh + j * hid, hid) + (rb ? rb[2 * hid + j] : C(0));
                  tmp[j] = act[1](clipped(xg[2 * hid + j] + g[hid + j] * rec));
                }
              } else {
                for (int64_t k = 0; k < hid; ++k) hn[k] = g[hid + k] * hp[k];
                for (int64_t j = 0; j < hid; ++j) tmp[j] = act[1](clipped(xg[2 * hid + j] + dot(hn.data(), rh + j * hid, hid)));
              }
              for (int64_t j = 0; j < hid; ++j) hn[j] = (C(1) - g[j]) * tmp[j] + g[j] * hp[j];
            } else {
              // Gate order i, o, f, c.
              for (int64_t j = 0; j < gh; ++j) g[j] = xg[j] + dot(hp, rd + j * hid, hid);
              C* cp = c.data() + bi * hid;
              for (int64_t j = 0; j < hid; ++j) {
                const C cprev = cp[j];
                const C ig = act[0](clipped(g[j] + (pi ? pi[j] * cprev : C(0))));
                const C fg = input_forget_ ? C(1) - ig : act[0](clipped(g[2 * hid + j] + (pf ? pf[j] * cprev : C(0))));
                const C cand = act[1](clipped(g[3 * hid + j]));
                const C cn = fg * cprev + ig * cand;
                const C og = act[0](clipped(g[hid + j] + (po ? po[j] * cn : C(0))));
                cp[j] = cn;
                hn[j] = og * act[2](cn);
              }
            }
            std::copy(hn.begin(), hn.end(), hp);
            T* yo = py + y_at(t, d, bi);
            for (int64_t j = 0; j < hid; ++j) yo[j] = store<T>(hp[j]);
          }
        });
      }
      for (int64_t bi = 0; bi < batch; ++bi) {
        if (yh.defined()) {
          T* o = yh.data<T>() + state_at(d, bi);
          for (int64_t j = 0; j < hid; ++j) o[j] = store<T>(h[bi * hid + j]);
        }
        if (yc.defined()) {
          T* o = yc.data<T>() + state_at(d, bi);
          for (int64_t j = 0; j < hid; ++j) o[j] = store<T>(c[bi * hid + j]);
        }
      }
    }
    return Status::OK();
  }

  CellKind cell_ = CellKind::rnn;
  int64_t gates_ = 1;
  int64_t hidden_ = -1;
  int dirs_ = 1;
  bool reverse_ = false;
  float clip_ = 0;  // 0: no clipping
  int64_t layout_ = 0;
  bool linear_before_reset_ = false;
  bool input_forget_ = false;
  std::vector<Activation> acts_;
};

constexpr KernelDef kKernels[] = {
    {"", "RNN", 1, kVerifiedOpset, RecurrentKernel::create<CellKind::rnn>},
    {"", "GRU", 1, kVerifiedOpset, RecurrentKernel::create<CellKind::gru>},
    {"", "LSTM", 1, kVerifiedOpset, RecurrentKernel::create<CellKind::lstm>},
};

}  // namespace

std::span<const KernelDef> rnn_kernels() { return kKernels; }

}  // namespace orchard::cpu::reference
