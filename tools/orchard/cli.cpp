#include "cli.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace orchard::cli {

Args::Args(int argc, char** argv, int first, std::vector<std::string> value_flags, std::vector<std::string> bool_flags) {
  auto in = [](const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); };
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      help_ = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || a.size() == 2) {
      positionals_.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    const auto eq = key.find('=');
    const bool inline_value = eq != std::string::npos;
    if (inline_value) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
    }
    if (in(bool_flags, key)) {
      if (inline_value) {
        error_ = "--" + key + " takes no value";
        return;
      }
      values_.emplace(key, "1");
    } else if (in(value_flags, key)) {
      if (!inline_value) {
        if (i + 1 >= argc) {
          error_ = "--" + key + " needs a value";
          return;
        }
        value = argv[++i];
      }
      values_.emplace(key, value);
    } else {
      error_ = "unknown option --" + key;
      return;
    }
  }
}

std::string Args::get(const std::string& flag, const std::string& fallback) const {
  auto it = values_.find(flag);
  return it == values_.end() ? fallback : it->second;
}

std::vector<std::string> Args::all(const std::string& flag) const {
  std::vector<std::string> out;
  auto [lo, hi] = values_.equal_range(flag);
  for (auto it = lo; it != hi; ++it) out.push_back(it->second);
  return out;
}

int64_t Args::get_int(const std::string& flag, int64_t fallback) {
  if (!has(flag)) return fallback;
  const std::string v = get(flag);
  char* end = nullptr;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0') {
    if (error_.empty()) error_ = "--" + flag + " expects an integer, got '" + v + "'";
    return fallback;
  }
  return n;
}

double Args::get_double(const std::string& flag, double fallback) {
  if (!has(flag)) return fallback;
  const std::string v = get(flag);
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0') {
    if (error_.empty()) error_ = "--" + flag + " expects a number, got '" + v + "'";
    return fallback;
  }
  return d;
}

std::string Args::get_choice(const std::string& flag, const std::vector<std::string>& choices, const std::string& fallback) {
  if (!has(flag)) return fallback;
  const std::string v = get(flag);
  if (std::find(choices.begin(), choices.end(), v) != choices.end()) return v;
  if (error_.empty()) {
    error_ = "--" + flag + " expects one of";
    for (const auto& c : choices) error_ += " " + c;
    error_ += ", got '" + v + "'";
  }
  return fallback;
}

int usage_error(const std::string& cmd, const std::string& message) {
  std::fprintf(stderr, "orchard %s: %s (see 'orchard %s --help')\n", cmd.c_str(), message.c_str(), cmd.c_str());
  return kExitUsage;
}

namespace {
std::vector<std::shared_ptr<runtime::Backend>>& custom_backend_list() {
  static std::vector<std::shared_ptr<runtime::Backend>> list;
  return list;
}
}  // namespace

void set_custom_backends(std::vector<std::shared_ptr<runtime::Backend>> backends) {
  custom_backend_list() = std::move(backends);
}

std::string precision_error(Args& args) {
  if (!args.has("precision")) return "";
  const std::string p = args.get("precision");
  return p == "fp16" || p == "fp32" ? "" : "--precision expects fp32 or fp16, got '" + p + "'";
}

SessionOptions session_options(Args& args) {
  SessionOptions o;
  o.intra_op_threads = static_cast<int>(args.get_int("threads", 0));
  if (args.has("backend")) {
    const std::string list = args.get("backend");
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma > start) o.backend_preference.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
  }
  o.disable_fallback = args.has("no-fallback");
  const std::string level = args.get_choice("optimization", {"none", "basic", "extended"}, "");
  if (level == "none") o.optimization = OptimizationLevel::none;
  if (level == "basic") o.optimization = OptimizationLevel::basic;
  if (level == "extended") o.optimization = OptimizationLevel::extended;
  if (args.has("precision")) o.precision = args.get("precision") == "fp16" ? Precision::float16 : Precision::model;
  // The CUDA backend reads it when the session is made (one backend per process and mode).
  if (args.has("no-cuda-graphs")) setenv("ORCHARD_CUDA_GRAPHS", "0", 1);
  o.custom_backends = custom_backend_list();
  return o;
}

Result<NamedValues> random_inputs(const Session& session, const std::map<std::string, int64_t>& dims, uint32_t seed) {
  std::mt19937 rng(seed);
  NamedValues out;
  for (const auto& info : session.inputs()) {
    if (info.kind != Value::Kind::tensor) {
      return unsupported("[run] input '", info.name, "' is a ", info.description(), "; give it with --input");
    }
    Shape shape;
    for (const auto& d : info.shape) {
      if (d.fixed()) {
        shape.push_back(d.value);
      } else {
        auto it = dims.find(d.symbol);
        shape.push_back(it != dims.end() ? it->second : 1);
      }
    }
    ORCHARD_ASSIGN_OR_RETURN(Tensor t, Tensor::create(info.dtype, shape));
    std::uniform_real_distribution<float> uf(0.f, 1.f);
    std::uniform_int_distribution<int> ui(0, 9);
    for (int64_t i = 0; i < t.numel(); ++i) {
      switch (info.dtype) {
        case DType::float32: t.data<float>()[i] = uf(rng); break;
        case DType::float64: t.data<double>()[i] = uf(rng); break;
        case DType::float16: t.data<float16>()[i] = float16(uf(rng)); break;
        case DType::bfloat16: t.data<bfloat16>()[i] = bfloat16(uf(rng)); break;
        case DType::int8: t.data<int8_t>()[i] = static_cast<int8_t>(ui(rng)); break;
        case DType::int16: t.data<int16_t>()[i] = static_cast<int16_t>(ui(rng)); break;
        case DType::int32: t.data<int32_t>()[i] = ui(rng); break;
        case DType::int64: t.data<int64_t>()[i] = ui(rng); break;
        case DType::uint8: t.data<uint8_t>()[i] = static_cast<uint8_t>(ui(rng)); break;
        case DType::uint16: t.data<uint16_t>()[i] = static_cast<uint16_t>(ui(rng)); break;
        case DType::uint32: t.data<uint32_t>()[i] = static_cast<uint32_t>(ui(rng)); break;
        case DType::uint64: t.data<uint64_t>()[i] = static_cast<uint64_t>(ui(rng)); break;
        case DType::boolean: t.data<bool>()[i] = ui(rng) & 1; break;
        case DType::string: t.data<std::string>()[i] = std::to_string(ui(rng)); break;
        case DType::undefined: return invalid_argument("[run] input '", info.name, "' has no declared element type");
      }
    }
    out.emplace_back(info.name, Value(std::move(t)));
  }
  return out;
}

namespace {

std::string summarize_tensor(const Tensor& t) {
  char buf[160];
  if (t.numel() == 0) return "(empty)";
  if (t.dtype() == DType::string) {
    std::string s = "\"" + t.data<std::string>()[0] + "\"";
    if (t.numel() > 1) s += " ...";
    return s;
  }
  double lo = INFINITY, hi = -INFINITY, sum = 0;
  int64_t nonfinite = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v;
    switch (t.dtype()) {
      case DType::float32: v = t.data<float>()[i]; break;
      case DType::float64: v = t.data<double>()[i]; break;
      case DType::float16: v = static_cast<float>(t.data<float16>()[i]); break;
      case DType::bfloat16: v = static_cast<float>(t.data<bfloat16>()[i]); break;
      case DType::int8: v = t.data<int8_t>()[i]; break;
      case DType::int16: v = t.data<int16_t>()[i]; break;
      case DType::int32: v = t.data<int32_t>()[i]; break;
      case DType::int64: v = static_cast<double>(t.data<int64_t>()[i]); break;
      case DType::uint8: v = t.data<uint8_t>()[i]; break;
      case DType::uint16: v = t.data<uint16_t>()[i]; break;
      case DType::uint32: v = t.data<uint32_t>()[i]; break;
      case DType::uint64: v = static_cast<double>(t.data<uint64_t>()[i]); break;
      case DType::boolean: v = t.data<bool>()[i]; break;
      default: v = 0;
    }
    if (!std::isfinite(v)) {
      ++nonfinite;
      continue;
    }
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  const int64_t n = t.numel() - nonfinite;
  std::snprintf(buf, sizeof buf, "min %.6g max %.6g mean %.6g", n ? lo : NAN, n ? hi : NAN, n ? sum / static_cast<double>(n) : NAN);
  std::string s = buf;
  if (nonfinite) s += " (" + std::to_string(nonfinite) + " NaN/Inf)";
  return s;
}

}  // namespace

std::string summarize(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::tensor: return summarize_tensor(v.tensor());
    case Value::Kind::sequence: return std::to_string(v.items().size()) + " tensors";
    case Value::Kind::optional: return v.has_element() ? summarize(v.element()) : "(empty optional)";
    default: return "(none)";
  }
}

}  // namespace orchard::cli
