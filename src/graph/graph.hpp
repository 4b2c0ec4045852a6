// Orchard's graph IR: what the ONNX importer produces and every later stage reads.
// Layer: depends on core only; knows nothing of ONNX protobufs or backends.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "orchard/session.hpp"
#include "orchard/tensor.hpp"

namespace orchard::graph {

struct Graph;

// A type as declared in the model, kept for attributes of type TYPE_PROTO (e.g. SequenceEmpty's dtype).
struct TypeDecl {
  Value::Kind kind = Value::Kind::tensor;
  DType dtype = DType::undefined;
};

struct Attribute {
  enum class Type : unsigned char { f, i, s, t, g, floats, ints, strings, tensors, graphs, type, types };
  Type type = Type::i;
  float f = 0;
  int64_t i = 0;
  std::string s;
  Tensor t;
  std::shared_ptr<const Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<const Graph>> graphs;
  TypeDecl type_decl;
};

struct Node {
  std::string name;      // never empty: the importer names unnamed nodes "<op>_<index>"
  std::string op_type;
  std::string domain;    // "" for the default ONNX domain
  int opset = 0;         // the model's opset for `domain`
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an unused optional output
  std::map<std::string, Attribute, std::less<>> attributes;
  // Names this node's subgraphs read from enclosing scopes (computed by the importer).
  std::vector<std::string> implicit_inputs;

  // Returns attribute `name`, or nullptr when the node has none (tensor, graph and type attributes).
  const Attribute* attr(std::string_view name) const;
  // Typed getters. Each returns `fallback` when the attribute is absent or its value does not convert.
  // Numbers convert between INT and FLOAT (and INTS and FLOATS) when no information is lost: an INT
  // reads as the nearest float; a FLOAT reads as an int only when it is integral and within int64
  // (attr_int of 2.0 is 2, of 2.5 is `fallback`); a list converts only when every element does.
  // Strings, tensors and graphs never convert.
  int64_t attr_int(std::string_view name, int64_t fallback) const;
  float attr_float(std::string_view name, float fallback) const;
  std::string attr_string(std::string_view name, const std::string& fallback) const;
  std::vector<int64_t> attr_ints(std::string_view name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(std::string_view name, std::vector<float> fallback = {}) const;
  std::vector<std::string> attr_strings(std::string_view name) const;  // {} when absent or not STRINGS
  // Returns "node 'name' (Op)" for error messages.
  std::string label() const;
  // Returns the number of inputs that are present (non-empty names), counting trailing omissions out.
  size_t num_inputs() const;
  bool has_input(size_t i) const { return i < inputs.size() && !inputs[i].empty(); }
};

// A graph or subgraph. Names are unique within a graph; subgraphs may read names of enclosing graphs.
struct Graph {
  std::string name;
  std::vector<Node> nodes;  // in the model's order (the importer checks it is topological)
  std::vector<ValueInfo> inputs;
  std::vector<ValueInfo> outputs;
  std::map<std::string, Tensor, std::less<>> initializers;
  std::map<std::string, ValueInfo, std::less<>> value_info;  // inferred types of intermediate values
};

// The whole model: the main graph plus the metadata the CLI shows.
struct Model {
  int64_t ir_version = 0;
  std::map<std::string, int, std::less<>> opsets;  // domain ("" default) -> version
  std::string producer;
  std::shared_ptr<Graph> graph;
};

}  // namespace orchard::graph
