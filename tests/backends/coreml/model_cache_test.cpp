// Compiled-model cache with a fake compiler: keys, hits, recompiles on change, LRU eviction by size.
#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

#include "backends/coreml/model_cache.hpp"

namespace orchard::coreml {
namespace {

namespace fs = std::filesystem;

// A fake "compiler": writes a directory with one file of `bytes` bytes, after checking the package reads.
struct FakeCompiler {
  int calls = 0;
  uint64_t bytes = 1000;
  bool fail = false;
  Status operator()(const fs::path& pkg, const fs::path& out) {
    ++calls;
    if (fail) return unavailable("fake compiler failed");
    auto p = read_package(pkg);
    if (!p.ok()) return p.status();
    fs::create_directories(out);
    std::ofstream(out / "model.mil", std::ios::binary) << std::string(bytes, 'x');
    return Status::OK();
  }
};

Package package(const std::string& model, uint8_t weight_byte) {
  Package p;
  p.model = model;
  p.weights.assign(64, std::byte{0});
  p.weights.push_back(std::byte{weight_byte});
  return p;
}

fs::path temp_dir() {
  fs::path p = fs::temp_directory_path() / ("orchard_coreml_cache_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

TEST(CoreMLModelCache, KeyCoversBytesOsAndComputeUnits) {
  const CacheKeyParts a{"14.4", "cpu_and_ne"};
  const std::string k = cache_key(package("m", 1), a);
  EXPECT_EQ(k.size(), 16u);
  EXPECT_EQ(k, cache_key(package("m", 1), a));
  EXPECT_NE(k, cache_key(package("m", 2), a));                         // a changed weight
  EXPECT_NE(k, cache_key(package("n", 1), a));                         // a changed program
  EXPECT_NE(k, cache_key(package("m", 1), {"15.0", "cpu_and_ne"}));    // another OS
  EXPECT_NE(k, cache_key(package("m", 1), {"14.4", "all"}));           // other compute units
}

TEST(CoreMLModelCache, HitsRecompilesAndEvictsLeastRecentlyUsed) {
  const fs::path dir = temp_dir();
  FakeCompiler fake;
  ModelCache cache(dir, 2500, std::ref(fake));
  const CacheKeyParts parts{"14.4", "cpu_and_ne"};
  auto a = cache.get(package("a", 1), parts);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  EXPECT_TRUE(fs::is_regular_file(*a / "model.mil"));
  auto a2 = cache.get(package("a", 1), parts);
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(*a, *a2);
  EXPECT_EQ(fake.calls, 1);  // unchanged model: loaded from the cache
  EXPECT_EQ(cache.hits(), 1u);
  auto b = cache.get(package("a", 2), parts);  // a changed weight recompiles
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(fake.calls, 2);
  EXPECT_NE(*a, *b);
  ASSERT_TRUE(cache.get(package("a", 1), parts).ok());  // a is now the most recent
  auto c = cache.get(package("c", 1), parts);            // third entry: over 2500 bytes → evict b (LRU)
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(fs::exists(*a));
  EXPECT_FALSE(fs::exists(*b));
  EXPECT_TRUE(fs::exists(*c));
  EXPECT_LE(cache.size_bytes(), 2500u);
  fake.fail = true;
  auto d = cache.get(package("d", 1), parts);
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("fake compiler failed"), std::string::npos);
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().extension(), ".mlmodelc") << e.path();  // no leftovers
  fs::remove_all(dir);
}

}  // namespace
}  // namespace orchard::coreml
