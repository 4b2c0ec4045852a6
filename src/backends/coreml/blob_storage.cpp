#include "backends/coreml/blob_storage.hpp"

#include <cstring>

namespace orchard::coreml {

namespace {

void put_le(std::vector<std::byte>& out, uint64_t at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<std::byte>((v >> (8 * i)) & 0xffu);
}

uint64_t get_le(std::span<const std::byte> in, uint64_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(in[at + i]) << (8 * i);
  return v;
}

uint64_t align_up(uint64_t v) { return (v + kBlobAlignment - 1) / kBlobAlignment * kBlobAlignment; }

}  // namespace

size_t blob_dtype_size(BlobDType t) {
  switch (t) {
    case BlobDType::uint8:
    case BlobDType::int8: return 1;
    case BlobDType::float16:
    case BlobDType::int16:
    case BlobDType::uint16: return 2;
    case BlobDType::float32:
    case BlobDType::int32:
    case BlobDType::uint32: return 4;
  }
  return 0;
}

BlobWriter::BlobWriter() : bytes_(kBlobRecordSize, std::byte{0}) {
  put_le(bytes_, 4, kBlobVersion, 4);
}

uint64_t BlobWriter::append(BlobDType dtype, std::span<const std::byte> data) {
  const uint64_t meta = align_up(bytes_.size());
  const uint64_t payload = meta + kBlobRecordSize;
  bytes_.resize(payload + data.size(), std::byte{0});  // zero-fills the alignment gap and the record
  put_le(bytes_, meta, kBlobSentinel, 4);
  put_le(bytes_, meta + 4, static_cast<uint32_t>(dtype), 4);
  put_le(bytes_, meta + 8, data.size(), 8);
  put_le(bytes_, meta + 16, payload, 8);
  // padding_size_in_bits (+24) and reserved fields stay zero: no sub-byte types are written.
  if (!data.empty()) std::memcpy(bytes_.data() + payload, data.data(), data.size());
  put_le(bytes_, 0, ++count_, 4);
  return meta;
}

Result<std::vector<BlobInfo>> parse_blob_storage(std::span<const std::byte> file) {
  if (file.size() < kBlobRecordSize) {
    return invalid_argument("[coreml] weight.bin: ", file.size(), " bytes is shorter than its 64-byte header");
  }
  const uint32_t count = static_cast<uint32_t>(get_le(file, 0, 4));
  const uint32_t version = static_cast<uint32_t>(get_le(file, 4, 4));
  if (version != kBlobVersion) return invalid_argument("[coreml] weight.bin: storage version ", version, ", expected 2");
  for (uint64_t i = 8; i < kBlobRecordSize; ++i) {
    if (file[i] != std::byte{0}) return invalid_argument("[coreml] weight.bin: header reserved byte ", i, " is not zero");
  }
  std::vector<BlobInfo> out;
  uint64_t at = kBlobRecordSize;
  for (uint32_t b = 0; b < count; ++b) {
    at = align_up(at);
    if (at + kBlobRecordSize > file.size()) {
      return invalid_argument("[coreml] weight.bin: blob ", b, " of ", count, ": metadata at ", at, " past the end (", file.size(), " bytes)");
    }
    BlobInfo info;
    info.metadata_offset = at;
    const uint64_t sentinel = get_le(file, at, 4);
    if (sentinel != kBlobSentinel) return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": sentinel ", sentinel, " is not 0xdeadbeef (3735928559)");
    info.dtype = static_cast<BlobDType>(get_le(file, at + 4, 4));
    const size_t elem = blob_dtype_size(info.dtype);
    if (elem == 0) return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": unknown data type ", static_cast<uint32_t>(info.dtype));
    info.size = get_le(file, at + 8, 8);
    info.data_offset = get_le(file, at + 16, 8);
    if (info.data_offset != at + kBlobRecordSize) {
      return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": payload offset ", info.data_offset, ", expected ", at + kBlobRecordSize);
    }
    if (get_le(file, at + 24, 8) != 0) return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": padding bits set for a byte-sized type");
    if (info.size % elem != 0) return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": size ", info.size, " not a multiple of ", elem);
    if (info.size > file.size() - info.data_offset) {
      return invalid_argument("[coreml] weight.bin: blob ", b, " at ", at, ": ", info.size, " payload bytes run past the end");
    }
    out.push_back(info);
    at = info.data_offset + info.size;
  }
  if (at < file.size()) return invalid_argument("[coreml] weight.bin: ", file.size() - at, " trailing bytes after blob ", count);
  return out;
}

Result<BlobInfo> find_blob(std::span<const BlobInfo> blobs, uint64_t metadata_offset, BlobDType dtype) {
  for (const auto& b : blobs) {
    if (b.metadata_offset != metadata_offset) continue;
    if (b.dtype != dtype) {
      return invalid_argument("[coreml] weight.bin: blob at ", metadata_offset, " holds data type ", static_cast<uint32_t>(b.dtype),
                              ", the program expects ", static_cast<uint32_t>(dtype));
    }
    return b;
  }
  return not_found("[coreml] weight.bin: no blob metadata at offset ", metadata_offset);
}

}  // namespace orchard::coreml
