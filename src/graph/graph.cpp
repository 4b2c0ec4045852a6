#include "graph/graph.hpp"

namespace orchard::graph {

const Attribute* Node::attr(std::string_view key) const {
  auto it = attributes.find(key);
  return it == attributes.end() ? nullptr : &it->second;
}

int64_t Node::attr_int(std::string_view key, int64_t fallback) const {
  const Attribute* a = attr(key);
  return a ? a->i : fallback;
}

float Node::attr_float(std::string_view key, float fallback) const {
  const Attribute* a = attr(key);
  return a ? a->f : fallback;
}

std::string Node::attr_string(std::string_view key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  return a ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(std::string_view key, std::vector<int64_t> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->ints : fallback;
}

std::vector<float> Node::attr_floats(std::string_view key, std::vector<float> fallback) const {
  const Attribute* a = attr(key);
  return a ? a->floats : fallback;
}

std::vector<std::string> Node::attr_strings(std::string_view key) const {
  const Attribute* a = attr(key);
  return a ? a->strings : std::vector<std::string>{};
}

std::string Node::label() const { return "node '" + name + "' (" + op_type + ")"; }

size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

}  // namespace orchard::graph
