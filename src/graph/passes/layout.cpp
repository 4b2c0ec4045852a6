// Channels-last layout for the backends that want it (PassContext::channels_last; CUDA in float16): every 2-D
// Conv / FusedConv such a backend would run becomes
//   Transpose(X, 0231) → FusedConv(layout nhwc, W as [M, kH, kW, C/group]) → Transpose(·, 0312)
// (a residual Z transposed to NHWC too), with the weights transposed once, here. Elementwise ops and global
// average pooling whose inputs are all such Transpose(·, 0312) outputs (or constants, which a binary op then reads
// through an NHWC copy: ConvNeXt's layer scale) then run on the NHWC values instead, with one Transpose after them
// (sink_transposes: an op of two transposed inputs trades two Transposes for one; the squeeze-and-excitation
// blocks of EfficientNet and ConvNeXt's residual Adds stay in NHWC). Last, a
// Transpose(·, 0231) of a Transpose(·, 0312) reads the original NHWC value instead: between two convolutions
// (and into a residual) the activations never leave NHWC; Transposes remain only where an op that cannot follow
// reads them (a MaxPool, the head). The dead Transposes go with the optimizer's dead-node removal. A model whose
// convolutions add up to less work than PassContext::channels_last_min_macs stays NCHW.
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "graph/passes/pass.hpp"
#include "graph/passes/pass_util.hpp"

namespace orchard::graph::passes {

namespace {

constexpr std::array<int64_t, 4> kToNhwc = {0, 2, 3, 1};
constexpr std::array<int64_t, 4> kToNchw = {0, 3, 1, 2};

bool is_conv(const Node& n) {
  return is_op(n, "Conv") || (n.domain == kOrchardDomain && n.op_type == "FusedConv" && n.attr("layout") == nullptr);
}

// A convolution the channels-last backend runs as it is: 2-D (constant float32 weights of rank 4), declared
// float32 input, explicit symmetric pads (cuDNN's), one output.
bool eligible(const Graph& g, const Node& n, const PassContext& ctx) {
  if (!is_conv(n) || n.num_inputs() < 2 || n.outputs.size() != 1 || !ctx.channels_last(n)) return false;
  const Tensor* w = constant(g, n.inputs[1]);
  if (w == nullptr || w->rank() != 4 || w->dtype() != DType::float32 || value_dtype(g, n.inputs[0]) != DType::float32) {
    return false;
  }
  const std::string auto_pad = n.attr_string("auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") return false;
  const std::vector<int64_t> pads = n.attr_ints("pads");
  return pads.empty() || (pads.size() == 4 && pads[0] == pads[2] && pads[1] == pads[3]);
}

// W [M, C, kH, kW] → [M, kH, kW, C].
Tensor weights_to_ohwi(const Tensor& w) {
  const int64_t M = w.dim(0), C = w.dim(1), H = w.dim(2), W = w.dim(3);
  Tensor t = Tensor::empty(DType::float32, Shape{M, H, W, C});
  const float* src = w.data<float>();
  float* dst = t.data<float>();
  if (C == 1 || H * W == 1) {  // depthwise or 1x1: the same order
    std::copy(src, src + w.numel(), dst);
    return t;
  }
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) dst[((m * H + y) * W + x) * C + c] = src[((m * C + c) * H + y) * W + x];
      }
    }
  }
  return t;
}

Node transpose(const std::string& name, const std::string& in, const std::string& out, const std::array<int64_t, 4>& p) {
  Node t;
  t.name = name;
  t.op_type = "Transpose";
  t.opset = 13;
  t.inputs = {in};
  t.outputs = {out};
  Attribute perm;
  perm.type = Attribute::Type::ints;
  perm.ints.assign(p.begin(), p.end());
  t.attributes["perm"] = std::move(perm);
  return t;
}

// Declares `out` as `in`'s dtype with `in`'s dims reordered by `p` (when `in`'s rank-4 shape is declared).
void declare_permuted(Graph& g, const std::string& in, const std::string& out, const std::array<int64_t, 4>& p) {
  ValueInfo info;
  info.name = out;
  info.dtype = value_dtype(g, in);
  if (auto s = declared_shape(g, in); s && s->size() == 4) {
    info.has_shape = true;
    for (int64_t d : p) info.shape.push_back((*s)[static_cast<size_t>(d)]);
  }
  g.value_info[out] = std::move(info);
}

bool has_perm(const Node& n, const std::array<int64_t, 4>& p) {
  return is_op(n, "Transpose") && n.num_inputs() == 1 && n.attr("perm") != nullptr &&
         n.attr_ints("perm") == std::vector<int64_t>(p.begin(), p.end());
}

// Multiply-adds per image of convolution n: output pixels (the declared input plane over the strides; a plane
// not declared counts as large) times M * C/group * kH * kW.
int64_t conv_macs(const Graph& g, const Node& n) {
  const Tensor* w = constant(g, n.inputs[1]);
  const auto x = declared_shape(g, n.inputs[0]);
  if (!x || x->size() != 4 || (*x)[2].value <= 0 || (*x)[3].value <= 0) return INT64_MAX / 4;
  std::vector<int64_t> strides = n.attr_ints("strides");
  strides.resize(2, 1);
  const int64_t pixels = ((*x)[2].value + strides[0] - 1) / std::max<int64_t>(strides[0], 1) *
                         (((*x)[3].value + strides[1] - 1) / std::max<int64_t>(strides[1], 1));
  return pixels * w->numel();
}

// Elementwise ops that commute with a Transpose of their (equally ranked) inputs; inputs past the first two
// (Clip's bounds) must be scalars.
bool is_elementwise(const Node& n) {
  static const char* const kOps[] = {"Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu",
                                     "HardSwish", "HardSigmoid", "Erf", "Neg", "Abs", "Sqrt", "Exp"};
  for (const char* op : kOps) {
    if (is_op(n, op)) return true;
  }
  return false;
}

bool is_binary(const Node& n) { return is_op(n, "Add") || is_op(n, "Sub") || is_op(n, "Mul") || is_op(n, "Div"); }

// Returns constant `c` (rank at most 4, broadcasting against NCHW values) as it broadcasts against the NHWC ones:
// leading 1s up to rank 4, then dims and data in NHWC order. ConvNeXt's layer scale [C, 1, 1] becomes [1, 1, 1, C].
Tensor constant_to_nhwc(const Tensor& c) {
  std::array<int64_t, 4> d = {1, 1, 1, 1};
  for (size_t i = 0; i < c.rank(); ++i) d[4 - c.rank() + i] = c.dim(i);
  Tensor t = Tensor::empty(c.dtype(), Shape{d[0], d[2], d[3], d[1]});
  const size_t es = dtype_size(c.dtype());
  const auto* src = static_cast<const unsigned char*>(c.raw_data());
  auto* dst = static_cast<unsigned char*>(t.raw_data());
  size_t k = 0;  // walks the destination in order: n, h, w, then c
  for (int64_t n = 0; n < d[0]; ++n) {
    for (int64_t h = 0; h < d[2]; ++h) {
      for (int64_t w = 0; w < d[3]; ++w) {
        for (int64_t ch = 0; ch < d[1]; ++ch, ++k) {
          const int64_t from = ((n * d[1] + ch) * d[2] + h) * d[3] + w;
          std::memcpy(dst + k * es, src + static_cast<size_t>(from) * es, es);
        }
      }
    }
  }
  return t;
}

// Moves Transposes to NCHW below the ops that can run on their NHWC inputs (see the file comment). `nchw_of`
// maps each value made by a Transpose(·, 0312) to its NHWC source.
void sink_transposes(Graph& g, NameSource& names) {
  std::map<std::string, std::string> nchw_of;
  std::map<std::string, std::string> nhwc_copy;  // constant → its NHWC copy (constant_to_nhwc), made once
  std::vector<Node> out;
  out.reserve(g.nodes.size());
  for (const Node& n : g.nodes) {
    if (has_perm(n, kToNchw)) nchw_of[n.outputs[0]] = n.inputs[0];
    const bool pool = is_op(n, "GlobalAveragePool") && n.num_inputs() == 1;
    // A binary op's operand that is a constant of rank at most 4 other than a scalar: read through an NHWC copy.
    auto nhwc_constant = [&](size_t i) {
      const Tensor* c = is_binary(n) && i < 2 ? constant(g, n.inputs[i]) : nullptr;
      return c != nullptr && c->dtype() != DType::string && c->rank() <= 4 && !(c->numel() == 1 && c->rank() <= 1);
    };
    // Input i may be read in NHWC: the first (and a binary op's second) made by a Transpose to NCHW, a binary op's
    // constant (nhwc_constant), or, past the first, a one-value constant; Clip's bounds such constants or omitted.
    auto reads_nhwc = [&](size_t i) {
      const std::string& in = n.inputs[i];
      if (nhwc_constant(i)) return true;
      if (i == 0) return nchw_of.count(in) != 0;
      if (in.empty()) return is_op(n, "Clip");
      const Tensor* c = constant(g, in);
      const bool scalar = c != nullptr && c->numel() == 1 && c->rank() <= 1;
      return scalar || (i == 1 && !is_op(n, "Clip") && nchw_of.count(in) != 0);
    };
    bool sinks = (pool || is_elementwise(n)) && n.outputs.size() == 1 && n.num_inputs() >= 1;
    bool transposed = false;  // at least one input is an NHWC value (not constants only)
    for (size_t i = 0; sinks && i < n.num_inputs(); ++i) {
      sinks = reads_nhwc(i);
      transposed = transposed || nchw_of.count(n.inputs[i]) != 0;
    }
    if (!sinks || !transposed) {
      out.push_back(n);
      continue;
    }
    Node op = n;
    op.name = names.make(n.name + "_nhwc");
    for (size_t i = 0; i < op.num_inputs(); ++i) {
      if (auto it = nchw_of.find(op.inputs[i]); it != nchw_of.end()) {
        op.inputs[i] = it->second;
      } else if (nhwc_constant(i)) {
        auto [it2, fresh] = nhwc_copy.emplace(n.inputs[i], std::string());
        if (fresh) {
          it2->second = names.make(n.inputs[i] + "_nhwc");
          g.initializers[it2->second] = constant_to_nhwc(*constant(g, n.inputs[i]));
        }
        op.inputs[i] = it2->second;
      }
    }
    if (pool) {  // GlobalAveragePool of NCHW = ReduceMean over H and W of NHWC, keeping them as 1s
      op.op_type = "ReduceMean";
      op.opset = 13;
      op.attributes.clear();
      Attribute axes;
      axes.type = Attribute::Type::ints;
      axes.ints = {1, 2};
      op.attributes["axes"] = std::move(axes);
    }
    const std::string y = names.make(n.outputs[0] + "_nhwc");
    op.outputs[0] = y;
    ValueInfo yi;
    yi.name = y;
    yi.dtype = value_dtype(g, n.inputs[0]);
    g.value_info[y] = std::move(yi);
    out.push_back(std::move(op));
    out.push_back(transpose(names.make(n.name + "_to_nchw"), y, n.outputs[0], kToNchw));
    nchw_of[n.outputs[0]] = y;
  }
  g.nodes = std::move(out);
}

}  // namespace

Result<int> to_channels_last(Graph& g, const PassContext& ctx) {
  if (!ctx.channels_last) return 0;
  if (ctx.channels_last_min_macs > 0) {
    int64_t macs = 0;
    for (const Node& n : g.nodes) {
      if (eligible(g, n, ctx)) macs = std::min<int64_t>(macs + conv_macs(g, n), INT64_MAX / 4);
    }
    if (macs < ctx.channels_last_min_macs) return 0;
  }
  std::vector<Node> out;
  out.reserve(g.nodes.size());
  NameSource names(g);
  int rewritten = 0;
  for (const Node& n : g.nodes) {
    if (!eligible(g, n, ctx)) {
      out.push_back(n);
      continue;
    }
    Node conv = n;
    conv.op_type = "FusedConv";
    conv.domain = std::string(kOrchardDomain);
    conv.opset = 1;
    conv.name = names.make(n.name + "_nhwc");
    Attribute layout;
    layout.type = Attribute::Type::s;
    layout.s = "nhwc";
    conv.attributes["layout"] = std::move(layout);
    const std::string x = names.make(n.name + "_x_nhwc");
    out.push_back(transpose(names.make(n.name + "_to_nhwc"), n.inputs[0], x, kToNhwc));
    declare_permuted(g, n.inputs[0], x, kToNhwc);
    conv.inputs[0] = x;
    const std::string w = names.make(n.inputs[1] + "_ohwi");
    g.initializers[w] = weights_to_ohwi(*constant(g, n.inputs[1]));
    conv.inputs[1] = w;
    if (n.num_inputs() > 3 && !n.inputs[3].empty()) {  // FusedConv's residual Z
      const std::string z = names.make(n.name + "_z_nhwc");
      out.push_back(transpose(names.make(n.name + "_z_to_nhwc"), n.inputs[3], z, kToNhwc));
      declare_permuted(g, n.inputs[3], z, kToNhwc);
      conv.inputs[3] = z;
    }
    const std::string y = names.make(n.name + "_y_nhwc");
    conv.outputs[0] = y;
    out.push_back(std::move(conv));
    out.push_back(transpose(names.make(n.name + "_to_nchw"), y, n.outputs[0], kToNchw));
    ValueInfo yi;
    yi.name = y;
    yi.dtype = DType::float32;
    g.value_info[y] = std::move(yi);
    ++rewritten;
  }
  if (rewritten == 0) return 0;
  g.nodes = std::move(out);
  sink_transposes(g, names);
  // Transpose(Transpose(v, 0312), 0231) is v: its readers read v instead (unless it is a graph output, which keeps
  // its producer).
  GraphUses uses(g);
  for (const Node& n : g.nodes) {
    if (!has_perm(n, kToNhwc)) continue;
    const int p = uses.producer(n.inputs[0]);
    if (p < 0 || !has_perm(g.nodes[static_cast<size_t>(p)], kToNchw)) continue;
    bool graph_output = false;
    for (const auto& o : g.outputs) graph_output = graph_output || o.name == n.outputs[0];
    if (!graph_output) replace_uses(g, n.outputs[0], g.nodes[static_cast<size_t>(p)].inputs[0]);
  }
  return rewritten;
}

}  // namespace orchard::graph::passes
