// Conversions between ONNX protobuf messages and Orchard tensors/values/types.
// Layer: src/onnx only; protobuf types never leave this folder.
#pragma once

#include <filesystem>

#include <onnx/onnx_pb.h>
#include <onnx/onnx-data.pb.h>

#include "orchard/session.hpp"
#include "orchard/tensor.hpp"

namespace orchard::onnx_import {

// Returns Orchard's dtype for an ONNX TensorProto::DataType, or unsupported (complex types).
Result<DType> dtype_from_onnx(int onnx_type);
// Returns the ONNX TensorProto::DataType of `t`.
int dtype_to_onnx(DType t);

// Bytes of external data one tensor read outside a model import (load_value_pb) may hold.
inline constexpr uint64_t kDefaultMaxExternalDataBytes = uint64_t{16} << 30;

// Converts a TensorProto, reading external data relative to `base_dir` (paths may not leave it). The data
// must match the declared shape, which is checked before anything is allocated.
Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::filesystem::path& base_dir);
// Converts a sparse tensor to its dense equivalent.
Result<Tensor> tensor_from_sparse(const onnx::SparseTensorProto& p, const std::filesystem::path& base_dir);
// Reads the external data of `p` (relative to `base_dir`; paths may not leave it; regular files only) into
// its raw_data, so that `p` becomes self-contained; the bytes read are taken from `budget_left`
// (resource_exhausted when they do not fit). No-op for tensors stored inline.
Status load_external_data(onnx::TensorProto& p, const std::filesystem::path& base_dir, uint64_t& budget_left);
// Fills `out` with `t` (raw_data for numeric types, string_data for strings).
void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto& out);

// Converts a TypeProto to (kind, element dtype, shape); unsupported for map types.
Result<ValueInfo> value_info_from_type(const std::string& name, const onnx::TypeProto& type);

// Converts a SequenceProto / OptionalProto (as stored by the backend test suite).
Result<Value> value_from_sequence(const onnx::SequenceProto& p);
Result<Value> value_from_optional(const onnx::OptionalProto& p);

}  // namespace orchard::onnx_import
