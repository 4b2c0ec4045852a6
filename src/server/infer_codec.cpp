#include "server/infer_codec.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace orchard::server {
namespace {

using Json = nlohmann::json;

struct TypeName {
  DType dtype;
  std::string_view name;
};
constexpr TypeName kTypes[] = {
    {DType::boolean, "BOOL"},  {DType::uint8, "UINT8"},   {DType::uint16, "UINT16"}, {DType::uint32, "UINT32"},
    {DType::uint64, "UINT64"}, {DType::int8, "INT8"},     {DType::int16, "INT16"},   {DType::int32, "INT32"},
    {DType::int64, "INT64"},   {DType::float16, "FP16"},  {DType::float32, "FP32"},  {DType::float64, "FP64"},
    {DType::string, "BYTES"},  {DType::bfloat16, "BF16"},
};

// Binary element size: BYTES has none (each element carries a 4-byte length).
size_t wire_size(DType t) { return t == DType::string ? 0 : dtype_size(t); }

// Appends `s` as a JSON string. Printable ASCII without quotes or backslashes (names, ids, versions) is copied
// as is; anything else goes through nlohmann, which escapes it and replaces invalid UTF-8.
void append_json_string(std::string& out, std::string_view s) {
  bool plain = true;
  for (const char c : s) plain &= c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  if (!plain) {
    out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

}  // namespace

Result<Tensor> decode_binary_tensor(DType dtype, const std::vector<int64_t>& dims, std::string_view raw,
                                    const std::string& input) {
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, Shape(dims)));
  if (dtype != DType::string) {
    const uint64_t want = static_cast<uint64_t>(t.numel()) * wire_size(dtype);
    if (want != raw.size())
      return invalid_argument("[server] input '", input, "': binary_data_size ", raw.size(), " but ", want,
                              " bytes expected for ", kserve_datatype(dtype), Shape(dims).to_string());
    if (want && dtype != DType::boolean) std::memcpy(t.raw_data(), raw.data(), want);
    if (dtype == DType::boolean) {
      for (int64_t i = 0; i < t.numel(); ++i) {
        const uint8_t b = static_cast<uint8_t>(raw[static_cast<size_t>(i)]);
        if (b > 1)
          return invalid_argument("[server] input '", input, "': BOOL element ", i, " is byte ", int{b},
                                  ", not 0 or 1");
        t.data<bool>()[i] = b != 0;
      }
    }
    return t;
  }
  size_t off = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (raw.size() - off < 4)
      return invalid_argument("[server] input '", input, "': BYTES element ", i, " has no 4-byte length");
    uint32_t len = 0;
    for (int b = 3; b >= 0; --b) len = (len << 8) | static_cast<uint8_t>(raw[off + b]);
    off += 4;
    if (raw.size() - off < len)
      return invalid_argument("[server] input '", input, "': BYTES element ", i, " of ", len,
                              " bytes runs past the data");
    t.data<std::string>()[i].assign(raw.data() + off, len);
    off += len;
  }
  if (off != raw.size())
    return invalid_argument("[server] input '", input, "': ", raw.size() - off, " bytes left after ", t.numel(),
                            " BYTES elements");
  return t;
}

namespace {

template <class T>
void append_number(std::string& out, T v) {
  char buf[64];
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) {  // JSON has no NaN/Inf literal
      out += "null";
      return;
    }
  }
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? end : buf);
}

template <class T>
void append_array(std::string& out, const Tensor& t) {
  const T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (i) out += ',';
    append_number(out, p[i]);
  }
}

Status append_json_data(std::string& out, const std::string& name, const Tensor& t) {
  switch (t.dtype()) {
    case DType::boolean:
      for (int64_t i = 0; i < t.numel(); ++i)
        out += i ? (t.data<bool>()[i] ? ",true" : ",false") : (t.data<bool>()[i] ? "true" : "false");
      return Status::OK();
    case DType::int8:
      append_array<int8_t>(out, t);
      return Status::OK();
    case DType::int16:
      append_array<int16_t>(out, t);
      return Status::OK();
    case DType::int32:
      append_array<int32_t>(out, t);
      return Status::OK();
    case DType::int64:
      append_array<int64_t>(out, t);
      return Status::OK();
    case DType::uint8:
      append_array<uint8_t>(out, t);
      return Status::OK();
    case DType::uint16:
      append_array<uint16_t>(out, t);
      return Status::OK();
    case DType::uint32:
      append_array<uint32_t>(out, t);
      return Status::OK();
    case DType::uint64:
      append_array<uint64_t>(out, t);
      return Status::OK();
    case DType::float32:
      append_array<float>(out, t);
      return Status::OK();
    case DType::float64:
      append_array<double>(out, t);
      return Status::OK();
    case DType::string:
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (i) out += ',';
        append_json_string(out, t.data<std::string>()[i]);
      }
      return Status::OK();
    default:
      break;
  }
  return unsupported("[server] output '", name, "': datatype ", kserve_datatype(t.dtype()),
                     " has no JSON encoding; request it with binary_data");
}

}  // namespace

void append_binary_tensor(std::string& out, const Tensor& t) {
  if (t.dtype() == DType::string) {
    for (int64_t i = 0; i < t.numel(); ++i) {
      const std::string& s = t.data<std::string>()[i];
      const uint32_t len = static_cast<uint32_t>(s.size());
      for (int b = 0; b < 4; ++b) out += static_cast<char>((len >> (8 * b)) & 0xff);
      out += s;
    }
  } else if (t.dtype() == DType::boolean) {
    for (int64_t i = 0; i < t.numel(); ++i) out += static_cast<char>(t.data<bool>()[i] ? 1 : 0);
  } else {
    out.append(static_cast<const char*>(t.raw_data()), t.nbytes());
  }
}

namespace {

size_t binary_size(const Tensor& t) {
  if (t.dtype() != DType::string) return static_cast<size_t>(t.numel()) * wire_size(t.dtype());
  size_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i) n += 4 + t.data<std::string>()[i].size();
  return n;
}

}  // namespace

std::string_view kserve_datatype(DType t) {
  for (const TypeName& e : kTypes)
    if (e.dtype == t) return e.name;
  return "";
}

DType dtype_from_kserve(std::string_view datatype) {
  for (const TypeName& e : kTypes)
    if (e.name == datatype) return e.dtype;
  return DType::undefined;
}

Status append_infer_response(std::string& out, std::optional<size_t>& json_length, std::string_view model,
                             std::string_view version, std::string_view id, const NamedValues& outputs,
                             const std::vector<bool>& binary) {
  const size_t start = out.size();
  out += "{\"model_name\":";
  append_json_string(out, model);
  if (!version.empty()) {
    out += ",\"model_version\":";
    append_json_string(out, version);
  }
  out += ",\"id\":";
  append_json_string(out, id);
  out += ",\"outputs\":[";
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [name, value] = outputs[i];
    if (!value.is_tensor())
      return unsupported("[server] output '", name, "' is a ", value.description(), ", not a tensor");
    const Tensor& t = value.tensor();
    const std::string_view datatype = kserve_datatype(t.dtype());
    if (datatype.empty()) return unsupported("[server] output '", name, "' has dtype ", dtype_name(t.dtype()));
    if (i) out += ',';
    out += "{\"name\":";
    append_json_string(out, name);
    out += ",\"datatype\":\"";
    out += datatype;
    out += "\",\"shape\":[";
    for (size_t d = 0; d < t.rank(); ++d) {
      if (d) out += ',';
      append_number(out, t.dim(d));
    }
    out += ']';
    if (i < binary.size() && binary[i]) {
      out += ",\"parameters\":{\"binary_data_size\":";
      append_number(out, binary_size(t));
      out += "}}";
    } else {
      out += ",\"data\":[";
      ORCHARD_RETURN_IF_ERROR(append_json_data(out, name, t));
      out += "]}";
    }
  }
  out += "]}";
  json_length.reset();
  if (std::find(binary.begin(), binary.end(), true) == binary.end()) return Status::OK();
  json_length = out.size() - start;
  for (size_t i = 0; i < outputs.size() && i < binary.size(); ++i)
    if (binary[i]) append_binary_tensor(out, outputs[i].second.tensor());
  return Status::OK();
}

Result<EncodedBody> encode_infer_response(std::string_view model, std::string_view version, std::string_view id,
                                          const NamedValues& outputs, const std::vector<bool>& binary) {
  EncodedBody out;
  ORCHARD_RETURN_IF_ERROR(append_infer_response(out.body, out.json_length, model, version, id, outputs, binary));
  return out;
}

std::string error_body(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

}  // namespace orchard::server
