// ML Program reader: imports a package written by the converter back into Orchard's graph, expressing
// each MIL op's documented semantics (coremltools MIL op reference) with ONNX-domain nodes, so the
// program can run on the CPU backend and be compared with the original model (the round trip).
// Independent of the converter's ONNX→MIL tables: it reads only the package bytes.
// Layer: depends on graph and core; protobuf types stay inside src/backends/coreml.
#pragma once

#include "backends/coreml/package.hpp"
#include "graph/graph.hpp"
#include "orchard/status.hpp"

namespace orchard::coreml {

// What the reader found besides the graph.
struct ProgramInfo {
  int specification_version = 0;
  std::string opset;                            // Function.opset, e.g. "CoreML6"
  int64_t operations = 0;                       // MIL operations, const ops included
  std::map<std::string, int64_t> op_counts;     // MIL op type → count
  // Every non-const op output: MIL name → declared (dtype, shape), to compare with inferred shapes.
  std::map<std::string, std::pair<DType, std::vector<int64_t>>> declared;
};

// Parses and validates `pkg` (model protobuf, mlProgram with one "main" function, weight.bin blobs the
// program references) and returns an ONNX-domain graph (opset 17) computing the same function. Inputs
// and outputs carry the ONNX names the converter recorded in the metadata (else the feature names).
// Unknown MIL ops are an `unsupported` error naming the op.
Result<graph::Graph> read_program(const Package& pkg, ProgramInfo* info = nullptr);

// Returns the opset the reader's graphs use.
inline constexpr int kReaderOnnxOpset = 17;

}  // namespace orchard::coreml
