// Attention fusion → com.orchard FusedAttention (docs/fused_ops.md):
//   MatMul(Softmax(s · MatMul(Q·a, Kt·b) + mask, last axis), V)  →  FusedAttention(Q, Kt, V, mask; scale = s·a·b)
//   with Where(IsNaN(P), 0, P) on the probabilities P  →  the same with nan_to_zero = 1
// as BERT, GPT-2 and Whisper export it: the scale is a Mul by scalar constants on Q and/or Kt (either operand
// order) and/or a Mul or Div by a scalar constant on the product, or (ViT's export of scaled dot-product
// attention) Q and Kt each multiplied by D^(-1/4) computed from Q's runtime shape, which becomes the attribute
// head_dim_scale (1/sqrt(D) taken at run time); the mask Add (either operand order) is
// optional and may broadcast as the Add does. Every intermediate must have this pattern as its only reader, and
// Q, Kt and V must be float32 of known rank ≥ 2 (inferred, or read off a Transpose / Reshape producing them).
#include <algorithm>
#include <optional>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

struct Match {
  std::vector<size_t> nodes;  // every node of the pattern
  std::string q, kt, v, mask;
  double scale = 1;
  int head_dim_quarters = 0;  // factors D^(-1/4) (D: Q's last dim) on Q and Kt; 2 of them make 1/sqrt(D)
  bool nan_to_zero = false;   // the probabilities pass through Where(IsNaN(P), 0, P)
};

// Returns the producer of `value` when it is `op` and `value` is read only by node `reader`, else -1.
int single_use_producer(const Graph& g, const GraphUses& uses, const std::string& value, std::string_view op,
                        size_t reader) {
  const int p = uses.producer(value);
  if (p < 0 || !is_op(g.nodes[static_cast<size_t>(p)], op) || uses.sole_consumer(value) != static_cast<int>(reader)) {
    return -1;
  }
  return p;
}

// When `value` is Mul(x, c) or Mul(c, x) with c a scalar float constant, read only by `reader`: folds c into
// m.scale, adds the Mul to m.nodes and returns x; else returns `value`.
std::string strip_scalar_mul(const Graph& g, const GraphUses& uses, const std::string& value, size_t reader, Match& m) {
  const int p = single_use_producer(g, uses, value, "Mul", reader);
  if (p < 0) return value;
  const Node& n = g.nodes[static_cast<size_t>(p)];
  if (n.num_inputs() != 2 || n.outputs.size() != 1) return value;
  for (int side = 0; side < 2; ++side) {
    const auto c = scalar_constant(g, n.inputs[static_cast<size_t>(side)]);
    if (!c) continue;
    m.scale *= static_cast<double>(*c);
    m.nodes.push_back(static_cast<size_t>(p));
    return n.inputs[static_cast<size_t>(1 - side)];
  }
  return value;
}

// Returns the input of `value`'s producer when it is `op` with one input, else "".
std::string input_of(const Graph& g, const GraphUses& uses, const std::string& value, std::string_view op) {
  const int p = uses.producer(value);
  if (p < 0) return "";
  const Node& n = g.nodes[static_cast<size_t>(p)];
  return is_op(n, op) && n.num_inputs() == 1 ? n.inputs[0] : "";
}

// Returns `value` with a Cast to float32 producing it skipped.
std::string skip_float_cast(const Graph& g, const GraphUses& uses, const std::string& value) {
  const int p = uses.producer(value);
  if (p < 0) return value;
  const Node& n = g.nodes[static_cast<size_t>(p)];
  if (!is_op(n, "Cast") || n.num_inputs() != 1 || n.attr_int("to", 0) != 1) return value;
  return n.inputs[0];
}

// True when `s` is D^(-1/4), D the last dim of `q`, as PyTorch exports scaled_dot_product_attention's scale
// split over Q and K: Sqrt(Div(1, Sqrt(Slice(Shape(q), -1, end)))), each Sqrt's input optionally a Cast to float.
bool is_quarter_root_of_head_dim(const Graph& g, const GraphUses& uses, const std::string& s, const std::string& q) {
  std::string v = input_of(g, uses, s, "Sqrt");
  if (v.empty()) return false;
  const int div = uses.producer(skip_float_cast(g, uses, v));
  if (div < 0) return false;
  const Node& dn = g.nodes[static_cast<size_t>(div)];
  const auto one = dn.num_inputs() == 2 ? scalar_constant(g, dn.inputs[0]) : std::nullopt;
  if (!is_op(dn, "Div") || !one || *one != 1) return false;
  v = input_of(g, uses, dn.inputs[1], "Sqrt");
  if (v.empty()) return false;
  const int slice = uses.producer(skip_float_cast(g, uses, v));
  if (slice < 0) return false;
  const Node& sn = g.nodes[static_cast<size_t>(slice)];
  if (!is_op(sn, "Slice") || sn.num_inputs() < 3 || sn.num_inputs() > 5) return false;
  const auto starts = int_constant(g, sn.inputs[1]), ends = int_constant(g, sn.inputs[2]);
  if (!starts || !ends || *starts != std::vector<int64_t>{-1} || ends->size() != 1 || (*ends)[0] < 1) return false;
  // Optional axes [0] and steps [1].
  for (size_t k = 3; k < sn.num_inputs(); ++k) {
    if (!sn.inputs[k].empty() && int_constant(g, sn.inputs[k]) != std::vector<int64_t>{k == 3 ? 0 : 1}) return false;
  }
  const int shape = uses.producer(sn.inputs[0]);
  if (shape < 0) return false;
  const Node& shn = g.nodes[static_cast<size_t>(shape)];
  return is_op(shn, "Shape") && shn.num_inputs() == 1 && shn.inputs[0] == q && shn.attr("start") == nullptr &&
         shn.attr("end") == nullptr;
}

// When `value` is Mul(x, s) or Mul(s, x) with s = D^(-1/4) of `q`'s last dim (of x itself when `q` is null),
// read only by `reader`: counts it in m.head_dim_quarters, adds the Mul to m.nodes and returns x; else `value`.
std::string strip_head_dim_mul(const Graph& g, const GraphUses& uses, const std::string& value, size_t reader,
                               const std::string* q, Match& m) {
  const int p = single_use_producer(g, uses, value, "Mul", reader);
  if (p < 0) return value;
  const Node& n = g.nodes[static_cast<size_t>(p)];
  if (n.num_inputs() != 2 || n.outputs.size() != 1) return value;
  for (int side = 0; side < 2; ++side) {
    const std::string& x = n.inputs[static_cast<size_t>(1 - side)];
    if (!is_quarter_root_of_head_dim(g, uses, n.inputs[static_cast<size_t>(side)], q ? *q : x)) continue;
    ++m.head_dim_quarters;
    m.nodes.push_back(static_cast<size_t>(p));
    return x;
  }
  return value;
}

// Returns the rank of `value` when known: inferred, or from its producer (Transpose's perm, Reshape to a
// constant shape, Concat, a unary op or scalar Mul/Div/Add of a value of known rank).
std::optional<size_t> rank_of(const Graph& g, const GraphUses& uses, const std::string& value, int depth = 0) {
  if (auto s = declared_shape(g, value)) return s->size();
  const int p = uses.producer(value);
  if (p < 0 || depth > 8) return std::nullopt;
  const Node& n = g.nodes[static_cast<size_t>(p)];
  if (is_op(n, "Transpose") && n.attr("perm") != nullptr) return n.attr_ints("perm").size();
  if (is_op(n, "Reshape") && n.num_inputs() == 2) {
    if (auto shape = int_constant(g, n.inputs[1])) return shape->size();
    // A shape computed at run time (ViT's exports) whose length is known: the output has that rank.
    if (auto len = static_shape(g, n.inputs[1]); len && len->size() == 1 && (*len)[0] >= 0) {
      return static_cast<size_t>((*len)[0]);
    }
    return std::nullopt;
  }
  if ((is_op(n, "Softmax") || is_op(n, "Relu") || is_op(n, "Cast")) && n.num_inputs() == 1) {
    return rank_of(g, uses, n.inputs[0], depth + 1);
  }
  if (is_op(n, "Concat")) {  // every input has the output's rank
    for (const auto& in : n.inputs) {
      if (auto r = in.empty() ? std::nullopt : rank_of(g, uses, in, depth + 1)) return r;
    }
    return std::nullopt;
  }
  if ((is_op(n, "Mul") || is_op(n, "Div") || is_op(n, "Add")) && n.num_inputs() == 2) {
    // An operand of one element broadcasts without raising the rank when it is a 0-D or 1-D constant.
    for (int side = 0; side < 2; ++side) {
      const Tensor* c = constant(g, n.inputs[static_cast<size_t>(side)]);
      if (c != nullptr && c->numel() == 1 && c->rank() <= 1) {
        auto r = rank_of(g, uses, n.inputs[static_cast<size_t>(1 - side)], depth + 1);
        if (r && *r >= 1) return r;
      }
    }
  }
  return std::nullopt;
}

// Matches the pattern whose Softmax is node i.
bool match(const Graph& g, const GraphUses& uses, size_t i, Match& m) {
  const Node& sm = g.nodes[i];
  if (!is_op(sm, "Softmax") || sm.num_inputs() != 1 || sm.outputs.size() != 1) return false;
  // The softmax must run over the last axis (before opset 13 it coerces to 2-D at `axis`: the same then).
  const int64_t axis = sm.attr_int("axis", sm.opset < 13 ? 1 : -1);
  if (axis != -1 || sm.opset < 13) {
    const auto rank = rank_of(g, uses, sm.inputs[0]);
    if (!rank || (axis < 0 ? axis + static_cast<int64_t>(*rank) : axis) != static_cast<int64_t>(*rank) - 1) return false;
  }
  m.nodes = {i};
  std::string probs = sm.outputs[0];
  // Optional Where(IsNaN(P), 0, P) (PyTorch's exports: a fully masked row gives zeros, not NaN). P has exactly
  // these two readers.
  if (uses.count(probs) == 2 && !uses.read_outside(probs)) {
    const auto readers = uses.consumers(probs);
    int isnan = -1, where = -1;
    for (int r : readers) {
      const Node& rn = g.nodes[static_cast<size_t>(r)];
      if (is_op(rn, "IsNaN") && rn.num_inputs() == 1) isnan = r;
      if (is_op(rn, "Where") && rn.num_inputs() == 3 && rn.inputs[2] == probs && rn.inputs[1] != probs) where = r;
    }
    if (isnan < 0 || where < 0) return false;
    const Node& wn = g.nodes[static_cast<size_t>(where)];
    const auto zero = scalar_constant(g, wn.inputs[1]);
    if (wn.inputs[0] != g.nodes[static_cast<size_t>(isnan)].outputs[0] || !zero || *zero != 0 ||
        uses.sole_consumer(wn.inputs[0]) != where || !rank_of(g, uses, wn.inputs[1]) ||
        *rank_of(g, uses, wn.inputs[1]) > 1) {
      return false;
    }
    m.nodes.push_back(static_cast<size_t>(isnan));
    m.nodes.push_back(static_cast<size_t>(where));
    m.nan_to_zero = true;
    probs = wn.outputs[0];
  }
  const int out = uses.sole_consumer(probs);
  if (out < 0) return false;
  const Node& pv = g.nodes[static_cast<size_t>(out)];
  if (!is_op(pv, "MatMul") || pv.num_inputs() != 2 || pv.inputs[0] != probs || pv.outputs.size() != 1) return false;
  m.v = pv.inputs[1];
  m.nodes.push_back(static_cast<size_t>(out));
  // Optional mask Add: the scores are the operand produced by this pattern's chain.
  std::string x = sm.inputs[0];
  size_t reader = i;
  if (const int add = single_use_producer(g, uses, x, "Add", i); add >= 0) {
    const Node& an = g.nodes[static_cast<size_t>(add)];
    if (an.num_inputs() != 2) return false;
    for (int side = 0; side < 2 && m.mask.empty(); ++side) {
      const std::string& s = an.inputs[static_cast<size_t>(side)];
      const int p = uses.producer(s);
      if (p < 0 || uses.sole_consumer(s) != add) continue;
      const Node& pn = g.nodes[static_cast<size_t>(p)];
      if (!is_op(pn, "MatMul") && !is_op(pn, "Mul") && !is_op(pn, "Div")) continue;
      m.mask = an.inputs[static_cast<size_t>(1 - side)];
      x = s;
    }
    if (m.mask.empty()) return false;
    m.nodes.push_back(static_cast<size_t>(add));
    reader = static_cast<size_t>(add);
  }
  // Optional scale on the product: Mul by a scalar constant (either order) or Div by one.
  if (const int dv = single_use_producer(g, uses, x, "Div", reader); dv >= 0) {
    const Node& dn = g.nodes[static_cast<size_t>(dv)];
    const auto c = dn.num_inputs() == 2 ? scalar_constant(g, dn.inputs[1]) : std::nullopt;
    if (!c || *c == 0) return false;
    m.scale /= static_cast<double>(*c);
    m.nodes.push_back(static_cast<size_t>(dv));
    reader = static_cast<size_t>(dv);
    x = dn.inputs[0];
  } else {
    const std::string inner = strip_scalar_mul(g, uses, x, reader, m);
    if (inner != x) reader = m.nodes.back();
    x = inner;
  }
  const int qk = single_use_producer(g, uses, x, "MatMul", reader);
  if (qk < 0) return false;
  const Node& qn = g.nodes[static_cast<size_t>(qk)];
  if (qn.num_inputs() != 2 || qn.outputs.size() != 1) return false;
  m.nodes.push_back(static_cast<size_t>(qk));
  m.q = strip_scalar_mul(g, uses, qn.inputs[0], static_cast<size_t>(qk), m);
  if (m.q == qn.inputs[0]) m.q = strip_head_dim_mul(g, uses, m.q, static_cast<size_t>(qk), nullptr, m);
  m.kt = strip_scalar_mul(g, uses, qn.inputs[1], static_cast<size_t>(qk), m);
  if (m.kt == qn.inputs[1]) m.kt = strip_head_dim_mul(g, uses, m.kt, static_cast<size_t>(qk), &m.q, m);
  if (m.head_dim_quarters != 0 && m.head_dim_quarters != 2) return false;  // D^(-1/4) alone is no attention scale
  // Ranks of at least 2 (MatMul promotes 1-D operands) and float32 throughout.
  for (const std::string* v : {&m.q, &m.kt, &m.v}) {
    const auto r = rank_of(g, uses, *v);
    if (!r || *r < 2 || value_dtype(g, *v) != DType::float32) return false;
  }
  return m.mask.empty() || value_dtype(g, m.mask) == DType::float32;
}

bool try_fuse(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  Match m;
  if (!match(g, uses, i, m)) return false;
  std::vector<const Node*> originals;
  for (size_t k : m.nodes) originals.push_back(&g.nodes[k]);
  if (!ctx.allows(originals, kOrchardDomain, "FusedAttention", 1)) return false;
  // The final MatMul is the pattern's last node: every input of the fused node is defined before it.
  const size_t last = *std::max_element(m.nodes.begin(), m.nodes.end());
  Node fused;
  fused.name = unique_name(g, g.nodes[last].name + "_attention");
  fused.op_type = "FusedAttention";
  fused.domain = std::string(kOrchardDomain);
  fused.opset = 1;
  fused.inputs = {m.q, m.kt, m.v};
  if (!m.mask.empty()) fused.inputs.push_back(m.mask);
  fused.outputs = {g.nodes[last].outputs[0]};
  Attribute scale;
  scale.type = Attribute::Type::f;
  scale.f = static_cast<float>(m.scale);
  fused.attributes["scale"] = std::move(scale);
  if (m.head_dim_quarters == 2) {
    Attribute head_dim;
    head_dim.type = Attribute::Type::i;
    head_dim.i = 1;
    fused.attributes["head_dim_scale"] = std::move(head_dim);
  }
  if (m.nan_to_zero) {
    Attribute nan;
    nan.type = Attribute::Type::i;
    nan.i = 1;
    fused.attributes["nan_to_zero"] = std::move(nan);
  }
  for (size_t k : m.nodes) mark_removed(g, k);
  g.nodes[last] = std::move(fused);
  return true;
}

// The Transpose with permutation `perm` that produces `value` and is read only by node `reader` (else -1).
int transpose_into(const Graph& g, const GraphUses& uses, const std::string& value, size_t reader,
                   const std::vector<int64_t>& perm) {
  const int p = single_use_producer(g, uses, value, "Transpose", reader);
  if (p < 0) return -1;
  const Node& t = g.nodes[static_cast<size_t>(p)];
  return t.num_inputs() == 1 && t.outputs.size() == 1 && t.attr("perm") != nullptr && t.attr_ints("perm") == perm ? p : -1;
}

// FusedAttention(Transpose(q, 0213), Transpose(k, 0231), Transpose(v, 0213)) read only by Transpose(·, 0213):
// the heads split out of [B, S, H, D] and merged back, as every BERT / GPT-2 export does → one FusedAttention with
// layout bshd reading q, k and v where they lie and writing [B, Sq, H, Dv]: four copies of the activations fewer.
bool try_bshd(Graph& g, const GraphUses& uses, size_t i, const PassContext& ctx) {
  const Node& n = g.nodes[i];
  if (n.domain != kOrchardDomain || n.op_type != "FusedAttention" || n.num_inputs() < 3 || n.outputs.size() != 1 ||
      n.attr("layout") != nullptr || !ctx.allows({&n}, kOrchardDomain, "FusedAttention", 2)) {
    return false;
  }
  const std::vector<int64_t> heads = {0, 2, 1, 3}, keys = {0, 2, 3, 1};
  const int tq = transpose_into(g, uses, n.inputs[0], i, heads);
  const int tk = transpose_into(g, uses, n.inputs[1], i, keys);
  const int tv = transpose_into(g, uses, n.inputs[2], i, heads);
  const int to = uses.sole_consumer(n.outputs[0]);
  if (tq < 0 || tk < 0 || tv < 0 || to < 0 || tq == tk || tq == tv || tk == tv) return false;
  const Node& t = g.nodes[static_cast<size_t>(to)];
  if (!is_op(t, "Transpose") || t.num_inputs() != 1 || t.outputs.size() != 1 || t.attr("perm") == nullptr ||
      t.attr_ints("perm") != heads) {
    return false;
  }
  Node fused = n;
  fused.opset = 2;  // the version with the layout attribute
  fused.inputs[0] = g.nodes[static_cast<size_t>(tq)].inputs[0];
  fused.inputs[1] = g.nodes[static_cast<size_t>(tk)].inputs[0];
  fused.inputs[2] = g.nodes[static_cast<size_t>(tv)].inputs[0];
  fused.outputs[0] = t.outputs[0];
  Attribute layout;
  layout.type = Attribute::Type::s;
  layout.s = "bshd";
  fused.attributes["layout"] = std::move(layout);
  // The output Transpose is the last node: every reader of its output comes after it.
  for (int k : {tq, tk, tv, static_cast<int>(i)}) mark_removed(g, static_cast<size_t>(k));
  g.nodes[static_cast<size_t>(to)] = std::move(fused);
  return true;
}

// The equal thirds of Split `n` along the last axis of its rank-3 input, whose last dim is fixed: that dim, else -1.
int64_t split_in_thirds(const Graph& g, const Node& n) {
  if (!is_op(n, "Split") || n.outputs.size() != 3 || n.num_inputs() < 1) return -1;
  const auto in = declared_shape(g, n.inputs[0]);
  if (!in || in->size() != 3 || !(*in)[2].fixed() || (*in)[2].value % 3 != 0) return -1;
  const int64_t axis = n.attr_int("axis", 0);
  if (axis != 2 && axis != -1) return -1;
  std::optional<std::vector<int64_t>> sizes;
  if (n.opset >= 13) {
    if (n.num_inputs() > 1 && !n.inputs[1].empty()) sizes = int_constant(g, n.inputs[1]);
    if (n.num_inputs() > 1 && !n.inputs[1].empty() && !sizes) return -1;
  } else if (n.attr("split") != nullptr) {
    sizes = n.attr_ints("split");
  }
  if (n.attr("num_outputs") != nullptr && n.attr_int("num_outputs", 0) != 3) return -1;
  const int64_t third = (*in)[2].value / 3;
  if (sizes && *sizes != std::vector<int64_t>{third, third, third}) return -1;
  return (*in)[2].value;
}

// The head count H of Reshape `n` from [B, S, E] (`in`, E = H·D) to [B, S, H, D] by a constant shape keeping B and S
// (0, or their fixed size), H or D possibly -1; else -1.
int64_t heads_of_reshape(const Graph& g, const Node& n, const std::vector<Dim>& in, int64_t e) {
  if (!is_op(n, "Reshape") || n.num_inputs() != 2 || n.attr_int("allowzero", 0) != 0) return -1;
  auto shape = int_constant(g, n.inputs[1]);
  if (!shape || shape->size() != 4) return -1;
  int64_t& h = (*shape)[2];
  int64_t& d = (*shape)[3];
  if (h == -1 && d > 0 && e % d == 0) h = e / d;
  if (d == -1 && h > 0 && e % h == 0) d = e / h;
  if (h < 1 || d < 1 || h * d != e) return -1;
  for (size_t d = 0; d < 2; ++d) {
    const int64_t v = (*shape)[d];
    if (v != 0 && !(in[d].fixed() && in[d].value == v)) return -1;
  }
  return (*shape)[2];
}

// FusedAttention bshd whose Q, K and V are Reshape(Split(qkv, thirds of the last axis)) to [B, S, H, D], each read
// only on that path (GPT-2's fused projection) → FusedAttention bs3hd reading qkv [B, S, 3·H·D] itself: the Split's
// copy goes too.
bool try_packed(Graph& g, const GraphUses& uses, size_t i) {
  const Node& n = g.nodes[i];
  if (n.domain != kOrchardDomain || n.op_type != "FusedAttention" || n.num_inputs() < 3 ||
      n.attr_string("layout", "") != "bshd") {
    return false;
  }
  int split = -1;
  int64_t heads = -1;
  std::vector<size_t> removed;
  for (size_t k = 0; k < 3; ++k) {
    const int r = uses.sole_consumer(n.inputs[k]) == static_cast<int>(i) ? uses.producer(n.inputs[k]) : -1;
    if (r < 0) return false;
    const Node& reshape = g.nodes[static_cast<size_t>(r)];
    const int sp = reshape.num_inputs() > 0 && uses.sole_consumer(reshape.inputs[0]) == r ? uses.producer(reshape.inputs[0]) : -1;
    if (sp < 0 || (split >= 0 && sp != split)) return false;
    const Node& sn = g.nodes[static_cast<size_t>(sp)];
    const int64_t e = split_in_thirds(g, sn);
    if (e < 0 || sn.outputs[k] != reshape.inputs[0]) return false;
    const int64_t h = heads_of_reshape(g, reshape, *declared_shape(g, sn.inputs[0]), e / 3);
    if (h < 0 || (heads >= 0 && h != heads)) return false;
    split = sp;
    heads = h;
    removed.push_back(static_cast<size_t>(r));
  }
  Node& fused = g.nodes[i];
  fused.inputs[0] = g.nodes[static_cast<size_t>(split)].inputs[0];
  fused.inputs[1].clear();
  fused.inputs[2].clear();
  fused.attributes["layout"].s = "bs3hd";
  Attribute h;
  h.type = Attribute::Type::i;
  h.i = heads;
  fused.attributes["num_heads"] = std::move(h);
  removed.push_back(static_cast<size_t>(split));
  for (size_t k : removed) mark_removed(g, k);
  return true;
}

}  // namespace

Result<int> fuse_attention(Graph& g, const PassContext& ctx) {
  const int fused =
      rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_fuse(g, uses, i, ctx); });
  const int bshd =
      rewrite_each(g, [&ctx](Graph& g, const GraphUses& uses, size_t i) { return try_bshd(g, uses, i, ctx); });
  return fused + bshd + rewrite_each(g, [](Graph& g, const GraphUses& uses, size_t i) { return try_packed(g, uses, i); });
}

}  // namespace orchard::graph::passes
