#include "server/infer_codec.hpp"

#include <charconv>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

namespace orchard::server {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxRank = 32;
constexpr int64_t kMaxElements = int64_t{1} << 40;  // far above any body cap; stops overflow in numel

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

std::string json_quote(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Result<std::vector<int64_t>> parse_shape(const Json& j, const std::string& input) {
  if (!j.is_array()) return invalid_argument("[server] input '", input, "': 'shape' must be an array of integers");
  if (j.size() > kMaxRank)
    return invalid_argument("[server] input '", input, "': rank ", j.size(), " exceeds ", kMaxRank);
  std::vector<int64_t> dims;
  int64_t numel = 1;
  for (const Json& d : j) {
    if (!d.is_number_integer() || (d.is_number_integer() && !d.is_number_unsigned() && d.get<int64_t>() < 0))
      return invalid_argument("[server] input '", input, "': shape dimension ", d.dump(),
                              " is not a non-negative integer");
    const uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(kMaxElements))
      return invalid_argument("[server] input '", input, "': shape dimension ", v, " is too large");
    dims.push_back(static_cast<int64_t>(v));
    if (v != 0 && numel > kMaxElements / static_cast<int64_t>(v))
      return invalid_argument("[server] input '", input, "': shape ", j.dump(), " has too many elements");
    numel *= static_cast<int64_t>(v);
  }
  return dims;
}

// Counts the leaves of nested `data` (arrays flatten; depth bounded by rank + 1).
Result<int64_t> count_leaves(const Json& j, size_t depth, size_t max_depth, const std::string& input) {
  if (!j.is_array()) return int64_t{1};
  if (depth >= max_depth)
    return invalid_argument("[server] input '", input, "': 'data' is nested deeper than its shape");
  int64_t n = 0;
  for (const Json& e : j) {
    ORCHARD_ASSIGN_OR_RETURN(int64_t k, count_leaves(e, depth + 1, max_depth, input));
    n += k;
  }
  return n;
}

template <class T>
Status store_int(const Json& j, T* out, const std::string& input) {
  if (!j.is_number_integer())
    return invalid_argument("[server] input '", input, "': element ", j.dump(), " is not an integer");
  if (j.is_number_unsigned()) {
    const uint64_t v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return invalid_argument("[server] input '", input, "': element ", v, " out of range");
    *out = static_cast<T>(v);
    return Status::OK();
  }
  const int64_t v = j.get<int64_t>();
  if constexpr (std::is_unsigned_v<T>) {
    if (v < 0) return invalid_argument("[server] input '", input, "': element ", v, " out of range");
    if (static_cast<uint64_t>(v) > static_cast<uint64_t>(std::numeric_limits<T>::max()))
      return invalid_argument("[server] input '", input, "': element ", v, " out of range");
  } else {
    if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
      return invalid_argument("[server] input '", input, "': element ", v, " out of range");
  }
  *out = static_cast<T>(v);
  return Status::OK();
}

// Writes the leaves of `j` into `t` starting at element `*pos`.
Status fill_leaves(const Json& j, Tensor& t, int64_t* pos, const std::string& input) {
  if (j.is_array()) {
    for (const Json& e : j) ORCHARD_RETURN_IF_ERROR(fill_leaves(e, t, pos, input));
    return Status::OK();
  }
  const int64_t i = (*pos)++;
  switch (t.dtype()) {
    case DType::boolean:
      if (!j.is_boolean())
        return invalid_argument("[server] input '", input, "': element ", j.dump(), " is not a boolean");
      t.data<bool>()[i] = j.get<bool>();
      return Status::OK();
    case DType::int8:
      return store_int(j, t.data<int8_t>() + i, input);
    case DType::int16:
      return store_int(j, t.data<int16_t>() + i, input);
    case DType::int32:
      return store_int(j, t.data<int32_t>() + i, input);
    case DType::int64:
      return store_int(j, t.data<int64_t>() + i, input);
    case DType::uint8:
      return store_int(j, t.data<uint8_t>() + i, input);
    case DType::uint16:
      return store_int(j, t.data<uint16_t>() + i, input);
    case DType::uint32:
      return store_int(j, t.data<uint32_t>() + i, input);
    case DType::uint64:
      return store_int(j, t.data<uint64_t>() + i, input);
    case DType::float32:
    case DType::float64: {
      if (!j.is_number())
        return invalid_argument("[server] input '", input, "': element ", j.dump(), " is not a number");
      const double v = j.get<double>();
      if (t.dtype() == DType::float32)
        t.data<float>()[i] = static_cast<float>(v);
      else
        t.data<double>()[i] = v;
      return Status::OK();
    }
    case DType::string:
      if (!j.is_string())
        return invalid_argument("[server] input '", input, "': element ", j.dump(), " is not a string");
      t.data<std::string>()[i] = j.get<std::string>();
      return Status::OK();
    default:
      break;
  }
  return invalid_argument("[server] input '", input, "': datatype ", kserve_datatype(t.dtype()),
                          " cannot be sent as JSON; use the binary tensor data extension");
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

// Reads an integer request parameter.
Result<int64_t> int_parameter(const Json& params, const char* key) {
  const auto it = params.find(key);
  if (it == params.end()) return int64_t{0};
  if (!it->is_number_integer() || (!it->is_number_unsigned() && it->get<int64_t>() < 0))
    return invalid_argument("[server] parameter '", key, "' must be a non-negative integer, got ", it->dump());
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return invalid_argument("[server] parameter '", key, "' is too large: ", it->dump());
  return it->get<int64_t>();
}

Result<std::optional<bool>> bool_parameter(const Json& params, const char* key, const std::string& where) {
  if (!params.is_object()) return std::optional<bool>();
  const auto it = params.find(key);
  if (it == params.end()) return std::optional<bool>();
  if (!it->is_boolean()) return invalid_argument("[server] ", where, ": parameter '", key, "' must be a boolean");
  return std::optional<bool>(it->get<bool>());
}

Result<InferRequest> decode_json(const Json& root, std::string_view binary) {
  if (!root.is_object()) return invalid_argument("[server] infer request must be a JSON object");
  InferRequest req;
  if (auto it = root.find("id"); it != root.end()) {
    if (!it->is_string()) return invalid_argument("[server] 'id' must be a string");
    req.id = it->get<std::string>();
  }
  if (auto it = root.find("parameters"); it != root.end()) {
    if (!it->is_object()) return invalid_argument("[server] 'parameters' must be an object");
    ORCHARD_ASSIGN_OR_RETURN(req.priority, int_parameter(*it, "priority"));
    ORCHARD_ASSIGN_OR_RETURN(req.timeout_us, int_parameter(*it, "timeout"));
    ORCHARD_ASSIGN_OR_RETURN(std::optional<bool> b, bool_parameter(*it, "binary_data_output", "request"));
    req.binary_outputs = b.value_or(false);
  }
  const auto inputs = root.find("inputs");
  if (inputs == root.end() || !inputs->is_array()) return invalid_argument("[server] 'inputs' must be an array");
  size_t offset = 0;
  for (const Json& in : *inputs) {
    if (!in.is_object()) return invalid_argument("[server] each input must be an object");
    const auto name = in.find("name");
    if (name == in.end() || !name->is_string()) return invalid_argument("[server] an input has no string 'name'");
    const std::string input = name->get<std::string>();
    for (const auto& [n, v] : req.inputs)
      if (n == input) return invalid_argument("[server] input '", input, "' given twice");
    const auto datatype = in.find("datatype");
    if (datatype == in.end() || !datatype->is_string())
      return invalid_argument("[server] input '", input, "' has no string 'datatype'");
    const DType dtype = dtype_from_kserve(datatype->get<std::string>());
    if (dtype == DType::undefined)
      return invalid_argument("[server] input '", input, "': unknown datatype '", datatype->get<std::string>(), "'");
    const auto shape = in.find("shape");
    if (shape == in.end()) return invalid_argument("[server] input '", input, "' has no 'shape'");
    ORCHARD_ASSIGN_OR_RETURN(std::vector<int64_t> dims, parse_shape(*shape, input));
    int64_t numel = 1;
    for (int64_t d : dims) numel *= d;

    std::optional<int64_t> binary_size;
    if (auto p = in.find("parameters"); p != in.end()) {
      if (!p->is_object()) return invalid_argument("[server] input '", input, "': 'parameters' must be an object");
      if (p->contains("binary_data_size")) {
        ORCHARD_ASSIGN_OR_RETURN(int64_t n, int_parameter(*p, "binary_data_size"));
        binary_size = n;
      }
    }
    const auto data = in.find("data");
    if (binary_size) {
      if (data != in.end())
        return invalid_argument("[server] input '", input, "' has both 'data' and binary_data_size");
      if (static_cast<uint64_t>(*binary_size) > binary.size() - offset)
        return invalid_argument("[server] input '", input, "': binary_data_size ", *binary_size, " but only ",
                                binary.size() - offset, " binary bytes left in the body");
      ORCHARD_ASSIGN_OR_RETURN(Tensor t, decode_binary_tensor(dtype, dims, binary.substr(offset, *binary_size), input));
      offset += static_cast<size_t>(*binary_size);
      req.inputs.emplace_back(input, std::move(t));
      continue;
    }
    if (data == in.end())
      return invalid_argument("[server] input '", input, "' has neither 'data' nor binary_data_size");
    if (dtype == DType::float16 || dtype == DType::bfloat16)
      return invalid_argument("[server] input '", input, "': datatype ", kserve_datatype(dtype),
                              " cannot be sent as JSON; use the binary tensor data extension");
    ORCHARD_ASSIGN_OR_RETURN(int64_t leaves, count_leaves(*data, 0, dims.size() + 1, input));
    if (leaves != numel)
      return invalid_argument("[server] input '", input, "': 'data' has ", leaves, " elements but shape ",
                              Shape(dims).to_string(), " needs ", numel);
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, Shape(dims)));
    int64_t pos = 0;
    ORCHARD_RETURN_IF_ERROR(fill_leaves(*data, t, &pos, input));
    req.inputs.emplace_back(input, std::move(t));
  }
  if (offset != binary.size())
    return invalid_argument("[server] ", binary.size() - offset,
                            " binary bytes after the JSON header belong to no input");
  if (auto outs = root.find("outputs"); outs != root.end()) {
    if (!outs->is_array()) return invalid_argument("[server] 'outputs' must be an array");
    for (const Json& o : *outs) {
      if (!o.is_object()) return invalid_argument("[server] each requested output must be an object");
      const auto name = o.find("name");
      if (name == o.end() || !name->is_string()) return invalid_argument("[server] a requested output has no 'name'");
      RequestedOutput ro{name->get<std::string>(), std::nullopt};
      if (auto p = o.find("parameters"); p != o.end()) {
        if (!p->is_object()) return invalid_argument("[server] output '", ro.name, "': 'parameters' must be an object");
        ORCHARD_ASSIGN_OR_RETURN(ro.binary, bool_parameter(*p, "binary_data", "output '" + ro.name + "'"));
      }
      req.outputs.push_back(std::move(ro));
    }
  }
  return req;
}

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
        out += json_quote(t.data<std::string>()[i]);
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

Result<InferRequest> decode_infer_request(std::string_view body, std::optional<size_t> json_length) {
  std::string_view header = body, binary;
  if (json_length) {
    if (*json_length > body.size())
      return invalid_argument("[server] Inference-Header-Content-Length ", *json_length, " exceeds the body's ",
                              body.size(), " bytes");
    header = body.substr(0, *json_length);
    binary = body.substr(*json_length);
  }
  Json root = Json::parse(header.begin(), header.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return invalid_argument("[server] infer request body is not valid JSON");
  try {
    return decode_json(root, binary);
  } catch (const std::exception& e) {  // nlohmann type errors; decode_json checks types first, so a bug
    return internal_error("[server] infer request decoder: ", e.what());
  }
}

Result<EncodedBody> encode_infer_response(std::string_view model, std::string_view version, std::string_view id,
                                          const NamedValues& outputs, const std::vector<bool>& binary) {
  std::string json = "{\"model_name\":" + json_quote(model);
  if (!version.empty()) json += ",\"model_version\":" + json_quote(version);
  json += ",\"id\":" + json_quote(id);
  json += ",\"outputs\":[";
  std::string raw;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [name, value] = outputs[i];
    if (!value.is_tensor())
      return unsupported("[server] output '", name, "' is a ", value.description(), ", not a tensor");
    const Tensor& t = value.tensor();
    const std::string_view datatype = kserve_datatype(t.dtype());
    if (datatype.empty()) return unsupported("[server] output '", name, "' has dtype ", dtype_name(t.dtype()));
    if (i) json += ',';
    json += "{\"name\":" + json_quote(name) + ",\"datatype\":\"" + std::string(datatype) + "\",\"shape\":[";
    for (size_t d = 0; d < t.rank(); ++d) {
      if (d) json += ',';
      append_number(json, t.dim(d));
    }
    json += ']';
    if (i < binary.size() && binary[i]) {
      json += ",\"parameters\":{\"binary_data_size\":";
      append_number(json, binary_size(t));
      json += "}}";
      append_binary_tensor(raw, t);
    } else {
      json += ",\"data\":[";
      ORCHARD_RETURN_IF_ERROR(append_json_data(json, name, t));
      json += "]}";
    }
  }
  json += "]}";
  EncodedBody out;
  if (!raw.empty() || std::find(binary.begin(), binary.end(), true) != binary.end()) out.json_length = json.size();
  out.body = std::move(json);
  out.body += raw;
  return out;
}

std::string error_body(std::string_view message) { return "{\"error\":" + json_quote(message) + "}"; }

}  // namespace orchard::server
