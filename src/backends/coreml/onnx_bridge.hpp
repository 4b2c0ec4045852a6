// The Core ML converter's ONNX-side helpers, for the CLI and the round-trip verification (not for the
// runtime path): fixing input shapes and folding shape subgraphs, exporting a graph::Graph to ONNX
// bytes, and the round trip (convert → read the ML Program back → run on the CPU → compare).
// Layer: uses libonnx (like src/onnx) and the public Session API.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "backends/coreml/converter.hpp"
#include "graph/graph.hpp"
#include "orchard/session.hpp"

namespace orchard::coreml {

// Rewrites an ONNX model for conversion with static shapes: upgrades it to opset 17 (libonnx's version
// converter), fixes every input's shape (`shapes` by input name, else `dims` by symbol name), then
// repeatedly infers shapes, replaces Shape/Size of static values by constants and evaluates (on the CPU
// backend) every node that reads only constants, until nothing changes. Errors name an input dim left
// symbolic. `extra_outputs` names intermediate values to expose as graph outputs (to compare them too).
Result<std::string> specialize_onnx(const std::string& onnx_bytes, const std::map<std::string, std::vector<int64_t>>& shapes,
                                    const std::map<std::string, int64_t>& dims, const std::vector<std::string>& extra_outputs = {});

// Serializes `g` as an ONNX model (IR 8, default-domain opset `opset`). Subgraph attributes are unsupported.
Result<std::string> graph_to_onnx(const graph::Graph& g, int opset);

struct RoundTripReport {
  size_t nodes = 0;                     // nodes of the (specialized) graph
  size_t claimed = 0;                   // nodes converted to ML Programs
  std::vector<std::vector<size_t>> partitions;
  std::vector<std::string> unclaimed;   // "node 'x' (Op): reason"
  std::vector<Converted> packages;      // one per partition
  int64_t mil_operations = 0;
  double max_abs_error = 0;             // over all outputs
  double max_ref = 0;                   // largest |reference| value, for a relative figure
  std::string worst_output;
};

// Converts `g` (imported from `onnx_bytes`, static shapes) partition by partition, reads every package
// back, runs the result (unclaimed nodes as ONNX, partitions as the reader's graphs) on the CPU backend
// and compares it with running `onnx_bytes` itself on `inputs`. With `packages`, those (one per
// partition, e.g. from convert_enumerated) are read instead of converting.
Result<RoundTripReport> round_trip(const std::string& onnx_bytes, const ConvertOptions& options, const NamedValues& inputs,
                                   const std::vector<Converted>* packages = nullptr);

// Imports ONNX bytes into a graph (the importer's checks and shape inference).
Result<graph::Model> import_for_conversion(const std::string& onnx_bytes);

}  // namespace orchard::coreml
