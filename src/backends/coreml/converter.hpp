// ONNX graph → Core ML ML Program converter: the portable half of the Core ML backend.
// Built as adapters for Runtime v2: check_node answers capability per node (with the reason when not),
// partition groups claimed nodes, convert turns one node set into an .mlpackage in memory.
// Layer: depends on graph and core only; protobuf types stay inside src/backends/coreml.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "backends/coreml/package.hpp"
#include "graph/graph.hpp"
#include "orchard/status.hpp"

namespace orchard::coreml {

enum class Precision : unsigned char { fp16, fp32 };
enum class Target : unsigned char { macos13, macos14, macos15 };

struct ConvertOptions {
  Precision precision = Precision::fp16;  // fp16: the only precision the Neural Engine runs
  Target target = Target::macos13;        // deployment target: picks specificationVersion and opset
};

// Returns the Model.specificationVersion of `t` (macOS 13 → 7, 14 → 8, 15 → 9).
int specification_version(Target t);
// Returns the Function.opset of `t` ("CoreML6", "CoreML7", "CoreML8").
const char* opset_name(Target t);
// Returns "macos13" etc.; parse_target reads the same names.
const char* target_name(Target t);
Result<Target> parse_target(const std::string& s);

// Core ML limits the converter enforces on every tensor a claimed node touches.
inline constexpr size_t kMaxRank = 5;
inline constexpr int64_t kMaxDim = 16384;

// Returns ok when the converter can express `node` (a node of `graph`) under `options`, else an
// `unsupported` status saying why. Needs static shapes (graph.value_info) for the node's values.
Status check_node(const graph::Graph& graph, const graph::Node& node, const ConvertOptions& options);

// The verdict for every node of a graph: claimed, or the reason it is not.
struct Capability {
  std::vector<bool> claimed;                // per node index
  std::vector<std::string> reasons;         // per node index; empty when claimed
  std::vector<std::vector<size_t>> partitions;  // claimed nodes grouped into convex sets, each topological
};
// Checks every node and groups claimed nodes into as few partitions as a topological walk allows.
Capability get_capability(const graph::Graph& graph, const ConvertOptions& options);

// One converted partition.
struct Converted {
  Package package;
  std::vector<std::string> inputs;   // ONNX value names the program reads, in feature order
  std::vector<std::string> outputs;  // ONNX value names it produces, in feature order
  std::vector<std::string> input_features, output_features;  // the Core ML feature names, same orders
  int64_t operations = 0;            // MIL operations written (const ops included)
};

// Converts nodes `nodes` (indices into graph.nodes, topological) into one ML Program package.
// Fails (unsupported) naming the first node check_node rejects.
Result<Converted> convert(const graph::Graph& graph, std::span<const size_t> nodes, const ConvertOptions& options);

// Enumerated shapes: `graphs` are specializations of one model, one per enumerated input shape (the first
// is the default), with the same nodes. Converts `nodes` of each and merges the programs into one package
// whose inputs declare enumeratedShapes and whose dims that vary are unknown. Reshape targets may differ
// in one entry (written as -1); any other shape-dependent parameter or constant is an `unsupported` error
// naming the op. Before macOS 15 only one input may vary.
Result<Converted> convert_enumerated(std::span<const graph::Graph* const> graphs, std::span<const size_t> nodes,
                                     const ConvertOptions& options);

}  // namespace orchard::coreml
