// A schema registry for ONNX shape inference that checks, before an operator's inference function runs,
// what that function assumes without checking (input ranks, attribute lengths). libonnx 1.12 reads past
// the end of shapes for, e.g., a Conv whose data input has rank 2, an opset-6 LSTM whose X has rank 1 or an
// opset-6 Gemm whose A has rank 0;
// through this registry those nodes fail inference with a message instead of crashing the process.
// Layer: src/onnx only.
#pragma once

#include <onnx/defs/schema.h>

namespace orchard::onnx_import {

// Returns the registry to pass to onnx::shape_inference::InferShapes (process-wide, thread-safe).
const onnx::ISchemaRegistry& guarded_schema_registry();

}  // namespace orchard::onnx_import
