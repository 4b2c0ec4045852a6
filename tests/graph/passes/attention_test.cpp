// fuse_attention: the attention patterns BERT, GPT-2 and Whisper export become com.orchard FusedAttention, with
// the same outputs as the unoptimized graph on random inputs of random sizes; near-misses stay unfused.
#include <limits>

#include "graph/passes/pass_testing.hpp"

namespace orchard::graph::passes::testing {
namespace {

int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op_type == op;
  return n;
}

const Node* find_op(const Graph& g, const std::string& op) {
  for (const auto& n : g.nodes) {
    if (n.op_type == op) return &n;
  }
  return nullptr;
}

struct Form {
  bool mask = true;       // Add of a mask input [n, 1, 1, s]
  bool nan_where = true;  // Where(IsNaN(P), 0, P) after the softmax
  bool div_scale = false; // Div of the product by 8 instead of Mul of Q and Kt by 0.5
  bool mask_first = false;  // Add(mask, scores)
  float where_value = 0.f;
  int64_t softmax_axis = -1;
  bool scores_output = false;  // the scores are also a graph output
  int head_dim = 0;  // ViT: Q and Kt (2) or only Q (1) multiplied by D^(-1/4) computed from Q's shape
  bool merge_heads = false;  // the result transposed back to [n, s, 2, 4] and reshaped to y [n, s, 8]
  bool packed_qkv = false;   // Q, K and V from one projection [n, s, 24] split in thirds (GPT-2)
};

// x [n, s, 8] → Q, K, V of 2 heads of 4 (Reshape + Transpose as exporters write them) → attention → y [n, 2, s, 4]
// (merge_heads: → Transpose, Reshape → y [n, s, 8]).
void attention(ModelBuilder& b, const Form& f) {
  b.input("x", kFloat, {"n", "s", 8});
  if (f.merge_heads) {
    b.output("y", kFloat, {"n", "s", 8});
  } else {
    b.output("y", kFloat, {"n", 2, "s", 4});
  }
  if (f.mask) b.input("mask", kFloat, {"n", 1, 1, "s"});
  int_init(b, "heads", {4}, {0, 0, 2, 4});
  random_init(b, "wq", {8, 8}, 1);
  random_init(b, "wk", {8, 8}, 2);
  random_init(b, "wv", {8, 8}, 3);
  values_init(b, "half", {}, {0.5f});
  values_init(b, "eight", {}, {8.f});
  values_init(b, "fill", {1}, {f.where_value});
  if (f.packed_qkv) {
    random_init(b, "wqkv", {8, 24}, 4);
    int_init(b, "thirds", {3}, {8, 8, 8});
    b.node("MatMul", {"x", "wqkv"}, {"qkv"});
    attr_int(b.node("Split", {"qkv", "thirds"}, {"q0", "k0", "v0"}), "axis", 2);
  }
  for (const char* p : {"q", "k", "v"}) {
    const std::string s(p);
    if (!f.packed_qkv) b.node("MatMul", {"x", "w" + s}, {s + "0"});
    b.node("Reshape", {s + "0", "heads"}, {s + "1"});
  }
  attr_ints(b.node("Transpose", {"q1"}, {"q2"}), "perm", {0, 2, 1, 3});
  attr_ints(b.node("Transpose", {"k1"}, {"k2"}), "perm", {0, 2, 3, 1});
  attr_ints(b.node("Transpose", {"v1"}, {"v2"}), "perm", {0, 2, 1, 3});
  std::string s = "s0";
  if (f.head_dim > 0) {
    // s = Sqrt(Cast(Div(1, Sqrt(Cast(Slice(Shape(Q), -1, INT64_MAX)))))), as PyTorch exports it.
    int_init(b, "minus1", {1}, {-1});
    int_init(b, "to_end", {1}, {std::numeric_limits<int64_t>::max()});
    values_init(b, "one", {}, {1.f});
    b.node("Shape", {"q2"}, {"qshape"});
    b.node("Slice", {"qshape", "minus1", "to_end"}, {"d"});
    attr_int(b.node("Cast", {"d"}, {"df"}), "to", 1);
    b.node("Sqrt", {"df"}, {"sqrt_d"});
    b.node("Div", {"one", "sqrt_d"}, {"inv_sqrt_d"});
    attr_int(b.node("Cast", {"inv_sqrt_d"}, {"inv_f"}), "to", 1);
    b.node("Sqrt", {"inv_f"}, {"quarter_q"});
    b.node("Sqrt", {"inv_f"}, {"quarter_k"});
    b.node("Mul", {"q2", "quarter_q"}, {"q3"});
    if (f.head_dim == 2) {
      b.node("Mul", {"k2", "quarter_k"}, {"k3"});
    } else {
      b.node("Mul", {"half", "k2"}, {"k3"});
    }
    b.node("MatMul", {"q3", "k3"}, {s});
  } else if (f.div_scale) {
    b.node("MatMul", {"q2", "k2"}, {"s00"});
    b.node("Div", {"s00", "eight"}, {s});
  } else {
    b.node("Mul", {"q2", "half"}, {"q3"});
    b.node("Mul", {"half", "k2"}, {"k3"});
    b.node("MatMul", {"q3", "k3"}, {s});
  }
  if (f.scores_output) b.output(s, kFloat, {"n", 2, "s", "s"});
  if (f.mask) {
    b.node("Add", f.mask_first ? std::vector<std::string>{"mask", s} : std::vector<std::string>{s, "mask"}, {"s1"});
    s = "s1";
  }
  attr_int(b.node("Softmax", {s}, {"p"}), "axis", f.softmax_axis);
  std::string p = "p";
  if (f.nan_where) {
    b.node("IsNaN", {"p"}, {"nan"});
    b.node("Where", {"nan", "fill", "p"}, {"p1"});
    p = "p1";
  }
  if (!f.merge_heads) {
    b.node("MatMul", {p, "v2"}, {"y"});
    return;
  }
  int_init(b, "merged", {3}, {0, 0, 8});
  b.node("MatMul", {p, "v2"}, {"o"});
  attr_ints(b.node("Transpose", {"o"}, {"o1"}), "perm", {0, 2, 1, 3});
  b.node("Reshape", {"o1", "merged"}, {"y"});
}

TEST(FuseAttention, ExportedFormsBecomeOneNode) {
  const Form forms[] = {
      {},                                                        // BERT / GPT-2: scale on Q and Kt, mask, NaN guard
      {.mask = false, .nan_where = false},                       // Whisper's encoder
      {.div_scale = true},                                       // the product divided by sqrt(d)
      {.mask_first = true},                                      // Add(mask, scores)
      {.mask = false, .nan_where = false, .head_dim = 2},       // ViT: 1/sqrt(D) from Q's shape, split over Q, Kt
  };
  for (const Form& f : forms) {
    ModelBuilder b;
    attention(b, f);
    auto g = import(b);
    EXPECT_EQ(*fuse_attention(*g, {}), 1);
    const Node* a = find_op(*g, "FusedAttention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->domain, "com.orchard");
    EXPECT_EQ(a->inputs.size(), f.mask ? 4u : 3u);
    EXPECT_EQ(a->outputs[0], "y");
    EXPECT_NEAR(a->attr_float("scale", 0), f.head_dim ? 1.f : f.div_scale ? 0.125f : 0.25f, 1e-7);
    EXPECT_EQ(a->attr_int("head_dim_scale", 0), f.head_dim ? 1 : 0);
    EXPECT_EQ(a->attr_int("nan_to_zero", 0), f.nan_where ? 1 : 0);
    EXPECT_EQ(count_op(*g, "Softmax") + count_op(*g, "IsNaN") + count_op(*g, "Where"), 0);
    EXPECT_EQ(count_op(*g, "MatMul"), 3);  // the projections only
    expect_same_outputs(b);
  }
}

// The heads split by Transposes and merged back by one: the Transposes go, the attention reads [n, s, 2, 4] in
// place (layout bshd). Not when a head Transpose has another reader (ViT's Shape of Q) or the result is read as is.
TEST(FuseAttention, HeadTransposesFoldIntoTheBshdLayout) {
  const Form forms[] = {
      {.merge_heads = true},
      {.mask = false, .nan_where = false, .div_scale = true, .merge_heads = true},
  };
  for (const Form& f : forms) {
    ModelBuilder b;
    attention(b, f);
    auto g = import(b);
    EXPECT_EQ(*fuse_attention(*g, {}), 2);  // the fusion, then the layout
    const Node* a = find_op(*g, "FusedAttention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->attr_string("layout", ""), "bshd");
    EXPECT_EQ((std::vector<std::string>(a->inputs.begin(), a->inputs.begin() + 3)),
              (std::vector<std::string>{"q1", "k1", "v1"}));
    EXPECT_EQ(a->outputs[0], "o1");
    EXPECT_EQ(count_op(*g, "Transpose"), 0);
    expect_same_outputs(b);
  }
  // GPT-2's one projection: the Split and the head Reshapes go as well (layout bs3hd).
  {
    ModelBuilder b;
    attention(b, Form{.merge_heads = true, .packed_qkv = true});
    auto g = import(b);
    EXPECT_EQ(*fuse_attention(*g, {}), 3);  // the fusion, the layout, the packed input
    const Node* a = find_op(*g, "FusedAttention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->attr_string("layout", ""), "bs3hd");
    EXPECT_EQ(a->attr_int("num_heads", 0), 2);
    EXPECT_EQ(a->inputs[0], "qkv");
    EXPECT_EQ(count_op(*g, "Split") + count_op(*g, "Transpose"), 0);
    EXPECT_EQ(count_op(*g, "Reshape"), 1) << "only the merge of the heads";
    expect_same_outputs(b);
  }
  for (const Form& f : {Form{.mask = false, .nan_where = false, .head_dim = 2, .merge_heads = true}, Form{}}) {
    ModelBuilder b;
    attention(b, f);
    auto g = import(b);
    EXPECT_EQ(*fuse_attention(*g, {}), 1);
    const Node* a = find_op(*g, "FusedAttention");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->attr("layout"), nullptr);
    expect_same_outputs(b);
  }
}

TEST(FuseAttention, NearMissesStay) {
  const Form misses[] = {
      {.softmax_axis = 2},       // softmax over another axis
      {.where_value = 1.f},      // NaN replaced by something other than 0
      {.scores_output = true},   // the scores are read outside the pattern
      {.head_dim = 1},           // D^(-1/4) on Q only: no scale the op can state
  };
  for (const Form& f : misses) {
    ModelBuilder b;
    attention(b, f);
    auto g = import(b);
    EXPECT_EQ(*fuse_attention(*g, {}), 0);
    EXPECT_EQ(count_op(*g, "Softmax"), 1);
    expect_same_outputs(b);
  }
  {
    ModelBuilder b;  // a backend without the fused op keeps the pattern
    attention(b, {});
    auto g = import(b);
    PassContext ctx;
    ctx.may_replace = [](const Node&, std::string_view, std::string_view op, int) { return op != "FusedAttention"; };
    EXPECT_EQ(*fuse_attention(*g, ctx), 0);
  }
}

TEST(FuseAttention, RunsInTheExtendedLevel) {
  ModelBuilder b;
  attention(b, {});
  auto g = optimized(b);
  EXPECT_EQ(count_op(*g, "FusedAttention"), 1);
  EXPECT_EQ(count_op(*g, "Softmax"), 0);
}

}  // namespace
}  // namespace orchard::graph::passes::testing
