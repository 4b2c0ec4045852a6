#include "backends/cpu/element_types.hpp"

namespace orchard::cpu {

Result<DType> dtype_from_onnx_type(int64_t onnx_type) {
  switch (onnx_type) {
    case 1: return DType::float32;
    case 2: return DType::uint8;
    case 3: return DType::int8;
    case 4: return DType::uint16;
    case 5: return DType::int16;
    case 6: return DType::int32;
    case 7: return DType::int64;
    case 8: return DType::string;
    case 9: return DType::boolean;
    case 10: return DType::float16;
    case 11: return DType::float64;
    case 12: return DType::uint32;
    case 13: return DType::uint64;
    case 16: return DType::bfloat16;
    default: return unsupported("ONNX data type ", onnx_type, " is not supported");
  }
}

}  // namespace orchard::cpu
