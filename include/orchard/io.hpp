// Reading and writing tensors in files: ONNX TensorProto/SequenceProto/OptionalProto (.pb, as the ONNX
// backend test suite stores them) and NumPy .npy.
#pragma once

#include <filesystem>
#include <string>

#include "orchard/status.hpp"
#include "orchard/tensor.hpp"

namespace orchard {

// Reads a .pb file holding a value of `kind` (tensor: TensorProto, sequence: SequenceProto,
// optional: OptionalProto). `name_out`, when given, receives the name stored in the file.
Result<Value> load_value_pb(const std::filesystem::path& path, Value::Kind kind, std::string* name_out = nullptr);
// Writes `t` as a TensorProto named `name`.
Status save_tensor_pb(const std::filesystem::path& path, const Tensor& t, const std::string& name);
// Reads a NumPy .npy file (little-endian, C order; bool, int*, uint*, float16/32/64).
Result<Tensor> load_npy(const std::filesystem::path& path);
// Writes `t` as a NumPy .npy file (not strings or bfloat16).
Status save_npy(const std::filesystem::path& path, const Tensor& t);

}  // namespace orchard
