// What an op builder sees while converting: the ONNX side (static types, constants) and a MIL block
// under construction (vars with their types, const ops, casts, immediate parameter values).
// Internal to src/backends/coreml.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "backends/coreml/blob_storage.hpp"
#include "backends/coreml/converter.hpp"
#include "coreml_model.pb.h"

namespace orchard::coreml {

namespace mil = ::CoreML::Specification::MILSpec;

// Static dtype and shape of an ONNX value.
struct TensorDesc {
  DType dtype = DType::undefined;
  std::vector<int64_t> shape;
  size_t rank() const { return shape.size(); }
};

// Returns the static desc of `name` in `g` (input, initializer, value_info or output), or an error
// saying which value has no static shape.
Result<TensorDesc> find_desc(const graph::Graph& g, const std::string& name);
// Returns the initializer `name`, or null.
const Tensor* find_constant(const graph::Graph& g, const std::string& name);
// Returns the MIL element type for an ONNX dtype under `precision` (float32 → fp16 in fp16 programs,
// int64 → int32), or UNUSED_TYPE when MIL has none.
mil::DataType mil_type_for(DType t, Precision precision);
// Returns the MIL spelling used by `cast`'s dtype parameter ("fp16", "int32", ...).
const char* mil_type_string(mil::DataType t);
// Returns the ValueType of a tensor.
mil::ValueType tensor_value_type(mil::DataType t, const std::vector<int64_t>& shape);

// Immediate parameter values (Binding.value).
mil::Value int_value(int32_t v);
mil::Value ints_value(const std::vector<int32_t>& v);
mil::Value bool_value(bool v);
mil::Value bools_value(const std::vector<bool>& v);
mil::Value float_value(float v, mil::DataType t);  // t: FLOAT16 or FLOAT32
mil::Value string_value(const std::string& v);
// Narrows int64 values to int32, clamping to the int32 range (used for Slice ends such as INT64_MAX).
std::vector<int32_t> to_int32(const std::vector<int64_t>& v);

// A MIL var: its name and static type.
struct Var {
  std::string name;
  mil::DataType dtype = mil::UNUSED_TYPE;
  std::vector<int64_t> shape;
};

// One operation parameter: a var, several vars (variadic inputs), or an immediate value.
using Arg = std::variant<std::string, std::vector<std::string>, mil::Value>;
using Params = std::vector<std::pair<std::string, Arg>>;

class ConvertContext {
 public:
  ConvertContext(const graph::Graph& graph, const ConvertOptions& options, mil::Block& block, BlobWriter& blobs);

  const graph::Graph& graph() const { return graph_; }
  const ConvertOptions& options() const { return options_; }
  mil::DataType float_type() const;
  Result<TensorDesc> desc(const std::string& onnx_name) const { return find_desc(graph_, onnx_name); }
  const Tensor* constant(const std::string& onnx_name) const { return find_constant(graph_, onnx_name); }

  // Returns the var holding ONNX value `name` in its natural MIL type (a const op for initializers).
  Result<Var> input(const std::string& name);
  // Same, cast to `want` when its type differs.
  Result<Var> input(const std::string& name, mil::DataType want);
  // Returns a const op holding `t` converted to `as`; values ≥ 10 elements of fp16/fp32 go to weight.bin.
  Var add_const(const Tensor& t, mil::DataType as, const std::string& hint);
  // Returns `v` cast to `to` (a new cast op), or `v` itself when it already has that type.
  Var cast(const Var& v, mil::DataType to);
  // Adds an operation with one output of type (dtype, shape); `hint` seeds the output's name.
  Var op(const std::string& type, const Params& params, mil::DataType dtype, const std::vector<int64_t>& shape,
         const std::string& hint);
  // Same with several outputs.
  std::vector<Var> op_multi(const std::string& type, const Params& params,
                            const std::vector<std::pair<mil::DataType, std::vector<int64_t>>>& outs, const std::string& hint);
  // Same as op() with an output named exactly `name` (taken earlier with fresh_name()).
  Var op_named(const std::string& name, const std::string& type, const Params& params, mil::DataType dtype,
               const std::vector<int64_t>& shape);
  // Makes `v` the var of ONNX value `onnx_name`.
  void bind(const std::string& onnx_name, const Var& v) { bound_[onnx_name] = v; }
  // Returns a fresh valid MIL name derived from `hint` ([A-Za-z_][A-Za-z0-9_@]*, no reserved word).
  std::string fresh_name(const std::string& hint);
  int64_t operations() const { return block_.operations_size(); }

 private:
  void emit(const std::string& type, const Params& params, const std::vector<Var>& outs);

  const graph::Graph& graph_;
  const ConvertOptions& options_;
  mil::Block& block_;
  BlobWriter& blobs_;
  std::map<std::string, Var, std::less<>> bound_;
  std::map<std::string, Var, std::less<>> casts_;  // "<var>|<dtype>" → cast result
  std::set<std::string, std::less<>> used_;
};

// Serializes `model` deterministically (map keys sorted): the same graph always gives the same bytes,
// so package contents and cache keys are stable.
Result<std::string> serialize_model(const CoreML::Specification::Model& model);

// Returns a valid MIL identifier for an arbitrary ONNX name (invalid characters → '_', leading digit or
// reserved word prefixed with '_'). Not unique: ConvertContext::fresh_name adds suffixes.
std::string sanitize_name(const std::string& name);

}  // namespace orchard::coreml
