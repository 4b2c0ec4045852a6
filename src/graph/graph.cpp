#include "graph/graph.hpp"

#include <cmath>
#include <optional>

namespace orchard::graph {

const Attribute* Node::attr(std::string_view key) const {
  auto it = attributes.find(key);
  return it == attributes.end() ? nullptr : &it->second;
}

namespace {

// The int64 that float `f` holds exactly, or nothing when it is not integral or out of range.
std::optional<int64_t> integral_value(float f) {
  // 2^63 is exactly representable; every float below it in magnitude converts without overflow.
  if (!(f >= -9223372036854775808.0f && f < 9223372036854775808.0f) || f != std::trunc(f)) return std::nullopt;
  return static_cast<int64_t>(f);
}

}  // namespace

int64_t Node::attr_int(std::string_view key, int64_t fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type == Attribute::Type::i) return a->i;
  if (a->type == Attribute::Type::f) return integral_value(a->f).value_or(fallback);
  return fallback;
}

float Node::attr_float(std::string_view key, float fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type == Attribute::Type::f) return a->f;
  if (a->type == Attribute::Type::i) return static_cast<float>(a->i);
  return fallback;
}

std::string Node::attr_string(std::string_view key, const std::string& fallback) const {
  const Attribute* a = attr(key);
  return a && a->type == Attribute::Type::s ? a->s : fallback;
}

std::vector<int64_t> Node::attr_ints(std::string_view key, std::vector<int64_t> fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type == Attribute::Type::ints) return a->ints;
  if (a->type != Attribute::Type::floats) return fallback;
  std::vector<int64_t> v;
  v.reserve(a->floats.size());
  for (float f : a->floats) {
    const std::optional<int64_t> i = integral_value(f);
    if (!i) return fallback;
    v.push_back(*i);
  }
  return v;
}

std::vector<float> Node::attr_floats(std::string_view key, std::vector<float> fallback) const {
  const Attribute* a = attr(key);
  if (a == nullptr) return fallback;
  if (a->type == Attribute::Type::floats) return a->floats;
  if (a->type != Attribute::Type::ints) return fallback;
  std::vector<float> v;
  v.reserve(a->ints.size());
  for (int64_t i : a->ints) v.push_back(static_cast<float>(i));
  return v;
}

std::vector<std::string> Node::attr_strings(std::string_view key) const {
  const Attribute* a = attr(key);
  return a && a->type == Attribute::Type::strings ? a->strings : std::vector<std::string>{};
}

std::string Node::label() const { return "node '" + name + "' (" + op_type + ")"; }

size_t Node::num_inputs() const {
  size_t n = inputs.size();
  while (n > 0 && inputs[n - 1].empty()) --n;
  return n;
}

}  // namespace orchard::graph
