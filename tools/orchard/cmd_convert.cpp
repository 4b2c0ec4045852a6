// orchard convert: ONNX → Core ML ML Program package(s), with a capability report and an optional
// round-trip check (the package read back and run on the CPU backend against the ONNX model).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include "backends/coreml/converter.hpp"
#include "backends/coreml/onnx_bridge.hpp"
#include "cli.hpp"

namespace orchard::cli {

namespace {

constexpr const char* kHelp = R"(usage: orchard convert MODEL.onnx OUT.mlpackage [options]

Converts the nodes Core ML can run into ML Program packages: OUT.mlpackage for the first partition,
OUT.p1.mlpackage, ... for later ones. Prints which nodes went in, which did not and why.

options:
  --precision fp16|fp32   program precision (default fp16: the only one the Neural Engine runs)
  --target macos13|macos14|macos15   deployment target (default macos13: CoreML6 opset)
  --shape NAME=DIMS       static shape of input NAME, e.g. --shape input=1x3x224x224; repeating it for one
                          input lists enumerated shapes (one package accepting each)
  --dim SYMBOL=N[,N...]   value of a symbolic dim, e.g. --dim N=1 --dim S=128; a list enumerates shapes
                          (the k-th shape takes the k-th value of every list)
  --verify                read the packages back, run them on the CPU and report the max error against
                          the ONNX model on seeded random inputs (inputs named *mask* are filled with 1)
  --seed N                seed of the random inputs (default 1)
  --output NAME           also expose intermediate value NAME as an output (converted and compared)
)";

Result<std::vector<int64_t>> parse_dims(const std::string& s) {
  std::vector<int64_t> dims;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, s.find('x') != std::string::npos ? 'x' : ',')) {
    char* end = nullptr;
    const long long v = std::strtoll(cur.c_str(), &end, 10);
    if (cur.empty() || *end != '\0' || v <= 0) return invalid_argument("bad dim '", cur, "' in '", s, "'");
    dims.push_back(v);
  }
  return dims;
}

std::string replace_extension(const std::string& out, size_t k) {
  if (k == 0) return out;
  const std::string stem = out.substr(0, out.size() - std::string(".mlpackage").size());
  return stem + ".p" + std::to_string(k) + ".mlpackage";
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  Args args(argc, argv, 2, {"precision", "target", "shape", "dim", "seed", "output"}, {"verify"});
  if (args.help()) {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (!args.ok()) return usage_error("convert", args.error());
  if (args.positionals().size() != 2) return usage_error("convert", "expects MODEL.onnx and OUT.mlpackage");
  const std::string model_path = args.positionals()[0], out = args.positionals()[1];
  if (out.size() < 10 || out.substr(out.size() - 10) != ".mlpackage") return usage_error("convert", "output must end in .mlpackage");
  coreml::ConvertOptions options;
  const std::string precision = args.get("precision", "fp16");
  if (precision != "fp16" && precision != "fp32") return usage_error("convert", "--precision must be fp16 or fp32, got '" + precision + "'");
  options.precision = precision == "fp16" ? coreml::Precision::fp16 : coreml::Precision::fp32;
  auto target = coreml::parse_target(args.get("target", "macos13"));
  if (!target.ok()) return usage_error("convert", target.status().message());
  options.target = *target;
  // Enumerated shapes: a repeated --shape for one input, or a comma list in --dim, gives the k-th
  // configuration its k-th entry; single entries apply to every configuration.
  std::map<std::string, std::vector<std::vector<int64_t>>> shape_lists;
  for (const auto& s : args.all("shape")) {
    const auto eq = s.find('=');
    auto dims = eq == std::string::npos ? Result<std::vector<int64_t>>(invalid_argument("missing '='")) : parse_dims(s.substr(eq + 1));
    if (!dims.ok()) return usage_error("convert", "--shape " + s + ": " + dims.status().message());
    shape_lists[s.substr(0, eq)].push_back(*dims);
  }
  std::map<std::string, std::vector<int64_t>> dim_lists;
  for (const auto& s : args.all("dim")) {
    const auto eq = s.find('=');
    auto values = eq == std::string::npos ? Result<std::vector<int64_t>>(invalid_argument("missing '='")) : parse_dims(s.substr(eq + 1));
    if (!values.ok()) return usage_error("convert", "--dim expects SYMBOL=N[,N...], got '" + s + "'");
    dim_lists[s.substr(0, eq)] = *values;
  }
  size_t configs = 1;
  for (const auto& [k, v] : shape_lists) configs = std::max(configs, v.size());
  for (const auto& [k, v] : dim_lists) configs = std::max(configs, v.size());
  auto check_count = [&](size_t n) { return n == 1 || n == configs; };
  for (const auto& [k, v] : shape_lists) {
    if (!check_count(v.size())) return usage_error("convert", "input '" + k + "' has " + std::to_string(v.size()) + " shapes, others " + std::to_string(configs));
  }
  for (const auto& [k, v] : dim_lists) {
    if (!check_count(v.size())) return usage_error("convert", "dim '" + k + "' has " + std::to_string(v.size()) + " values, others " + std::to_string(configs));
  }
  const int64_t seed = args.get_int("seed", 1);
  if (!args.ok()) return usage_error("convert", args.error());

  std::ifstream f(model_path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "orchard convert: cannot open '%s'\n", model_path.c_str());
    return kExitFailure;
  }
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "orchard convert: %s\n", s.message().c_str());
    return kExitFailure;
  };
  std::vector<std::string> specialized;
  std::vector<std::map<std::string, int64_t>> config_dims;
  std::vector<graph::Model> models;
  for (size_t k = 0; k < configs; ++k) {
    std::map<std::string, std::vector<int64_t>> shapes;
    std::map<std::string, int64_t> dims;
    for (const auto& [name, v] : shape_lists) shapes[name] = v[v.size() == 1 ? 0 : k];
    for (const auto& [name, v] : dim_lists) dims[name] = v[v.size() == 1 ? 0 : k];
    auto spec = coreml::specialize_onnx(bytes, shapes, dims, args.all("output"));
    if (!spec.ok()) return fail(spec.status());
    auto model = coreml::import_for_conversion(*spec);
    if (!model.ok()) return fail(model.status());
    specialized.push_back(std::move(*spec));
    config_dims.push_back(dims);
    models.push_back(std::move(*model));
  }
  const graph::Graph& g = *models[0].graph;
  const coreml::Capability cap = coreml::get_capability(g, options);
  for (size_t k = 1; k < configs; ++k) {
    const coreml::Capability other = coreml::get_capability(*models[k].graph, options);
    if (other.partitions != cap.partitions) return fail(unsupported("[coreml] enumerated shape ", k, " changes which nodes convert"));
  }
  size_t claimed = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    if (cap.claimed[i]) {
      ++claimed;
    } else {
      std::printf("  not converted: %s: %s\n", g.nodes[i].label().c_str(), cap.reasons[i].c_str());
    }
  }
  std::printf("%s: %zu of %zu nodes converted (after shape folding), %zu partition(s); %s, %s, %zu enumerated shape(s)\n",
              model_path.c_str(), claimed, g.nodes.size(), cap.partitions.size(), precision.c_str(), coreml::target_name(options.target),
              configs);
  std::vector<const graph::Graph*> graphs;
  for (const auto& m : models) graphs.push_back(m.graph.get());
  std::vector<coreml::Converted> packages;
  for (size_t k = 0; k < cap.partitions.size(); ++k) {
    auto conv = configs == 1 ? coreml::convert(g, cap.partitions[k], options) : coreml::convert_enumerated(graphs, cap.partitions[k], options);
    if (!conv.ok()) return fail(conv.status());
    const std::string path = replace_extension(out, k);
    Status s = coreml::write_package(conv->package, path);
    if (!s.ok()) return fail(s);
    std::printf("  %s: %zu nodes, %lld MIL ops, %zu weight bytes, inputs:", path.c_str(), cap.partitions[k].size(),
                static_cast<long long>(conv->operations), conv->package.weights.size());
    for (const auto& i : conv->inputs) std::printf(" %s", i.c_str());
    std::printf(", outputs:");
    for (const auto& o : conv->outputs) std::printf(" %s", o.c_str());
    std::printf("\n");
    packages.push_back(std::move(*conv));
  }
  if (!args.has("verify")) return 0;
  for (size_t k = 0; k < configs; ++k) {
    auto session = Session::load_from_bytes(std::as_bytes(std::span(specialized[k].data(), specialized[k].size())));
    if (!session.ok()) return fail(session.status());
    auto inputs = random_inputs(**session, config_dims[k], static_cast<uint32_t>(seed));
    if (!inputs.ok()) return fail(inputs.status());
    for (auto& [name, v] : *inputs) {
      if (name.find("mask") == std::string::npos || !v.is_tensor()) continue;
      Tensor& t = v.tensor();
      for (int64_t i = 0; i < t.numel(); ++i) {
        if (t.dtype() == DType::int64) t.data<int64_t>()[i] = 1;
        if (t.dtype() == DType::float32) t.data<float>()[i] = 1;
      }
    }
    auto report = coreml::round_trip(specialized[k], options, *inputs, &packages);
    if (!report.ok()) return fail(report.status());
    std::printf("round trip%s: max abs error %.3g (output '%s'), max |reference| %.3g, relative %.3g\n",
                configs > 1 ? (" (shape " + std::to_string(k) + ")").c_str() : "", report->max_abs_error, report->worst_output.c_str(),
                report->max_ref, report->max_ref > 0 ? report->max_abs_error / report->max_ref : 0.0);
  }
  return 0;
}

}  // namespace orchard::cli
