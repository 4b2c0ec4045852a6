#include "onnx/proto_convert.hpp"

#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>

#include "core/file_read.hpp"

namespace orchard::onnx_import {

namespace {
using TP = onnx::TensorProto;

std::string tensor_label(const onnx::TensorProto& p) {
  return p.name().empty() ? std::string("tensor") : "tensor '" + p.name() + "'";
}

// Copies `count` typed values from a repeated proto field into `dst`, converting each with `conv`.
template <class Dst, class Field, class Conv>
void copy_field(const Field& field, Dst* dst, Conv conv) {
  for (int i = 0; i < field.size(); ++i) dst[i] = conv(field.Get(i));
}

// Returns the bytes the shape and element type of `p` declare; nullopt for strings, unknown element types,
// negative dims and sizes that overflow.
std::optional<uint64_t> declared_bytes(const onnx::TensorProto& p) {
  auto dtype = dtype_from_onnx(p.data_type());
  if (!dtype.ok() || *dtype == DType::string) return std::nullopt;
  uint64_t n = dtype_size(*dtype);
  for (int64_t d : p.dims()) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  return n;
}

// Reads the external data of `p`: exactly the bytes its shape declares, charged to `budget_left` (the
// bytes of external data the model may still read); nothing is read when the sizes disagree.
Result<std::string> read_external(const onnx::TensorProto& p, const std::filesystem::path& base_dir, uint64_t& budget_left) {
  std::string location;
  int64_t offset = 0, length = -1;
  const std::string label = tensor_label(p);
  // Parses a non-negative decimal integer (std::stoll would throw on bad text).
  auto parse = [&](const std::string& key, const std::string& text, int64_t& out) -> Status {
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    if (ec != std::errc() || ptr != end || out < 0) {
      return invalid_argument("[onnx] ", label, ": external data '", key, "' is '", text, "', not a non-negative integer");
    }
    return Status::OK();
  };
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") ORCHARD_RETURN_IF_ERROR(parse(kv.key(), kv.value(), offset));
    else if (kv.key() == "length") ORCHARD_RETURN_IF_ERROR(parse(kv.key(), kv.value(), length));
  }
  if (location.empty()) return invalid_argument("[onnx] ", label, ": external data has no 'location'");
  std::filesystem::path rel(location);
  if (rel.is_absolute()) {
    return invalid_argument("[onnx] ", label, ": external data path '", location, "' is absolute; it must be relative to the model's folder");
  }
  std::error_code ec;
  const auto base = std::filesystem::weakly_canonical(base_dir.empty() ? std::filesystem::path(".") : base_dir, ec);
  const auto full = ec ? std::filesystem::path() : std::filesystem::weakly_canonical(base / rel, ec);
  if (ec) return invalid_argument("[onnx] ", label, ": external data path '", location, "': ", ec.message());
  auto [b_end, f_it] = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
  if (b_end != base.end() || rel.lexically_normal().string().rfind("..", 0) == 0) {
    return invalid_argument("[onnx] ", label, ": external data path '", location, "' escapes the model's folder");
  }
  const std::optional<uint64_t> need = declared_bytes(p);
  if (!need) {
    return invalid_argument("[onnx] ", label, ": external data needs a numeric element type and a shape of non-negative dims (dims ",
                            Shape(p.dims().begin(), p.dims().end()).to_string(), ")");
  }
  if (*need > budget_left) {
    return resource_exhausted("[onnx] ", label, ": its ", *need, " bytes of external data exceed what the model may still read (",
                              budget_left, " bytes; see ImportOptions::max_external_data_bytes)");
  }
  if (length >= 0 && static_cast<uint64_t>(length) != *need) {
    return invalid_argument("[onnx] ", label, ": external data 'length' is ", length, " bytes, but its shape ",
                            Shape(p.dims().begin(), p.dims().end()).to_string(), " needs ", *need);
  }
  // Without a length, the data runs to the end of the file: read at most one byte more than needed, so a
  // larger file is reported without being read.
  auto bytes = read_regular_file(full, "[onnx] " + label + ": external data", length >= 0 ? *need : *need + 1, offset, length);
  if (!bytes.ok() && bytes.status().code() == StatusCode::resource_exhausted) {
    return invalid_argument("[onnx] ", label, ": external data in '", location, "' from offset ", offset, " holds more than the ",
                            *need, " bytes its shape needs");
  }
  if (bytes.ok() && bytes->size() != *need) {
    return invalid_argument("[onnx] ", label, ": external data in '", location, "' holds ", bytes->size(), " bytes, but its shape ",
                            Shape(p.dims().begin(), p.dims().end()).to_string(), " needs ", *need);
  }
  if (bytes.ok()) budget_left -= *need;
  return bytes;
}

}  // namespace

Result<DType> dtype_from_onnx(int t) {
  switch (t) {
    case TP::FLOAT: return DType::float32;
    case TP::UINT8: return DType::uint8;
    case TP::INT8: return DType::int8;
    case TP::UINT16: return DType::uint16;
    case TP::INT16: return DType::int16;
    case TP::INT32: return DType::int32;
    case TP::INT64: return DType::int64;
    case TP::STRING: return DType::string;
    case TP::BOOL: return DType::boolean;
    case TP::FLOAT16: return DType::float16;
    case TP::DOUBLE: return DType::float64;
    case TP::UINT32: return DType::uint32;
    case TP::UINT64: return DType::uint64;
    case TP::BFLOAT16: return DType::bfloat16;
    default: break;
  }
  const char* name = TP::DataType_IsValid(t) ? TP::DataType_Name(static_cast<TP::DataType>(t)).c_str() : "invalid";
  return unsupported("[onnx] element type ", name, " (", t, ") is not supported");
}

int dtype_to_onnx(DType t) {
  switch (t) {
    case DType::float32: return TP::FLOAT;
    case DType::float16: return TP::FLOAT16;
    case DType::bfloat16: return TP::BFLOAT16;
    case DType::float64: return TP::DOUBLE;
    case DType::int8: return TP::INT8;
    case DType::int16: return TP::INT16;
    case DType::int32: return TP::INT32;
    case DType::int64: return TP::INT64;
    case DType::uint8: return TP::UINT8;
    case DType::uint16: return TP::UINT16;
    case DType::uint32: return TP::UINT32;
    case DType::uint64: return TP::UINT64;
    case DType::boolean: return TP::BOOL;
    case DType::string: return TP::STRING;
    case DType::undefined: break;
  }
  return TP::UNDEFINED;
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const std::filesystem::path& base_dir) {
  const std::string label = tensor_label(p);
  auto dtype_or = dtype_from_onnx(p.data_type());
  if (!dtype_or.ok()) return dtype_or.status().with_prefix(label + ": ");
  const DType dtype = *dtype_or;
  Shape shape;
  for (int64_t d : p.dims()) {
    if (d < 0) return invalid_argument("[onnx] ", label, ": negative dimension ", d);
    shape.push_back(d);
  }
  if (p.has_segment()) return unsupported("[onnx] ", label, ": segmented tensors are not supported");
  // The element count the shape declares, checked against the data the proto holds before anything is
  // allocated: a declared shape far larger than its data is a corrupt tensor, not a memory shortage.
  uint64_t count = 1;
  bool overflow = false;
  for (int64_t d : shape) overflow = overflow || __builtin_mul_overflow(count, static_cast<uint64_t>(d), &count);
  const uint64_t esize = dtype == DType::string ? 0 : dtype_size(dtype);
  uint64_t need_bytes = 0;
  overflow = overflow || count > static_cast<uint64_t>(INT64_MAX) || __builtin_mul_overflow(count, esize, &need_bytes);
  auto mismatch = [&](uint64_t have, const char* unit) {
    return invalid_argument("[onnx] ", label, ": has ", have, " ", unit, " of data, but its shape ", shape.to_string(), " of ",
                            dtype_name(dtype), " needs ",
                            overflow ? std::string("more than memory can hold") : std::to_string(unit[0] == 'b' ? need_bytes : count));
  };
  auto field_size = [&]() -> int {
    switch (dtype) {
      case DType::string: return p.string_data_size();
      case DType::float32: return p.float_data_size();
      case DType::float64: return p.double_data_size();
      case DType::int64: return p.int64_data_size();
      case DType::uint32:
      case DType::uint64: return p.uint64_data_size();
      default: return p.int32_data_size();
    }
  };

  const bool external = p.data_location() == TP::EXTERNAL;
  std::string ext;
  if (dtype != DType::string && (external || p.has_raw_data())) {
    if (external) {
      uint64_t budget = kDefaultMaxExternalDataBytes;
      ORCHARD_ASSIGN_OR_RETURN(ext, read_external(p, base_dir, budget));
    }
    const std::string& raw = external ? ext : p.raw_data();
    if (overflow || raw.size() != need_bytes) return mismatch(raw.size(), "bytes");
  } else if (overflow || static_cast<uint64_t>(field_size()) != count) {
    return mismatch(static_cast<uint64_t>(field_size()), dtype == DType::string ? "strings" : "values");
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, shape));
  const int64_t n = t.numel();
  if (dtype == DType::string) {
    for (int64_t i = 0; i < n; ++i) t.data<std::string>()[i] = p.string_data(static_cast<int>(i));
    return t;
  }
  if (external || p.has_raw_data()) {
    const std::string& raw = external ? ext : p.raw_data();
    if (!raw.empty()) std::memcpy(t.raw_data(), raw.data(), raw.size());
    return t;
  }
  switch (dtype) {
    case DType::float32:
      copy_field(p.float_data(), t.data<float>(), [](float v) { return v; });
      break;
    case DType::float64:
      copy_field(p.double_data(), t.data<double>(), [](double v) { return v; });
      break;
    case DType::int64:
      copy_field(p.int64_data(), t.data<int64_t>(), [](int64_t v) { return v; });
      break;
    case DType::uint32:
    case DType::uint64:
      if (dtype == DType::uint32) copy_field(p.uint64_data(), t.data<uint32_t>(), [](uint64_t v) { return static_cast<uint32_t>(v); });
      else copy_field(p.uint64_data(), t.data<uint64_t>(), [](uint64_t v) { return v; });
      break;
    default: {  // int32_data carries int32, int16, int8, uint16, uint8, bool, float16 and bfloat16 bits
      const auto& f = p.int32_data();
      switch (dtype) {
        case DType::int32: copy_field(f, t.data<int32_t>(), [](int32_t v) { return v; }); break;
        case DType::int16: copy_field(f, t.data<int16_t>(), [](int32_t v) { return static_cast<int16_t>(v); }); break;
        case DType::int8: copy_field(f, t.data<int8_t>(), [](int32_t v) { return static_cast<int8_t>(v); }); break;
        case DType::uint16:
        case DType::float16:
        case DType::bfloat16: copy_field(f, t.data<uint16_t>(), [](int32_t v) { return static_cast<uint16_t>(v); }); break;
        case DType::uint8: copy_field(f, t.data<uint8_t>(), [](int32_t v) { return static_cast<uint8_t>(v); }); break;
        case DType::boolean: copy_field(f, t.data<bool>(), [](int32_t v) { return v != 0; }); break;
        default: return internal_error("[onnx] ", label, ": unhandled dtype ", dtype_name(dtype));
      }
    }
  }
  return t;
}

Status load_external_data(onnx::TensorProto& p, const std::filesystem::path& base_dir, uint64_t& budget_left) {
  if (p.data_location() != TP::EXTERNAL) return Status::OK();
  ORCHARD_ASSIGN_OR_RETURN(std::string bytes, read_external(p, base_dir, budget_left));
  p.set_raw_data(std::move(bytes));
  p.clear_external_data();
  p.set_data_location(TP::DEFAULT);
  return Status::OK();
}

Result<Tensor> tensor_from_sparse(const onnx::SparseTensorProto& p, const std::filesystem::path& base_dir) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor values, tensor_from_proto(p.values(), base_dir));
  ORCHARD_ASSIGN_OR_RETURN(Tensor indices, tensor_from_proto(p.indices(), base_dir));
  Shape shape(p.dims().begin(), p.dims().end());
  const std::string label = "sparse tensor '" + p.values().name() + "'";
  if (indices.dtype() != DType::int64) return invalid_argument("[onnx] ", label, ": indices must be int64");
  const int64_t nnz = values.numel();
  const size_t esize = dtype_size(values.dtype());
  if (values.dtype() == DType::string) return unsupported("[onnx] ", label, ": string sparse tensors are not supported");
  for (int64_t d : shape) {
    if (d < 0) return invalid_argument("[onnx] ", label, ": negative dimension ", d, " in shape ", shape.to_string());
  }
  const bool linear = indices.rank() == 1;
  if (linear ? indices.numel() != nnz : (indices.rank() != 2 || indices.dim(0) != nnz || indices.dim(1) != static_cast<int64_t>(shape.rank()))) {
    return invalid_argument("[onnx] ", label, ": indices shape ", indices.shape().to_string(), " does not match ", nnz, " values of rank ", shape.rank());
  }
  auto dense_or = Tensor::create(values.dtype(), shape);
  if (!dense_or.ok()) return dense_or.status().with_prefix("[onnx] " + label + ": ");
  Tensor dense = std::move(dense_or).value();
  if (dense.nbytes()) std::memset(dense.raw_data(), 0, dense.nbytes());
  const int64_t total = dense.numel();
  const int64_t* idx = indices.data<int64_t>();
  for (int64_t k = 0; k < nnz; ++k) {
    int64_t off = 0;
    if (linear) {
      off = idx[k];
    } else {
      for (size_t d = 0; d < shape.rank(); ++d) {
        const int64_t i = idx[k * static_cast<int64_t>(shape.rank()) + static_cast<int64_t>(d)];
        if (i < 0 || i >= shape[d]) {
          return invalid_argument("[onnx] ", label, ": index ", i, " of value ", k, " is out of range for dim ", d, " of shape ", shape.to_string());
        }
        off = off * shape[d] + i;
      }
    }
    if (off < 0 || off >= total) return invalid_argument("[onnx] ", label, ": index ", off, " out of range for shape ", shape.to_string());
    std::memcpy(static_cast<char*>(dense.raw_data()) + off * esize, static_cast<const char*>(values.raw_data()) + k * esize, esize);
  }
  return dense;
}

void tensor_to_proto(const Tensor& t, const std::string& name, onnx::TensorProto& out) {
  out.Clear();
  out.set_name(name);
  out.set_data_type(dtype_to_onnx(t.dtype()));
  for (int64_t d : t.shape()) out.add_dims(d);
  if (t.dtype() == DType::string) {
    for (int64_t i = 0; i < t.numel(); ++i) out.add_string_data(t.data<std::string>()[i]);
  } else {
    out.set_raw_data(t.raw_data(), t.nbytes());
  }
}

Result<ValueInfo> value_info_from_type(const std::string& name, const onnx::TypeProto& type) {
  ValueInfo info;
  info.name = name;
  const onnx::TypeProto* tensor_type = &type;
  switch (type.value_case()) {
    case onnx::TypeProto::kTensorType: info.kind = Value::Kind::tensor; break;
    case onnx::TypeProto::kSparseTensorType: info.kind = Value::Kind::tensor; break;
    case onnx::TypeProto::kSequenceType:
      info.kind = Value::Kind::sequence;
      tensor_type = &type.sequence_type().elem_type();
      break;
    case onnx::TypeProto::kOptionalType:
      info.kind = Value::Kind::optional;
      tensor_type = &type.optional_type().elem_type();
      if (tensor_type->has_sequence_type()) tensor_type = &tensor_type->sequence_type().elem_type();
      break;
    case onnx::TypeProto::kMapType: return unsupported("[onnx] value '", name, "': map types are not supported");
    default: return info;  // type not given
  }
  if (tensor_type->has_tensor_type()) {
    const auto& tt = tensor_type->tensor_type();
    if (tt.elem_type() != 0) {
      auto dt = dtype_from_onnx(tt.elem_type());
      if (!dt.ok()) return dt.status().with_prefix("value '" + name + "': ");
      info.dtype = *dt;
    }
    if (tt.has_shape()) {
      info.has_shape = true;
      for (const auto& d : tt.shape().dim()) {
        Dim dim;
        if (d.has_dim_value()) dim.value = d.dim_value();
        else if (d.has_dim_param()) dim.symbol = d.dim_param();
        info.shape.push_back(dim);
      }
    }
  }
  return info;
}

Result<Value> value_from_sequence(const onnx::SequenceProto& p) {
  if (p.elem_type() != onnx::SequenceProto::TENSOR && p.elem_type() != onnx::SequenceProto::UNDEFINED) {
    return unsupported("[onnx] sequence '", p.name(), "': only sequences of tensors are supported");
  }
  std::vector<Tensor> items;
  DType dtype = DType::undefined;
  for (const auto& tp : p.tensor_values()) {
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(tp, {}));
    dtype = t.dtype();
    items.push_back(std::move(t));
  }
  return Value::sequence(std::move(items), dtype);
}

Result<Value> value_from_optional(const onnx::OptionalProto& p) {
  switch (p.elem_type()) {
    case onnx::OptionalProto::TENSOR: {
      if (!p.has_tensor_value()) return Value::optional_none();
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, tensor_from_proto(p.tensor_value(), {}));
      return Value::optional(Value(std::move(t)));
    }
    case onnx::OptionalProto::SEQUENCE: {
      if (!p.has_sequence_value()) return Value::optional_none();
      ORCHARD_ASSIGN_OR_RETURN(Value s, value_from_sequence(p.sequence_value()));
      return Value::optional(std::move(s));
    }
    case onnx::OptionalProto::UNDEFINED: return Value::optional_none();
    default: return unsupported("[onnx] optional '", p.name(), "': element kind not supported");
  }
}

}  // namespace orchard::onnx_import
