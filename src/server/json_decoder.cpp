// The KServe v2 infer request decoder (decode_infer_request, declared in infer_codec.hpp), on simdjson's On
// Demand API: one forward pass over the JSON header that writes tensor elements straight into their tensors.
// Every byte of the header is validated: the parts the request needs are read with type checks, and values
// the decoder has no use for (unknown keys) are walked to the end, so malformed JSON anywhere is refused.
#include <simdjson.h>

#include <cstring>
#include <limits>
#include <memory>

#include "server/infer_codec.hpp"

namespace orchard::server {
namespace {

namespace od = simdjson::ondemand;
using simdjson::error_code;

constexpr size_t kMaxRank = 32;
constexpr int64_t kMaxElements = int64_t{1} << 40;  // far above any body cap; stops overflow in numel
// Headers up to this size reuse a per-thread parser and buffer; larger ones get their own, freed after, so a
// thread does not keep a large request's parser memory.
constexpr size_t kReusedBytes = size_t{1} << 20;

Status bad_json(error_code e) {
  return invalid_argument("[server] infer request body is not valid JSON: ", simdjson::error_message(e));
}

#define ORCHARD_JSON_GET(expr, out)                           \
  do {                                                        \
    if (const error_code e_ = std::move(expr).get(out); e_) { \
      return bad_json(e_);                                    \
    }                                                         \
  } while (0)

// The value's JSON text for messages (a scalar's token, trailing blanks trimmed).
std::string token_text(od::value& v) {
  std::string_view raw = v.raw_json_token();
  while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t'))
    raw.remove_suffix(1);
  return std::string(raw.substr(0, 64));
}

// Reads `v` to its end, validating it (On Demand checks only what is read).
Status walk(od::value v) {
  od::json_type type;
  ORCHARD_JSON_GET(v.type(), type);
  switch (type) {
    case od::json_type::array: {
      od::array a;
      ORCHARD_JSON_GET(v.get_array(), a);
      for (auto element : a) {
        od::value e;
        ORCHARD_JSON_GET(element, e);
        ORCHARD_RETURN_IF_ERROR(walk(e));
      }
      return Status::OK();
    }
    case od::json_type::object: {
      od::object o;
      ORCHARD_JSON_GET(v.get_object(), o);
      for (auto field : o) {
        od::field f;
        ORCHARD_JSON_GET(field, f);
        std::string_view key;
        ORCHARD_JSON_GET(f.unescaped_key(), key);
        ORCHARD_RETURN_IF_ERROR(walk(f.value()));
      }
      return Status::OK();
    }
    case od::json_type::number: {
      od::number n;
      ORCHARD_JSON_GET(v.get_number(), n);
      return Status::OK();
    }
    case od::json_type::string: {
      std::string_view s;
      ORCHARD_JSON_GET(v.get_string(), s);
      return Status::OK();
    }
    case od::json_type::boolean: {
      bool b;
      ORCHARD_JSON_GET(v.get_bool(), b);
      return Status::OK();
    }
    case od::json_type::null: {
      bool is_null = false;
      ORCHARD_JSON_GET(v.is_null(), is_null);
      return is_null ? Status::OK() : bad_json(simdjson::N_ATOM_ERROR);
    }
  }
  return bad_json(simdjson::TAPE_ERROR);
}

// Reads a non-negative integer that fits int64: the value, or an error naming `what` and the value.
Result<int64_t> non_negative(od::value v, const std::string& what) {
  od::json_type type;
  ORCHARD_JSON_GET(v.type(), type);
  if (type == od::json_type::number) {
    od::number_type nt;
    ORCHARD_JSON_GET(v.get_number_type(), nt);
    if (nt == od::number_type::unsigned_integer) {
      uint64_t u;
      ORCHARD_JSON_GET(v.get_uint64(), u);
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return static_cast<int64_t>(u);
      return invalid_argument("[server] ", what, " is too large: ", u);
    }
    if (nt == od::number_type::signed_integer) {
      int64_t i;
      ORCHARD_JSON_GET(v.get_int64(), i);
      if (i >= 0) return i;
    }
  }
  return invalid_argument("[server] ", what, " must be a non-negative integer, got ", token_text(v));
}

Result<bool> boolean(od::value v, const std::string& what) {
  od::json_type type;
  ORCHARD_JSON_GET(v.type(), type);
  if (type != od::json_type::boolean) return invalid_argument("[server] ", what, " must be a boolean");
  bool b;
  ORCHARD_JSON_GET(v.get_bool(), b);
  return b;
}

Result<std::string> string_value(od::value v, const std::string& what) {
  od::json_type type;
  ORCHARD_JSON_GET(v.type(), type);
  if (type != od::json_type::string) return invalid_argument("[server] ", what, " must be a string");
  std::string_view s;
  ORCHARD_JSON_GET(v.get_string(), s);
  return std::string(s);
}

Result<std::vector<int64_t>> parse_shape(od::value v, const std::string& input) {
  od::json_type type;
  ORCHARD_JSON_GET(v.type(), type);
  if (type != od::json_type::array)
    return invalid_argument("[server] input '", input, "': 'shape' must be an array of integers");
  od::array a;
  ORCHARD_JSON_GET(v.get_array(), a);
  std::vector<int64_t> dims;
  int64_t numel = 1;
  bool overflow = false;
  for (auto element : a) {
    od::value d;
    ORCHARD_JSON_GET(element, d);
    if (dims.size() == kMaxRank)
      return invalid_argument("[server] input '", input, "': rank above ", kMaxRank, " is not supported");
    od::json_type dt;
    ORCHARD_JSON_GET(d.type(), dt);
    od::number_type nt = od::number_type::floating_point_number;
    if (dt == od::json_type::number) ORCHARD_JSON_GET(d.get_number_type(), nt);
    uint64_t u = 0;
    if (nt == od::number_type::unsigned_integer) {
      ORCHARD_JSON_GET(d.get_uint64(), u);
    } else if (nt == od::number_type::signed_integer) {
      int64_t i;
      ORCHARD_JSON_GET(d.get_int64(), i);
      if (i < 0) nt = od::number_type::floating_point_number;  // refused below
      u = static_cast<uint64_t>(i);
    }
    if (nt == od::number_type::floating_point_number)
      return invalid_argument("[server] input '", input, "': shape dimension ", token_text(d),
                              " is not a non-negative integer");
    if (u > static_cast<uint64_t>(kMaxElements))
      return invalid_argument("[server] input '", input, "': shape dimension ", u, " is too large");
    dims.push_back(static_cast<int64_t>(u));
    if (u != 0 && numel > kMaxElements / static_cast<int64_t>(u)) overflow = true;
    if (!overflow) numel *= static_cast<int64_t>(u);
  }
  if (overflow)
    return invalid_argument("[server] input '", input, "': shape ", Shape(dims).to_string(), " has too many elements");
  return dims;
}

// Writes the leaves of nested `data` into a tensor in order, counting them (past the tensor's size they are
// only counted, so the error can say how many there were).
class DataFiller {
 public:
  DataFiller(Tensor& t, const std::string& input, size_t max_depth)
      : t_(t), input_(input), max_depth_(max_depth), numel_(t.numel()) {}

  Status fill(od::value v, size_t depth) {
    od::json_type type;
    ORCHARD_JSON_GET(v.type(), type);
    if (type == od::json_type::array) {
      if (depth >= max_depth_)
        return invalid_argument("[server] input '", input_, "': 'data' is nested deeper than its shape");
      od::array a;
      ORCHARD_JSON_GET(v.get_array(), a);
      const DType dtype = t_.dtype();
      const bool floats = dtype == DType::float32 || dtype == DType::float64;
      for (auto element : a) {
        od::value e;
        ORCHARD_JSON_GET(element, e);
        if (floats && count_ < numel_) {  // fast path: a number leaf; anything else is not consumed by the try
          double d;
          const error_code err = e.get_double().get(d);
          if (err == simdjson::SUCCESS) {
            if (dtype == DType::float32)
              t_.data<float>()[count_++] = static_cast<float>(d);
            else
              t_.data<double>()[count_++] = d;
            continue;
          }
          if (err != simdjson::INCORRECT_TYPE) return bad_json(err);
        }
        ORCHARD_RETURN_IF_ERROR(fill(e, depth + 1));
      }
      return Status::OK();
    }
    const int64_t i = count_++;
    if (i >= numel_) return walk(v);
    return store(v, type, i);
  }
  int64_t count() const { return count_; }

 private:
  Status not_a(od::value& v, const char* what) {
    return invalid_argument("[server] input '", input_, "': element ", token_text(v), " is not ", what);
  }

  template <class T>
  Status store_int(od::value& v, od::json_type type, T* out) {
    od::number_type nt = od::number_type::floating_point_number;
    if (type == od::json_type::number) ORCHARD_JSON_GET(v.get_number_type(), nt);
    if (nt == od::number_type::unsigned_integer) {
      uint64_t u;
      ORCHARD_JSON_GET(v.get_uint64(), u);
      if (u > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        return invalid_argument("[server] input '", input_, "': element ", u, " out of range");
      *out = static_cast<T>(u);
      return Status::OK();
    }
    if (nt != od::number_type::signed_integer) return not_a(v, "an integer");
    int64_t s;
    ORCHARD_JSON_GET(v.get_int64(), s);
    bool in_range;
    if constexpr (std::is_unsigned_v<T>)
      in_range = s >= 0 && static_cast<uint64_t>(s) <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    else
      in_range = s >= std::numeric_limits<T>::min() && s <= std::numeric_limits<T>::max();
    if (!in_range) return invalid_argument("[server] input '", input_, "': element ", s, " out of range");
    *out = static_cast<T>(s);
    return Status::OK();
  }

  Status store(od::value& v, od::json_type type, int64_t i) {
    switch (t_.dtype()) {
      case DType::boolean: {
        if (type != od::json_type::boolean) return not_a(v, "a boolean");
        bool b;
        ORCHARD_JSON_GET(v.get_bool(), b);
        t_.data<bool>()[i] = b;
        return Status::OK();
      }
      case DType::int8:
        return store_int(v, type, t_.data<int8_t>() + i);
      case DType::int16:
        return store_int(v, type, t_.data<int16_t>() + i);
      case DType::int32:
        return store_int(v, type, t_.data<int32_t>() + i);
      case DType::int64:
        return store_int(v, type, t_.data<int64_t>() + i);
      case DType::uint8:
        return store_int(v, type, t_.data<uint8_t>() + i);
      case DType::uint16:
        return store_int(v, type, t_.data<uint16_t>() + i);
      case DType::uint32:
        return store_int(v, type, t_.data<uint32_t>() + i);
      case DType::uint64:
        return store_int(v, type, t_.data<uint64_t>() + i);
      case DType::float32:
      case DType::float64: {
        if (type != od::json_type::number) return not_a(v, "a number");
        double d;
        ORCHARD_JSON_GET(v.get_double(), d);
        if (t_.dtype() == DType::float32)
          t_.data<float>()[i] = static_cast<float>(d);
        else
          t_.data<double>()[i] = d;
        return Status::OK();
      }
      case DType::string: {
        if (type != od::json_type::string) return not_a(v, "a string");
        std::string_view s;
        ORCHARD_JSON_GET(v.get_string(), s);
        t_.data<std::string>()[i].assign(s);
        return Status::OK();
      }
      default:
        break;
    }
    return invalid_argument("[server] input '", input_, "': datatype ", kserve_datatype(t_.dtype()),
                            " cannot be sent as JSON; use the binary tensor data extension");
  }

  Tensor& t_;
  const std::string& input_;
  size_t max_depth_;
  int64_t numel_;
  int64_t count_ = 0;
};

// Per-thread parser and padded copy of the header, for headers up to kReusedBytes.
struct Scratch {
  od::parser parser;
  std::string padded;
};

class Decoder {
 public:
  Decoder(std::string_view header, std::string_view binary) : header_(header), binary_(binary) {}

  Result<InferRequest> decode(od::document& doc) {
    od::json_type type;
    ORCHARD_JSON_GET(doc.type(), type);
    if (type != od::json_type::object) {  // invalid JSON says so first: the DOM parser validates it all
      simdjson::dom::parser dom;
      simdjson::dom::element unused;
      ORCHARD_JSON_GET(dom.parse(header_.data(), header_.size(), /*realloc_if_needed=*/false), unused);
      return invalid_argument("[server] infer request must be a JSON object");
    }
    od::object root;
    ORCHARD_JSON_GET(doc.get_object(), root);
    bool seen[4] = {};  // id, parameters, inputs, outputs
    for (auto field : root) {
      od::field f;
      ORCHARD_JSON_GET(field, f);
      std::string_view key;
      ORCHARD_JSON_GET(f.unescaped_key(), key);
      constexpr std::string_view kKeys[] = {"id", "parameters", "inputs", "outputs"};
      size_t k = 0;
      while (k < 4 && kKeys[k] != key) ++k;
      if (k == 4) {
        ORCHARD_RETURN_IF_ERROR(walk(f.value()));
        continue;
      }
      if (seen[k]) return invalid_argument("[server] infer request has '", key, "' twice");
      seen[k] = true;
      if (k == 0) {
        ORCHARD_ASSIGN_OR_RETURN(req_.id, string_value(f.value(), "'id'"));
      } else if (k == 1) {
        ORCHARD_RETURN_IF_ERROR(request_parameters(f.value()));
      } else if (k == 2) {
        ORCHARD_RETURN_IF_ERROR(inputs(f.value()));
      } else {
        ORCHARD_RETURN_IF_ERROR(outputs(f.value()));
      }
    }
    const char* trailing = nullptr;
    if (doc.current_location().get(trailing) == simdjson::SUCCESS) return bad_json(simdjson::TRAILING_CONTENT);
    if (!seen[2]) return invalid_argument("[server] 'inputs' must be an array");
    if (offset_ != binary_.size())
      return invalid_argument("[server] ", binary_.size() - offset_,
                              " binary bytes after the JSON header belong to no input");
    return std::move(req_);
  }

 private:
  // Calls `each(key, value)` for every field of the object `v`; `what` names it when it is not an object.
  template <class F>
  Status fields(od::value v, const std::string& what, F&& each) {
    od::json_type type;
    ORCHARD_JSON_GET(v.type(), type);
    if (type != od::json_type::object) return invalid_argument("[server] ", what, " must be an object");
    od::object o;
    ORCHARD_JSON_GET(v.get_object(), o);
    for (auto field : o) {
      od::field f;
      ORCHARD_JSON_GET(field, f);
      std::string_view key;
      ORCHARD_JSON_GET(f.unescaped_key(), key);
      ORCHARD_RETURN_IF_ERROR(each(key, f.value()));
    }
    return Status::OK();
  }

  // Calls `each(value)` for every element of the array `v`; `what` names it when it is not an array.
  template <class F>
  Status elements(od::value v, const std::string& what, F&& each) {
    od::json_type type;
    ORCHARD_JSON_GET(v.type(), type);
    if (type != od::json_type::array) return invalid_argument("[server] ", what, " must be an array");
    od::array a;
    ORCHARD_JSON_GET(v.get_array(), a);
    for (auto element : a) {
      od::value e;
      ORCHARD_JSON_GET(element, e);
      ORCHARD_RETURN_IF_ERROR(each(e));
    }
    return Status::OK();
  }

  Status request_parameters(od::value v) {
    return fields(v, "'parameters'", [&](std::string_view key, od::value p) -> Status {
      if (key == "priority") {
        ORCHARD_ASSIGN_OR_RETURN(req_.priority, non_negative(p, "parameter 'priority'"));
      } else if (key == "timeout") {
        ORCHARD_ASSIGN_OR_RETURN(req_.timeout_us, non_negative(p, "parameter 'timeout'"));
      } else if (key == "binary_data_output") {
        ORCHARD_ASSIGN_OR_RETURN(req_.binary_outputs, boolean(p, "request: parameter 'binary_data_output'"));
      } else {
        return walk(p);
      }
      return Status::OK();
    });
  }

  Status inputs(od::value v) {
    return elements(v, "'inputs'", [&](od::value in) { return input(in); });
  }

  // One input object. Its keys may come in any order: `data` read before `datatype` and `shape` is kept as
  // text and decoded after them by a second parser (clients write it last, so that path is rare).
  Status input(od::value v) {
    od::json_type type;
    ORCHARD_JSON_GET(v.type(), type);
    if (type != od::json_type::object) return invalid_argument("[server] each input must be an object");
    std::optional<std::string> name;
    std::optional<DType> dtype;
    std::string datatype_text;
    std::optional<std::vector<int64_t>> dims;
    std::optional<int64_t> binary_size;
    std::optional<Tensor> decoded;  // `data` decoded in the pass
    std::optional<std::string_view> late_data;
    std::string pending_error;  // a problem found before the input's name was known
    const auto label = [&] { return name ? *name : std::string("?"); };
    od::object o;
    ORCHARD_JSON_GET(v.get_object(), o);
    for (auto field : o) {
      od::field f;
      ORCHARD_JSON_GET(field, f);
      std::string_view key;
      ORCHARD_JSON_GET(f.unescaped_key(), key);
      od::value value = f.value();
      if (key == "name") {
        od::json_type t;
        ORCHARD_JSON_GET(value.type(), t);
        if (t != od::json_type::string) return invalid_argument("[server] an input has no string 'name'");
        std::string_view s;
        ORCHARD_JSON_GET(value.get_string(), s);
        name = std::string(s);
      } else if (key == "datatype") {
        od::json_type t;
        ORCHARD_JSON_GET(value.type(), t);
        if (t != od::json_type::string) {
          ORCHARD_RETURN_IF_ERROR(walk(value));
          pending_error = "has no string 'datatype'";
          continue;
        }
        std::string_view s;
        ORCHARD_JSON_GET(value.get_string(), s);
        datatype_text = std::string(s);
        dtype = dtype_from_kserve(s);
      } else if (key == "shape") {
        ORCHARD_ASSIGN_OR_RETURN(dims, parse_shape(value, label()));
      } else if (key == "parameters") {
        ORCHARD_RETURN_IF_ERROR(
            fields(value, "input '" + label() + "': 'parameters'", [&](std::string_view k, od::value p) -> Status {
              if (k != "binary_data_size") return walk(p);
              ORCHARD_ASSIGN_OR_RETURN(binary_size, non_negative(p, "parameter 'binary_data_size'"));
              return Status::OK();
            }));
      } else if (key == "data") {
        if (name && dtype && *dtype != DType::undefined && dims && !binary_size && json_dtype_ok(*dtype)) {
          ORCHARD_ASSIGN_OR_RETURN(decoded, decode_data(value, *name, *dtype, *dims));
        } else {
          ORCHARD_ASSIGN_OR_RETURN(late_data, raw_text(value));
        }
      } else {
        ORCHARD_RETURN_IF_ERROR(walk(value));
      }
    }
    if (!name) return invalid_argument("[server] an input has no string 'name'");
    const std::string& input = *name;
    for (const auto& [n, unused] : req_.inputs)
      if (n == input) return invalid_argument("[server] input '", input, "' given twice");
    if (!pending_error.empty() || !dtype)
      return invalid_argument("[server] input '", input, "' has no string 'datatype'");
    if (*dtype == DType::undefined)
      return invalid_argument("[server] input '", input, "': unknown datatype '", datatype_text, "'");
    if (!dims) return invalid_argument("[server] input '", input, "' has no 'shape'");
    const bool has_data = decoded || late_data;
    if (binary_size) {
      if (has_data) return invalid_argument("[server] input '", input, "' has both 'data' and binary_data_size");
      if (static_cast<uint64_t>(*binary_size) > binary_.size() - offset_)
        return invalid_argument("[server] input '", input, "': binary_data_size ", *binary_size, " but only ",
                                binary_.size() - offset_, " binary bytes left in the body");
      ORCHARD_ASSIGN_OR_RETURN(Tensor t,
                               decode_binary_tensor(*dtype, *dims, binary_.substr(offset_, *binary_size), input));
      offset_ += static_cast<size_t>(*binary_size);
      req_.inputs.emplace_back(input, std::move(t));
      return Status::OK();
    }
    if (!has_data) return invalid_argument("[server] input '", input, "' has neither 'data' nor binary_data_size");
    if (!json_dtype_ok(*dtype))
      return invalid_argument("[server] input '", input, "': datatype ", kserve_datatype(*dtype),
                              " cannot be sent as JSON; use the binary tensor data extension");
    if (!decoded) {
      ORCHARD_ASSIGN_OR_RETURN(decoded, decode_late(*late_data, input, *dtype, *dims));
    }
    req_.inputs.emplace_back(input, std::move(*decoded));
    return Status::OK();
  }

  // The JSON text of `v` (consumed), pointing into the header.
  static Result<std::string_view> raw_text(od::value v) {
    od::json_type t;
    ORCHARD_JSON_GET(v.type(), t);
    std::string_view raw;
    if (t == od::json_type::array) {
      od::array a;
      ORCHARD_JSON_GET(v.get_array(), a);
      ORCHARD_JSON_GET(a.raw_json(), raw);
    } else if (t == od::json_type::object) {
      od::object o;
      ORCHARD_JSON_GET(v.get_object(), o);
      ORCHARD_JSON_GET(o.raw_json(), raw);
    } else {
      raw = v.raw_json_token();
    }
    return raw;
  }

  static bool json_dtype_ok(DType t) { return t != DType::float16 && t != DType::bfloat16; }

  static Result<Tensor> decode_data(od::value v, const std::string& input, DType dtype,
                                    const std::vector<int64_t>& dims) {
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, Shape(dims)));
    DataFiller filler(t, input, dims.size() + 1);
    ORCHARD_RETURN_IF_ERROR(filler.fill(v, 0));
    if (filler.count() != t.numel())
      return invalid_argument("[server] input '", input, "': 'data' has ", filler.count(), " elements but shape ",
                              Shape(dims).to_string(), " needs ", t.numel());
    return t;
  }

  // `raw` lies inside the padded header buffer, which has at least simdjson::SIMDJSON_PADDING bytes after it.
  Result<Tensor> decode_late(std::string_view raw, const std::string& input, DType dtype,
                             const std::vector<int64_t>& dims) {
    if (!late_parser_) late_parser_ = std::make_unique<od::parser>();
    od::document doc;
    ORCHARD_JSON_GET(late_parser_->iterate(raw.data(), raw.size(), raw.size() + simdjson::SIMDJSON_PADDING), doc);
    od::value v;
    ORCHARD_JSON_GET(doc.get_value(), v);
    return decode_data(v, input, dtype, dims);
  }

  Status outputs(od::value v) {
    return elements(v, "'outputs'", [&](od::value o) -> Status {
      od::json_type type;
      ORCHARD_JSON_GET(o.type(), type);
      if (type != od::json_type::object) return invalid_argument("[server] each requested output must be an object");
      std::optional<std::string> name;
      std::optional<bool> binary;
      bool bad_binary = false;
      ORCHARD_RETURN_IF_ERROR(fields(o, "a requested output", [&](std::string_view key, od::value x) -> Status {
        if (key == "name") {
          od::json_type t;
          ORCHARD_JSON_GET(x.type(), t);
          if (t != od::json_type::string) return invalid_argument("[server] a requested output has no 'name'");
          std::string_view s;
          ORCHARD_JSON_GET(x.get_string(), s);
          name = std::string(s);
          return Status::OK();
        }
        if (key != "parameters") return walk(x);
        return fields(x, "output '" + name.value_or("?") + "': 'parameters'",
                      [&](std::string_view k, od::value p) -> Status {
                        if (k != "binary_data") return walk(p);
                        od::json_type t;
                        ORCHARD_JSON_GET(p.type(), t);
                        if (t != od::json_type::boolean) {
                          bad_binary = true;
                          return walk(p);
                        }
                        bool b;
                        ORCHARD_JSON_GET(p.get_bool(), b);
                        binary = b;
                        return Status::OK();
                      });
      }));
      if (!name) return invalid_argument("[server] a requested output has no 'name'");
      if (bad_binary)
        return invalid_argument("[server] output '", *name, "': parameter 'binary_data' must be a boolean");
      req_.outputs.push_back(RequestedOutput{std::move(*name), binary});
      return Status::OK();
    });
  }

  std::string_view header_;  // inside a buffer with simdjson::SIMDJSON_PADDING bytes after it
  std::string_view binary_;
  size_t offset_ = 0;
  InferRequest req_;
  std::unique_ptr<od::parser> late_parser_;
};

}  // namespace

Result<InferRequest> decode_infer_request(std::string_view body, std::optional<size_t> json_length) {
  std::string_view header = body, binary;
  if (json_length) {
    if (*json_length > body.size())
      return invalid_argument("[server] Inference-Header-Content-Length ", *json_length, " exceeds the body's ",
                              body.size(), " bytes");
    header = body.substr(0, *json_length);
    binary = body.substr(*json_length);
  }
  thread_local Scratch scratch;
  std::unique_ptr<Scratch> own;
  Scratch* s = &scratch;
  if (header.size() > kReusedBytes) {
    own = std::make_unique<Scratch>();
    s = own.get();
  }
  s->padded.resize(header.size() + simdjson::SIMDJSON_PADDING);  // simdjson reads up to the padding past the end
  std::memcpy(s->padded.data(), header.data(), header.size());
  std::memset(s->padded.data() + header.size(), 0, simdjson::SIMDJSON_PADDING);
  od::document doc;
  if (const error_code e = s->parser.iterate(s->padded.data(), header.size(), s->padded.size()).get(doc); e)
    return bad_json(e);
  Decoder decoder(std::string_view(s->padded.data(), header.size()), binary);
  return decoder.decode(doc);
}

}  // namespace orchard::server
