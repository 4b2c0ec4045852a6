// orchard check: run ONNX backend-test folders and compare with the expected outputs.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli.hpp"
#include "orchard/io.hpp"

namespace fs = std::filesystem;

namespace orchard::cli {

namespace {

constexpr const char* kHelp = R"(usage: orchard check [options] DIR...

Each DIR holds model.onnx and test_data_set_N/{input_K.pb, output_K.pb}. Every data set is run and each
output compared per element: |got - expected| <= atol + rtol * |expected| (NaN equals NaN; integers,
booleans and strings exactly). Prints PASS/FAIL/ERROR per DIR, then "N passed, M failed".

options:
  --rtol R        relative tolerance (default 1e-3)
  --atol A        absolute tolerance (default 1e-5)
  --backend B[,B2]  prefer these backends in this order; the CPU takes the rest
  --threads N     intra-op threads (default: one per core)
  --optimization L  none | basic | extended: the graph optimization level (default: the library's)
)";

struct Tolerance {
  double rtol, atol;
};

// Mismatch report for one output; empty `what` means equal.
struct Diff {
  std::string what;
};

double as_double(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::float32: return t.data<float>()[i];
    case DType::float64: return t.data<double>()[i];
    case DType::float16: return static_cast<float>(t.data<float16>()[i]);
    case DType::bfloat16: return static_cast<float>(t.data<bfloat16>()[i]);
    case DType::int8: return t.data<int8_t>()[i];
    case DType::int16: return t.data<int16_t>()[i];
    case DType::int32: return t.data<int32_t>()[i];
    case DType::int64: return static_cast<double>(t.data<int64_t>()[i]);
    case DType::uint8: return t.data<uint8_t>()[i];
    case DType::uint16: return t.data<uint16_t>()[i];
    case DType::uint32: return t.data<uint32_t>()[i];
    case DType::uint64: return static_cast<double>(t.data<uint64_t>()[i]);
    case DType::boolean: return t.data<bool>()[i];
    default: return 0;
  }
}

bool exact_equal(const Tensor& a, const Tensor& b, int64_t i) {
  switch (a.dtype()) {
    case DType::int64: return a.data<int64_t>()[i] == b.data<int64_t>()[i];
    case DType::uint64: return a.data<uint64_t>()[i] == b.data<uint64_t>()[i];
    case DType::string: return a.data<std::string>()[i] == b.data<std::string>()[i];
    default: return as_double(a, i) == as_double(b, i);
  }
}

std::string compare_tensors(const Tensor& got, const Tensor& want, Tolerance tol) {
  std::ostringstream os;
  if (got.dtype() != want.dtype()) {
    os << "dtype " << dtype_name(got.dtype()) << ", expected " << dtype_name(want.dtype());
    return os.str();
  }
  if (got.shape() != want.shape()) {
    os << "shape " << got.shape().to_string() << ", expected " << want.shape().to_string();
    return os.str();
  }
  const bool fp = dtype_is_float(want.dtype());
  int64_t bad = 0, first_bad = -1;
  double max_err = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    bool ok;
    if (fp) {
      const double g = as_double(got, i), w = as_double(want, i);
      if (std::isnan(w) || std::isnan(g)) {
        ok = std::isnan(w) && std::isnan(g);
      } else if (std::isinf(w) || std::isinf(g)) {
        ok = g == w;
      } else {
        const double err = std::fabs(g - w);
        ok = err <= tol.atol + tol.rtol * std::fabs(w);
        if (!ok) max_err = std::max(max_err, err);
      }
    } else {
      ok = exact_equal(got, want, i);
    }
    if (!ok) {
      if (first_bad < 0) first_bad = i;
      ++bad;
    }
  }
  if (bad == 0) return {};
  os << bad << "/" << want.numel() << " mismatched";
  if (fp) os << ", max abs err " << max_err;
  if (want.dtype() == DType::string) {
    os << " (at " << first_bad << ": got \"" << got.data<std::string>()[first_bad] << "\", expected \""
       << want.data<std::string>()[first_bad] << "\")";
  } else {
    os << " (at " << first_bad << ": got " << as_double(got, first_bad) << ", expected " << as_double(want, first_bad) << ")";
  }
  return os.str();
}

std::string compare_values(const Value& got, const Value& want, Tolerance tol) {
  if (got.kind() != want.kind()) return "got " + got.description() + ", expected " + want.description();
  switch (want.kind()) {
    case Value::Kind::tensor: return compare_tensors(got.tensor(), want.tensor(), tol);
    case Value::Kind::sequence: {
      if (got.items().size() != want.items().size()) {
        return "sequence length " + std::to_string(got.items().size()) + ", expected " + std::to_string(want.items().size());
      }
      for (size_t i = 0; i < want.items().size(); ++i) {
        std::string d = compare_tensors(got.items()[i], want.items()[i], tol);
        if (!d.empty()) return "item " + std::to_string(i) + ": " + d;
      }
      return {};
    }
    case Value::Kind::optional:
      if (got.has_element() != want.has_element()) {
        return std::string("optional ") + (got.has_element() ? "has" : "has no") + " element, expected the opposite";
      }
      return want.has_element() ? compare_values(got.element(), want.element(), tol) : std::string();
    default: return {};
  }
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<std::pair<int, fs::path>> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    std::string num = name.substr(prefix.size());
    if (num.size() > 3 && num.substr(num.size() - 3) == ".pb") num = num.substr(0, num.size() - 3);
    if (num.empty() || num.find_first_not_of("0123456789") != std::string::npos) continue;
    found.emplace_back(std::stoi(num), e.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [n, p] : found) out.push_back(p);
  return out;
}

// The ONNX 1.12 suite stores bfloat16 tensors as uint16 bit patterns; read them as the bfloat16 the
// model declares (same bits, same shape).
Value bfloat16_from_bits(Value v, DType declared) {
  if (declared != DType::bfloat16 || !v.is_tensor() || v.tensor().dtype() != DType::uint16) return v;
  Tensor bits = v.tensor();
  Tensor t = Tensor::empty(DType::bfloat16, bits.shape());
  if (t.nbytes()) std::memcpy(t.raw_data(), bits.raw_data(), t.nbytes());
  return Value(std::move(t));
}

enum class Outcome { pass, fail, error, skip };

// Runs one test folder; returns the outcome and the text after "PASS/FAIL/ERROR name".
std::pair<Outcome, std::string> check_dir(const fs::path& dir, const SessionOptions& options, Tolerance tol) {
  const fs::path model = dir / "model.onnx";
  if (!fs::exists(model)) return {Outcome::skip, "no model.onnx"};
  auto session = Session::load(model, options);
  if (!session.ok()) return {Outcome::error, session.status().to_string()};
  const Session& s = **session;
  auto sets = numbered(dir, "test_data_set_");
  if (sets.empty()) return {Outcome::skip, "no test_data_set_N folders"};
  for (const auto& set : sets) {
    NamedValues inputs;
    auto in_files = numbered(set, "input_");
    for (size_t k = 0; k < in_files.size(); ++k) {
      std::string name;
      // The file's stored name binds it; files without a name bind by position.
      Value::Kind kind = k < s.inputs().size() ? s.inputs()[k].kind : Value::Kind::tensor;
      auto v = load_value_pb(in_files[k], kind, &name);
      if (v.ok() && !name.empty()) {
        auto it = std::find_if(s.inputs().begin(), s.inputs().end(), [&](const ValueInfo& i) { return i.name == name; });
        if (it != s.inputs().end() && it->kind != kind) v = load_value_pb(in_files[k], it->kind, &name);
      }
      if (!v.ok()) return {Outcome::error, v.status().to_string()};
      if (name.empty() || std::none_of(s.inputs().begin(), s.inputs().end(), [&](const ValueInfo& i) { return i.name == name; })) {
        if (k >= s.inputs().size()) return {Outcome::error, "more input files than model inputs"};
        name = s.inputs()[k].name;
      }
      auto info = std::find_if(s.inputs().begin(), s.inputs().end(), [&](const ValueInfo& i) { return i.name == name; });
      inputs.emplace_back(name, bfloat16_from_bits(std::move(v).value(), info->dtype));
    }
    auto outputs = s.run(inputs);
    if (!outputs.ok()) return {Outcome::error, outputs.status().to_string()};
    auto out_files = numbered(set, "output_");
    if (out_files.size() != outputs->size()) {
      return {Outcome::fail, std::to_string(outputs->size()) + " outputs, expected " + std::to_string(out_files.size())};
    }
    for (size_t k = 0; k < out_files.size(); ++k) {
      auto want = load_value_pb(out_files[k], (*outputs)[k].second.kind());
      if (!want.ok()) return {Outcome::error, want.status().to_string()};
      const Value& got = (*outputs)[k].second;
      const DType got_dtype = got.is_tensor() ? got.tensor().dtype() : DType::undefined;
      std::string diff = compare_values(got, bfloat16_from_bits(std::move(want).value(), got_dtype), tol);
      if (!diff.empty()) {
        return {Outcome::fail, "output '" + (*outputs)[k].first + "' " + diff + " [" + set.filename().string() + "]"};
      }
    }
  }
  return {Outcome::pass, ""};
}

}  // namespace

int cmd_check(int argc, char** argv) {
  Args args(argc, argv, 2, {"rtol", "atol", "backend", "threads", "optimization"}, {});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  Tolerance tol{args.get_double("rtol", 1e-3), args.get_double("atol", 1e-5)};
  SessionOptions options = session_options(args);
  if (!args.ok()) return usage_error("check", args.error());
  if (args.positionals().empty()) return usage_error("check", "no test folder given");
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& d : args.positionals()) {
    const fs::path dir(d);
    const std::string name = dir.filename().empty() ? dir.parent_path().filename().string() : dir.filename().string();
    auto [outcome, text] = check_dir(dir, options, tol);
    switch (outcome) {
      case Outcome::pass: ++passed; std::printf("PASS %s\n", name.c_str()); break;
      case Outcome::fail: ++failed; std::printf("FAIL %s: %s\n", name.c_str(), text.c_str()); break;
      case Outcome::error: ++failed; std::printf("ERROR %s: %s\n", name.c_str(), text.c_str()); break;
      case Outcome::skip: ++skipped; std::printf("SKIP %s: %s\n", name.c_str(), text.c_str()); break;
    }
    std::fflush(stdout);
  }
  std::printf("%d passed, %d failed", passed, failed);
  if (skipped) std::printf(", %d skipped", skipped);
  std::printf("\n");
  return failed ? kExitFailure : 0;
}

}  // namespace orchard::cli
