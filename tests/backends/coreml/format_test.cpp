// Core ML package format: weight.bin blob storage v2 byte for byte, Manifest.json, protoc decode/encode.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <unistd.h>

#include "backends/coreml/blob_storage.hpp"
#include "backends/coreml/converter.hpp"
#include "backends/coreml/mil_builder.hpp"
#include "backends/coreml/onnx_bridge.hpp"
#include "backends/coreml/package.hpp"
#include "testing/model_builder.hpp"

namespace orchard::coreml {
namespace {

namespace fs = std::filesystem;

std::span<const std::byte> bytes_of(const void* p, size_t n) { return {static_cast<const std::byte*>(p), n}; }

uint64_t le(const std::vector<std::byte>& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("orchard_coreml_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// The research file's worked example: fp32[1,2,3,4] then fp16[1,2,3] is a 262-byte file.
TEST(CoreMLBlobStorage, WorkedExampleByteForByte) {
  BlobWriter w;
  const float f[] = {1, 2, 3, 4};
  const uint16_t h[] = {0x3c00, 0x4000, 0x4200};
  EXPECT_EQ(w.append(BlobDType::float32, bytes_of(f, sizeof f)), 64u);
  EXPECT_EQ(w.append(BlobDType::float16, bytes_of(h, sizeof h)), 192u);
  const auto& b = w.bytes();
  ASSERT_EQ(b.size(), 262u);
  EXPECT_EQ(le(b, 0, 4), 2u);  // count
  EXPECT_EQ(le(b, 4, 4), 2u);  // version
  for (size_t i = 8; i < 64; ++i) EXPECT_EQ(b[i], std::byte{0}) << i;
  EXPECT_EQ(le(b, 64, 4), 0xDEADBEEFu);
  EXPECT_EQ(le(b, 68, 4), 2u);    // Float32
  EXPECT_EQ(le(b, 72, 8), 16u);   // size
  EXPECT_EQ(le(b, 80, 8), 128u);  // absolute payload offset
  for (size_t i = 88; i < 128; ++i) EXPECT_EQ(b[i], std::byte{0}) << i;
  EXPECT_EQ(std::memcmp(b.data() + 128, f, 16), 0);
  for (size_t i = 144; i < 192; ++i) EXPECT_EQ(b[i], std::byte{0}) << i;  // zero gap to 64-alignment
  EXPECT_EQ(le(b, 192, 4), 0xDEADBEEFu);
  EXPECT_EQ(le(b, 196, 4), 1u);   // Float16
  EXPECT_EQ(le(b, 200, 8), 6u);
  EXPECT_EQ(le(b, 208, 8), 256u);
  EXPECT_EQ(le(b, 256, 2), 0x3c00u);
  EXPECT_EQ(le(b, 260, 2), 0x4200u);
  auto blobs = parse_blob_storage(b);
  ASSERT_TRUE(blobs.ok()) << blobs.status().to_string();
  ASSERT_EQ(blobs->size(), 2u);
  EXPECT_EQ((*blobs)[1].data_offset, 256u);
  EXPECT_TRUE(find_blob(*blobs, 192, BlobDType::float16).ok());
  EXPECT_FALSE(find_blob(*blobs, 192, BlobDType::float32).ok());  // wrong dtype
  EXPECT_FALSE(find_blob(*blobs, 100, BlobDType::float16).ok());  // not a metadata offset
}

TEST(CoreMLBlobStorage, EmptyStorageIsHeaderOnly) {
  BlobWriter w;
  EXPECT_EQ(w.bytes().size(), 64u);
  auto blobs = parse_blob_storage(w.bytes());
  ASSERT_TRUE(blobs.ok());
  EXPECT_TRUE(blobs->empty());
}

TEST(CoreMLBlobStorage, CorruptionIsNamed) {
  BlobWriter w;
  const float f[] = {1, 2, 3};
  w.append(BlobDType::float32, bytes_of(f, sizeof f));
  auto bad_sentinel = w.bytes();
  bad_sentinel[64] = std::byte{0};
  auto s = parse_blob_storage(bad_sentinel).status();
  EXPECT_NE(s.message().find("sentinel"), std::string::npos) << s.to_string();
  auto bad_version = w.bytes();
  bad_version[4] = std::byte{1};
  EXPECT_NE(parse_blob_storage(bad_version).status().message().find("version 1"), std::string::npos);
  auto truncated = w.bytes();
  truncated.resize(truncated.size() - 1);
  EXPECT_FALSE(parse_blob_storage(truncated).ok());
  auto bad_offset = w.bytes();
  bad_offset[80] = std::byte{0x90};
  EXPECT_NE(parse_blob_storage(bad_offset).status().message().find("payload offset"), std::string::npos);
  auto bad_count = w.bytes();
  bad_count[0] = std::byte{2};
  EXPECT_FALSE(parse_blob_storage(bad_count).ok());
}

TEST(CoreMLPackage, WriteReadAndManifestResolves) {
  const fs::path dir = temp_dir("pkg") / "m.mlpackage";
  Package p;
  p.model = "model-bytes";
  BlobWriter w;
  const float f[] = {1, 2};
  w.append(BlobDType::float32, bytes_of(f, sizeof f));
  p.weights = w.bytes();
  ASSERT_TRUE(write_package(p, dir).ok());
  EXPECT_TRUE(fs::is_regular_file(dir / "Data/com.apple.CoreML/model.mlmodel"));
  EXPECT_TRUE(fs::is_regular_file(dir / "Data/com.apple.CoreML/weights/weight.bin"));
  auto back = read_package(dir);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->model, p.model);
  EXPECT_EQ(back->weights, p.weights);
  // The same contents give the same manifest (stable identifiers).
  std::ifstream m1(dir / "Manifest.json");
  const std::string manifest((std::istreambuf_iterator<char>(m1)), std::istreambuf_iterator<char>());
  EXPECT_EQ(manifest, manifest_json(p.model + std::string(reinterpret_cast<const char*>(p.weights.data()), p.weights.size())));
  EXPECT_NE(manifest.find("\"rootModelIdentifier\""), std::string::npos);
  EXPECT_NE(manifest.find("\"path\": \"com.apple.CoreML/weights\""), std::string::npos);
  EXPECT_NE(manifest_json("a"), manifest_json("b"));
  // A missing item is reported by name.
  fs::remove(dir / "Data/com.apple.CoreML/model.mlmodel");
  auto missing = read_package(dir);
  EXPECT_EQ(missing.status().code(), StatusCode::not_found);
  EXPECT_NE(missing.status().message().find("model.mlmodel"), std::string::npos);
  EXPECT_FALSE(write_package(p, dir.parent_path() / "wrong.dir").ok());
  fs::remove_all(dir.parent_path());
}

TEST(CoreMLPackage, BadManifestIsRejected) {
  const fs::path dir = temp_dir("badpkg") / "m.mlpackage";
  ASSERT_TRUE(write_package(Package{"x", {}}, dir).ok());
  std::ofstream(dir / "Manifest.json") << R"({"fileFormatVersion": "2.0.0", "itemInfoEntries": {}, "rootModelIdentifier": "x"})";
  EXPECT_NE(read_package(dir).status().message().find("2.0.0"), std::string::npos);
  std::ofstream(dir / "Manifest.json") << "not json";
  EXPECT_FALSE(read_package(dir).ok());
  fs::remove_all(dir.parent_path());
}

// A converted model: conv (weights to weight.bin) + gemm, fp16.
Converted convert_small(Precision precision) {
  testing::ModelBuilder b;
  b.input("x", onnx::TensorProto::FLOAT, {1, 3, 8, 8});
  b.initializer("w", {4, 3, 3, 3}, 0.25f).initializer("bias", {4}, 0.5f).initializer("fc", {4, 2}, 0.1f);
  b.node("Conv", {"x", "w", "bias"}, {"c"});
  b.node("GlobalAveragePool", {"c"}, {"p"});
  b.node("Flatten", {"p"}, {"f"});
  b.node("Gemm", {"f", "fc"}, {"y"});
  b.output("y", onnx::TensorProto::FLOAT, {1, 2});
  auto model = import_for_conversion(b.bytes());
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  const graph::Graph& g = *model->graph;
  std::vector<size_t> all{0, 1, 2, 3};
  ConvertOptions o;
  o.precision = precision;
  auto c = convert(g, all, o);
  EXPECT_TRUE(c.ok()) << c.status().to_string();
  return *c;
}

TEST(CoreMLFormat, ModelHeaderAndBlobReferences) {
  Converted c = convert_small(Precision::fp16);
  const std::string& m = c.package.model;
  ASSERT_GE(m.size(), 4u);
  EXPECT_EQ(static_cast<uint8_t>(m[0]), 0x08);  // field 1 varint: specificationVersion
  EXPECT_EQ(static_cast<uint8_t>(m[1]), 7);     // macOS 13
  CoreML::Specification::Model model;
  ASSERT_TRUE(model.ParseFromString(m));
  ASSERT_TRUE(model.has_mlprogram());
  const auto& fn = model.mlprogram().functions().at("main");
  EXPECT_EQ(fn.opset(), "CoreML6");
  const auto& block = fn.block_specializations().at("CoreML6");
  auto blobs = parse_blob_storage(c.package.weights);
  ASSERT_TRUE(blobs.ok()) << blobs.status().to_string();
  int blob_values = 0;
  for (const auto& op : block.operations()) {
    EXPECT_TRUE(op.attributes().count("name")) << op.type();
    if (op.type() != "const") continue;
    const auto& val = op.attributes().at("val");
    if (!val.has_blobfilevalue()) continue;
    ++blob_values;
    EXPECT_EQ(val.blobfilevalue().filename(), "@model_path/weights/weight.bin");
    EXPECT_EQ(val.blobfilevalue().offset() % 64, 0u);
    const auto& tt = val.type().tensortype();
    EXPECT_EQ(tt.datatype(), mil::FLOAT16);  // fp16 program: weights stored fp16
    int64_t n = 1;
    for (const auto& d : tt.dimensions()) n *= static_cast<int64_t>(d.constant().size());
    auto blob = find_blob(*blobs, val.blobfilevalue().offset(), BlobDType::float16);
    ASSERT_TRUE(blob.ok()) << blob.status().to_string();
    EXPECT_EQ(blob->size, static_cast<uint64_t>(n) * 2);
    // Conv weights are 0.25 everywhere: fp16 0x3400.
    if (n == 108) {
      EXPECT_EQ(le(c.package.weights, blob->data_offset, 2), 0x3400u);
    }
  }
  EXPECT_EQ(blob_values, 1);  // the conv weight (108 values); the gemm weight (8 < 10 values) is immediate
  EXPECT_EQ(static_cast<size_t>(blob_values), blobs->size());
  // fp32 I/O at the edges of an fp16 program.
  EXPECT_EQ(model.description().input(0).type().multiarraytype().datatype(), CoreML::Specification::FLOAT32);
  EXPECT_EQ(block.operations(0).type(), "cast");
}

// protoc --decode against the schema, then --encode, reproduces the bytes.
TEST(CoreMLFormat, ProtocDecodeEncodeRoundTrip) {
  const fs::path dir = temp_dir("protoc");
  Converted c = convert_small(Precision::fp32);
  {
    std::ofstream(dir / "model.mlmodel", std::ios::binary) << c.package.model;
  }
  const std::string proto_dir = ORCHARD_COREML_PROTO_DIR;
  const std::string protoc = ORCHARD_PROTOC;
  const std::string decode = protoc + " --decode=CoreML.Specification.Model -I " + proto_dir + " coreml_model.proto < " +
                             (dir / "model.mlmodel").string() + " > " + (dir / "model.txt").string();
  ASSERT_EQ(std::system(decode.c_str()), 0) << decode;
  const std::string encode = protoc + " --encode=CoreML.Specification.Model -I " + proto_dir + " coreml_model.proto < " +
                             (dir / "model.txt").string() + " > " + (dir / "again.mlmodel").string();
  ASSERT_EQ(std::system(encode.c_str()), 0) << encode;
  std::ifstream t(dir / "model.txt"), a(dir / "again.mlmodel", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(t)), std::istreambuf_iterator<char>());
  const std::string again((std::istreambuf_iterator<char>(a)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("specificationVersion: 7"), std::string::npos);
  EXPECT_NE(text.find("type: \"conv\""), std::string::npos);
  EXPECT_EQ(text.find("\n1:"), std::string::npos) << "fields unknown to the schema";
  EXPECT_EQ(again, c.package.model);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace orchard::coreml
