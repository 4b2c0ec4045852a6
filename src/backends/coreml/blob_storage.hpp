// MIL blob storage version 2 (`weights/weight.bin` of an .mlpackage): writer and validating reader.
// Layout (research file §3): a 64-byte header {count, version=2}, then per blob a 64-byte metadata record
// {0xDEADBEEF, dtype, size, absolute payload offset} at a 64-aligned offset, payload right after it.
// Layer: portable, depends on core only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "orchard/status.hpp"

namespace orchard::coreml {

// Blob element types (MILBlob BlobDataType numbers, which differ from MIL DataType numbers).
enum class BlobDType : uint32_t { float16 = 1, float32 = 2, uint8 = 3, int8 = 4, int16 = 6, uint16 = 7, int32 = 14, uint32 = 15 };

inline constexpr uint32_t kBlobSentinel = 0xDEADBEEFu;
inline constexpr uint32_t kBlobVersion = 2;
inline constexpr uint64_t kBlobAlignment = 64;
inline constexpr uint64_t kBlobRecordSize = 64;  // header and metadata records alike

// Returns the element size of `t` in bytes, or 0 for a code this writer does not know.
size_t blob_dtype_size(BlobDType t);

// Appends blobs; bytes() is a complete weight.bin after every append.
class BlobWriter {
 public:
  BlobWriter();
  // Appends `data` (little-endian elements of `dtype`) and returns the offset of its metadata record,
  // which is what a BlobFileValue.offset holds.
  uint64_t append(BlobDType dtype, std::span<const std::byte> data);
  const std::vector<std::byte>& bytes() const { return bytes_; }
  uint32_t count() const { return count_; }

 private:
  std::vector<std::byte> bytes_;
  uint32_t count_ = 0;
};

// One blob as found by the reader.
struct BlobInfo {
  uint64_t metadata_offset = 0;
  BlobDType dtype = BlobDType::float32;
  uint64_t data_offset = 0;
  uint64_t size = 0;  // payload bytes
};

// Parses and validates a whole weight.bin: header version, count, sentinels, alignment, offsets in bounds,
// sizes a multiple of the element size, blobs not overlapping. Errors name the blob and the bad field.
Result<std::vector<BlobInfo>> parse_blob_storage(std::span<const std::byte> file);

// Returns the blob whose metadata record is at `metadata_offset`, checking it holds `dtype`.
Result<BlobInfo> find_blob(std::span<const BlobInfo> blobs, uint64_t metadata_offset, BlobDType dtype);

}  // namespace orchard::coreml
