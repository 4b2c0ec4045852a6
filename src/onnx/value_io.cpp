// load_value_pb / save_tensor_pb / load_npy / save_npy (include/orchard/io.hpp).
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/file_read.hpp"
#include "onnx/proto_convert.hpp"
#include "orchard/io.hpp"

namespace orchard {

namespace {

// Largest tensor file read (protobuf cannot parse more than 2 GiB; .npy files follow the same cap).
constexpr uint64_t kMaxTensorFileBytes = uint64_t{2} << 30;

// Reads a regular file whole; folders, FIFOs and devices are refused; no exception escapes.
Result<std::string> read_file(const std::filesystem::path& path) {
  try {
    return read_regular_file(path, "[io]", kMaxTensorFileBytes);
  } catch (const std::bad_alloc&) {
    return out_of_memory("[io] '", path.string(), "': out of memory while reading it");
  }
}

}  // namespace

namespace {

// Runs a reader, turning an exception (bad_alloc from protobuf, say) into a Status naming the file.
template <class R, class F>
R without_exceptions(const std::filesystem::path& path, F&& read) {
  try {
    return read();
  } catch (const std::bad_alloc&) {
    return R(out_of_memory("[io] '", path.string(), "': out of memory while reading it"));
  } catch (const std::exception& e) {
    return R(invalid_argument("[io] '", path.string(), "': ", e.what()));
  }
}

Result<Value> load_value_pb_impl(const std::filesystem::path& path, Value::Kind kind, std::string* name_out) {
  ORCHARD_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  const std::string where = "[io] '" + path.string() + "': ";
  switch (kind) {
    case Value::Kind::sequence: {
      onnx::SequenceProto p;
      if (!p.ParseFromString(bytes)) return invalid_argument(where, "not a valid SequenceProto");
      if (name_out) *name_out = p.name();
      auto v = onnx_import::value_from_sequence(p);
      return v.ok() ? v : Result<Value>(v.status().with_prefix(where));
    }
    case Value::Kind::optional: {
      onnx::OptionalProto p;
      if (!p.ParseFromString(bytes)) return invalid_argument(where, "not a valid OptionalProto");
      if (name_out) *name_out = p.name();
      auto v = onnx_import::value_from_optional(p);
      return v.ok() ? v : Result<Value>(v.status().with_prefix(where));
    }
    default: {
      onnx::TensorProto p;
      if (!p.ParseFromString(bytes)) return invalid_argument(where, "not a valid TensorProto");
      if (name_out) *name_out = p.name();
      auto t = onnx_import::tensor_from_proto(p, path.parent_path());
      if (!t.ok()) return t.status().with_prefix(where);
      return Value(std::move(t).value());
    }
  }
}

}  // namespace

Result<Value> load_value_pb(const std::filesystem::path& path, Value::Kind kind, std::string* name_out) {
  return without_exceptions<Result<Value>>(path, [&] { return load_value_pb_impl(path, kind, name_out); });
}

Status save_tensor_pb(const std::filesystem::path& path, const Tensor& t, const std::string& name) {
  onnx::TensorProto p;
  onnx_import::tensor_to_proto(t, name, p);
  std::ofstream out(path, std::ios::binary);
  if (!out || !p.SerializeToOstream(&out)) return unavailable("[io] cannot write '", path.string(), "'");
  return Status::OK();
}

namespace {

struct NpyType {
  const char* descr;
  DType dtype;
};
constexpr NpyType kNpyTypes[] = {
    {"f4", DType::float32}, {"f8", DType::float64}, {"f2", DType::float16}, {"i1", DType::int8},
    {"i2", DType::int16},   {"i4", DType::int32},   {"i8", DType::int64},   {"u1", DType::uint8},
    {"u2", DType::uint16},  {"u4", DType::uint32},  {"u8", DType::uint64},  {"b1", DType::boolean},
};

Result<Tensor> load_npy_impl(const std::filesystem::path& path) {
  ORCHARD_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  const std::string where = "[io] '" + path.string() + "': ";
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) return invalid_argument(where, "not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, header_start;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    header_start = 10;
  } else {
    if (bytes.size() < 12) return invalid_argument(where, "truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  }
  if (header_start + header_len > bytes.size()) return invalid_argument(where, "truncated header");
  const std::string header = bytes.substr(header_start, header_len);
  auto field = [&](const std::string& key) -> std::string {
    auto p = header.find("'" + key + "'");
    if (p == std::string::npos) return {};
    p = header.find(':', p);
    return p == std::string::npos ? std::string() : header.substr(p + 1);
  };
  const std::string descr = field("descr");
  auto q1 = descr.find('\''), q2 = descr.find('\'', q1 + 1);
  if (q1 == std::string::npos || q2 == std::string::npos) return invalid_argument(where, "no dtype in header");
  std::string d = descr.substr(q1 + 1, q2 - q1 - 1);
  if (d.size() == 3 && d[0] == '>' && d.substr(1) != "i1" && d.substr(1) != "u1" && d.substr(1) != "b1") {
    return unsupported(where, "big-endian data is not supported");
  }
  if (d.size() == 3) d = d.substr(1);
  DType dtype = DType::undefined;
  for (const auto& t : kNpyTypes) {
    if (d == t.descr) dtype = t.dtype;
  }
  if (dtype == DType::undefined) return unsupported(where, "dtype '", d, "' is not supported");
  if (field("fortran_order").find("True") < field("fortran_order").find(',')) return unsupported(where, "Fortran order is not supported");
  std::string shape_s = field("shape");
  shape_s = shape_s.substr(shape_s.find('(') + 1);
  shape_s = shape_s.substr(0, shape_s.find(')'));
  Shape shape;
  std::stringstream ss(shape_s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    const size_t b = tok.find_first_not_of(' '), e = tok.find_last_not_of(' ');
    if (b == std::string::npos) continue;
    int64_t d = 0;
    const char* last = tok.data() + e + 1;
    auto [ptr, ec] = std::from_chars(tok.data() + b, last, d);
    if (ec != std::errc() || ptr != last || d < 0) return invalid_argument(where, "bad dim '", tok, "' in shape (", shape_s, ")");
    shape.push_back(d);
  }
  // The size the header declares is checked against the data before anything is allocated.
  const size_t data_start = header_start + header_len;
  uint64_t need = dtype_size(dtype);
  bool overflow = false;
  for (int64_t d : shape) overflow = overflow || __builtin_mul_overflow(need, static_cast<uint64_t>(d), &need);
  if (overflow || bytes.size() - data_start != need) {
    return invalid_argument(where, "data has ", bytes.size() - data_start, " bytes, shape ", shape.to_string(), " needs ",
                            overflow ? std::string("more than memory can hold") : std::to_string(need));
  }
  ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(dtype, shape));
  if (t.nbytes()) std::memcpy(t.raw_data(), bytes.data() + data_start, t.nbytes());
  return t;
}

}  // namespace

Result<Tensor> load_npy(const std::filesystem::path& path) {
  return without_exceptions<Result<Tensor>>(path, [&] { return load_npy_impl(path); });
}

Status save_npy(const std::filesystem::path& path, const Tensor& t) {
  const char* descr = nullptr;
  for (const auto& n : kNpyTypes) {
    if (n.dtype == t.dtype()) descr = n.descr;
  }
  if (descr == nullptr) return unsupported("[io] .npy cannot hold ", dtype_name(t.dtype()));
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i) shape += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : (i + 1 < t.rank() ? ", " : ""));
  shape += ")";
  const char order = descr[0] == 'i' || descr[0] == 'u' || descr[0] == 'f' ? '<' : '|';
  std::string header = std::string("{'descr': '") + (descr[1] == '1' ? '|' : order) + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) return unavailable("[io] cannot write '", path.string(), "'");
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  out.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.nbytes()));
  return out ? Status::OK() : unavailable("[io] cannot write '", path.string(), "'");
}

}  // namespace orchard
