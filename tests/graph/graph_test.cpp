// The typed attribute getters of graph::Node: conversions between INT and FLOAT, fallbacks otherwise.
#include <gtest/gtest.h>

#include <limits>

#include "graph/graph.hpp"

namespace orchard::graph {
namespace {

Node node_with(const std::string& name, Attribute a) {
  Node n;
  n.attributes[name] = std::move(a);
  return n;
}

Attribute int_attr(int64_t v) {
  Attribute a;
  a.type = Attribute::Type::i;
  a.i = v;
  return a;
}

Attribute float_attr(float v) {
  Attribute a;
  a.type = Attribute::Type::f;
  a.f = v;
  return a;
}

TEST(NodeAttr, SameTypeReadsTheValue) {
  EXPECT_EQ(node_with("k", int_attr(-7)).attr_int("k", 3), -7);
  EXPECT_FLOAT_EQ(node_with("k", float_attr(0.25f)).attr_float("k", 3), 0.25f);
  EXPECT_EQ(Node{}.attr_int("k", 3), 3);
  EXPECT_FLOAT_EQ(Node{}.attr_float("k", 1.5f), 1.5f);
}

TEST(NodeAttr, FloatReadOfAnIntConverts) {
  EXPECT_FLOAT_EQ(node_with("p", int_attr(3)).attr_float("p", 2.0f), 3.0f);
}

TEST(NodeAttr, IntReadOfAFloatNeedsAnIntegralValue) {
  EXPECT_EQ(node_with("p", float_attr(4.0f)).attr_int("p", 1), 4);
  EXPECT_EQ(node_with("p", float_attr(-2.0f)).attr_int("p", 1), -2);
  EXPECT_EQ(node_with("p", float_attr(2.5f)).attr_int("p", 1), 1);
  EXPECT_EQ(node_with("p", float_attr(1e30f)).attr_int("p", 1), 1);
  EXPECT_EQ(node_with("p", float_attr(std::numeric_limits<float>::quiet_NaN())).attr_int("p", 1), 1);
}

TEST(NodeAttr, ListsConvertElementwise) {
  Attribute ints;
  ints.type = Attribute::Type::ints;
  ints.ints = {1, -2};
  EXPECT_EQ(node_with("v", ints).attr_floats("v"), (std::vector<float>{1.0f, -2.0f}));
  Attribute floats;
  floats.type = Attribute::Type::floats;
  floats.floats = {3.0f, 4.0f};
  EXPECT_EQ(node_with("v", floats).attr_ints("v"), (std::vector<int64_t>{3, 4}));
  floats.floats = {3.0f, 4.5f};
  EXPECT_EQ(node_with("v", floats).attr_ints("v", {9}), (std::vector<int64_t>{9}));
}

TEST(NodeAttr, OtherTypesGiveTheFallback) {
  Attribute s;
  s.type = Attribute::Type::s;
  s.s = "LEFT";
  const Node n = node_with("a", s);
  EXPECT_EQ(n.attr_int("a", 5), 5);
  EXPECT_FLOAT_EQ(n.attr_float("a", 0.5f), 0.5f);
  EXPECT_EQ(n.attr_string("a", ""), "LEFT");
  EXPECT_EQ(node_with("a", int_attr(1)).attr_string("a", "none"), "none");
  EXPECT_EQ(node_with("a", int_attr(1)).attr_ints("a", {2, 3}), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(node_with("a", int_attr(1)).attr_strings("a").empty());
}

}  // namespace
}  // namespace orchard::graph
