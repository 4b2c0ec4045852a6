#include "backends/coreml/mil_builder.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "backends/coreml/package.hpp"

namespace orchard::coreml {

namespace {

const std::set<std::string, std::less<>>& reserved_words() {
  static const std::set<std::string, std::less<>> words = {
      "any",   "bool",   "program", "func",  "tensor", "list",  "dict",  "tuple", "true",  "false", "string", "bf16",
      "fp16",  "fp32",   "fp64",    "int8",  "int16",  "int32", "int64", "uint8", "uint16", "uint32", "uint64"};
  return words;
}

// Converts `t`'s elements to the bytes of MIL type `as` (little-endian) and returns them.
std::vector<std::byte> element_bytes(const Tensor& t, mil::DataType as) {
  const int64_t n = t.numel();
  auto read = [&](int64_t i) -> double {
    switch (t.dtype()) {
      case DType::float32: return t.data<float>()[i];
      case DType::float16: return float16::to_float(t.data<float16>()[i].bits);
      case DType::float64: return t.data<double>()[i];
      case DType::int64: return static_cast<double>(t.data<int64_t>()[i]);
      case DType::int32: return t.data<int32_t>()[i];
      case DType::int8: return t.data<int8_t>()[i];
      case DType::uint8: return t.data<uint8_t>()[i];
      case DType::boolean: return t.data<bool>()[i] ? 1 : 0;
      default: return 0;
    }
  };
  std::vector<std::byte> out;
  auto put = [&](const void* p, size_t size) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + size);
  };
  for (int64_t i = 0; i < n; ++i) {
    const double v = read(i);
    if (as == mil::FLOAT16) {
      const uint16_t h = float16::from_float(static_cast<float>(v));
      put(&h, 2);
    } else if (as == mil::FLOAT32) {
      const float f = static_cast<float>(v);
      put(&f, 4);
    } else if (as == mil::INT32) {
      const double c = std::clamp(v, -2147483648.0, 2147483647.0);
      const int32_t x = static_cast<int32_t>(c);
      put(&x, 4);
    } else if (as == mil::INT8) {
      const int8_t x = static_cast<int8_t>(v);
      put(&x, 1);
    } else if (as == mil::UINT8 || as == mil::BOOL) {
      const uint8_t x = static_cast<uint8_t>(v);
      put(&x, 1);
    }
  }
  return out;
}

}  // namespace

Result<std::string> serialize_model(const CoreML::Specification::Model& model) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    if (!model.SerializeToCodedStream(&coded)) return internal_error("[coreml] model serialization failed");
  }
  return bytes;
}

std::string sanitize_name(const std::string& name) {
  std::string s;
  for (char c : name) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '@') ? c : '_';
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '@' || reserved_words().count(s)) s = "_" + s;
  return s;
}

Result<TensorDesc> find_desc(const graph::Graph& g, const std::string& name) {
  const ValueInfo* info = nullptr;
  if (auto it = g.initializers.find(name); it != g.initializers.end()) {
    return TensorDesc{it->second.dtype(), it->second.shape().dims()};
  }
  for (const auto& v : g.inputs) {
    if (v.name == name) info = &v;
  }
  for (const auto& v : g.outputs) {
    if (!info && v.name == name) info = &v;
  }
  if (!info) {
    if (auto it = g.value_info.find(name); it != g.value_info.end()) info = &it->second;
  }
  if (!info) return unsupported("value '", name, "' has no inferred type");
  if (info->kind != Value::Kind::tensor) return unsupported("value '", name, "' is not a tensor");
  if (!info->has_shape) return unsupported("value '", name, "' has no inferred shape");
  TensorDesc d{info->dtype, {}};
  for (const auto& dim : info->shape) {
    if (!dim.fixed()) return unsupported("value '", name, "' has symbolic shape ", info->description(), " (give static or enumerated shapes)");
    d.shape.push_back(dim.value);
  }
  return d;
}

const Tensor* find_constant(const graph::Graph& g, const std::string& name) {
  auto it = g.initializers.find(name);
  return it == g.initializers.end() ? nullptr : &it->second;
}

mil::DataType mil_type_for(DType t, Precision precision) {
  switch (t) {
    case DType::float32:
    case DType::float16: return precision == Precision::fp16 ? mil::FLOAT16 : mil::FLOAT32;
    case DType::int64:
    case DType::int32: return mil::INT32;
    case DType::boolean: return mil::BOOL;
    default: return mil::UNUSED_TYPE;
  }
}

const char* mil_type_string(mil::DataType t) {
  switch (t) {
    case mil::FLOAT16: return "fp16";
    case mil::FLOAT32: return "fp32";
    case mil::INT32: return "int32";
    case mil::BOOL: return "bool";
    case mil::INT8: return "int8";
    case mil::UINT8: return "uint8";
    default: return "unknown";
  }
}

mil::ValueType tensor_value_type(mil::DataType t, const std::vector<int64_t>& shape) {
  mil::ValueType vt;
  auto* tt = vt.mutable_tensortype();
  tt->set_datatype(t);
  tt->set_rank(static_cast<int64_t>(shape.size()));
  for (int64_t d : shape) tt->add_dimensions()->mutable_constant()->set_size(static_cast<uint64_t>(d));
  return vt;
}

mil::Value int_value(int32_t v) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(mil::INT32, {});
  out.mutable_immediatevalue()->mutable_tensor()->mutable_ints()->add_values(v);
  return out;
}

mil::Value ints_value(const std::vector<int32_t>& v) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(mil::INT32, {static_cast<int64_t>(v.size())});
  auto* ints = out.mutable_immediatevalue()->mutable_tensor()->mutable_ints();
  for (int32_t x : v) ints->add_values(x);
  return out;
}

mil::Value bool_value(bool v) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(mil::BOOL, {});
  out.mutable_immediatevalue()->mutable_tensor()->mutable_bools()->add_values(v);
  return out;
}

mil::Value bools_value(const std::vector<bool>& v) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(mil::BOOL, {static_cast<int64_t>(v.size())});
  auto* b = out.mutable_immediatevalue()->mutable_tensor()->mutable_bools();
  for (bool x : v) b->add_values(x);
  return out;
}

mil::Value float_value(float v, mil::DataType t) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(t, {});
  auto* tensor = out.mutable_immediatevalue()->mutable_tensor();
  if (t == mil::FLOAT16) {
    const uint16_t h = float16::from_float(v);
    tensor->mutable_bytes()->set_values(std::string(reinterpret_cast<const char*>(&h), 2));
  } else {
    tensor->mutable_floats()->add_values(v);
  }
  return out;
}

mil::Value string_value(const std::string& v) {
  mil::Value out;
  *out.mutable_type() = tensor_value_type(mil::STRING, {});
  out.mutable_immediatevalue()->mutable_tensor()->mutable_strings()->add_values(v);
  return out;
}

std::vector<int32_t> to_int32(const std::vector<int64_t>& v) {
  std::vector<int32_t> out;
  for (int64_t x : v) {
    out.push_back(static_cast<int32_t>(std::clamp<int64_t>(x, std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max())));
  }
  return out;
}

ConvertContext::ConvertContext(const graph::Graph& graph, const ConvertOptions& options, mil::Block& block, BlobWriter& blobs)
    : graph_(graph), options_(options), block_(block), blobs_(blobs) {}

mil::DataType ConvertContext::float_type() const {
  return options_.precision == Precision::fp16 ? mil::FLOAT16 : mil::FLOAT32;
}

std::string ConvertContext::fresh_name(const std::string& hint) {
  const std::string base = sanitize_name(hint);
  std::string name = base;
  for (int i = 1; used_.count(name); ++i) name = base + "_" + std::to_string(i);
  used_.insert(name);
  return name;
}

Var ConvertContext::add_const(const Tensor& t, mil::DataType as, const std::string& hint) {
  Var v{fresh_name(hint), as, t.shape().dims()};
  auto* op = block_.add_operations();
  op->set_type("const");
  (*op->mutable_attributes())["name"] = string_value(v.name);
  mil::Value val;
  *val.mutable_type() = tensor_value_type(as, v.shape);
  std::vector<std::byte> bytes = element_bytes(t, as);
  const bool to_blob = t.numel() >= 10 && (as == mil::FLOAT16 || as == mil::FLOAT32 || as == mil::INT8 || as == mil::UINT8);
  if (to_blob) {
    const BlobDType bt = as == mil::FLOAT16 ? BlobDType::float16
                         : as == mil::FLOAT32 ? BlobDType::float32
                         : as == mil::INT8    ? BlobDType::int8
                                              : BlobDType::uint8;
    auto* blob = val.mutable_blobfilevalue();
    blob->set_filename(kWeightFileRef);
    blob->set_offset(blobs_.append(bt, bytes));
  } else {
    auto* tensor = val.mutable_immediatevalue()->mutable_tensor();
    const int64_t n = t.numel();
    if (as == mil::FLOAT32) {
      auto* f = tensor->mutable_floats();
      for (int64_t i = 0; i < n; ++i) {
        float x;
        std::memcpy(&x, bytes.data() + 4 * i, 4);
        f->add_values(x);
      }
    } else if (as == mil::INT32) {
      auto* f = tensor->mutable_ints();
      for (int64_t i = 0; i < n; ++i) {
        int32_t x;
        std::memcpy(&x, bytes.data() + 4 * i, 4);
        f->add_values(x);
      }
    } else if (as == mil::BOOL) {
      auto* f = tensor->mutable_bools();
      for (int64_t i = 0; i < n; ++i) f->add_values(bytes[i] != std::byte{0});
    } else {  // fp16, int8, uint8: raw bytes
      tensor->mutable_bytes()->set_values(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    }
  }
  (*op->mutable_attributes())["val"] = val;
  auto* out = op->add_outputs();
  out->set_name(v.name);
  *out->mutable_type() = val.type();
  return v;
}

Result<Var> ConvertContext::input(const std::string& name) {
  if (auto it = bound_.find(name); it != bound_.end()) return it->second;
  if (const Tensor* t = constant(name)) {
    const mil::DataType as = mil_type_for(t->dtype(), options_.precision);
    if (as == mil::UNUSED_TYPE) return unsupported("constant '", name, "' has dtype ", dtype_name(t->dtype()), " which MIL lacks");
    Var v = add_const(*t, as, name);
    bound_[name] = v;
    return v;
  }
  return internal_error("[coreml] value '", name, "' is used before it is defined in the partition");
}

Result<Var> ConvertContext::input(const std::string& name, mil::DataType want) {
  ORCHARD_ASSIGN_OR_RETURN(Var v, input(name));
  if (v.dtype == want) return v;
  // A constant is written directly in the wanted type rather than cast at run time.
  if (const Tensor* t = constant(name)) {
    const std::string key = name + "|const|" + mil_type_string(want);
    if (auto it = casts_.find(key); it != casts_.end()) return it->second;
    Var c = add_const(*t, want, name + "_" + mil_type_string(want));
    casts_[key] = c;
    return c;
  }
  return cast(v, want);
}

Var ConvertContext::cast(const Var& v, mil::DataType to) {
  if (v.dtype == to) return v;
  const std::string key = v.name + "|" + mil_type_string(to);
  if (auto it = casts_.find(key); it != casts_.end()) return it->second;
  Var out = op("cast", {{"x", v.name}, {"dtype", string_value(mil_type_string(to))}}, to, v.shape, v.name + "_" + mil_type_string(to));
  casts_[key] = out;
  return out;
}

void ConvertContext::emit(const std::string& type, const Params& params, const std::vector<Var>& outs) {
  auto* op = block_.add_operations();
  op->set_type(type);
  for (const auto& [key, arg] : params) {
    auto& a = (*op->mutable_inputs())[key];
    if (const auto* var = std::get_if<std::string>(&arg)) {
      a.add_arguments()->set_name(*var);
    } else if (const auto* vars = std::get_if<std::vector<std::string>>(&arg)) {
      for (const auto& n : *vars) a.add_arguments()->set_name(n);
    } else {
      *a.add_arguments()->mutable_value() = std::get<mil::Value>(arg);
    }
  }
  for (const auto& v : outs) {
    auto* o = op->add_outputs();
    o->set_name(v.name);
    *o->mutable_type() = tensor_value_type(v.dtype, v.shape);
  }
  (*op->mutable_attributes())["name"] = string_value(outs.empty() ? fresh_name(type) : outs[0].name);
}

std::vector<Var> ConvertContext::op_multi(const std::string& type, const Params& params,
                                          const std::vector<std::pair<mil::DataType, std::vector<int64_t>>>& outs,
                                          const std::string& hint) {
  std::vector<Var> vars;
  for (size_t i = 0; i < outs.size(); ++i) {
    vars.push_back(Var{fresh_name(outs.size() == 1 ? hint : hint + "_" + std::to_string(i)), outs[i].first, outs[i].second});
  }
  emit(type, params, vars);
  return vars;
}

Var ConvertContext::op_named(const std::string& name, const std::string& type, const Params& params, mil::DataType dtype,
                             const std::vector<int64_t>& shape) {
  Var v{name, dtype, shape};
  emit(type, params, {v});
  return v;
}

Var ConvertContext::op(const std::string& type, const Params& params, mil::DataType dtype, const std::vector<int64_t>& shape,
                       const std::string& hint) {
  return op_multi(type, params, {{dtype, shape}}, hint)[0];
}

}  // namespace orchard::coreml
