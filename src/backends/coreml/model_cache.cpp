#include "backends/coreml/model_cache.hpp"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

namespace orchard::coreml {

namespace fs = std::filesystem;

namespace {

constexpr const char* kEntrySuffix = ".mlmodelc";
constexpr const char* kStampFile = ".orchard_last_use";

uint64_t dir_bytes(const fs::path& p) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

// Use times are a counter stored in each entry (file times may be coarse or unwritable).
uint64_t read_stamp(const fs::path& entry) {
  std::ifstream f(entry / kStampFile);
  uint64_t v = 0;
  f >> v;
  return v;
}

void write_stamp(const fs::path& entry, uint64_t v) { std::ofstream(entry / kStampFile) << v; }

uint64_t next_stamp(const fs::path& dir) {
  uint64_t m = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) m = std::max(m, read_stamp(e.path()));
  return m + 1;
}

}  // namespace

std::string cache_key(const Package& pkg, const CacheKeyParts& parts) {
  uint64_t h = fnv1a64(pkg.model.data(), pkg.model.size());
  const uint64_t n = pkg.model.size();
  h = fnv1a64(&n, sizeof n, h);  // the model/weights boundary is part of the key
  h = fnv1a64(pkg.weights.data(), pkg.weights.size(), h);
  for (const std::string* s : {&parts.os_version, &parts.compute_units}) {
    h = fnv1a64(s->data(), s->size(), h);
    h = fnv1a64("\0", 1, h);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

ModelCache::ModelCache(fs::path dir, uint64_t max_bytes, Compiler compiler)
    : dir_(std::move(dir)), max_bytes_(max_bytes), compiler_(std::move(compiler)) {}

uint64_t ModelCache::size_bytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() == kEntrySuffix) total += dir_bytes(e.path());
  }
  return total;
}

Result<fs::path> ModelCache::get(const Package& pkg, const CacheKeyParts& parts) {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return unavailable("[coreml] cache folder '", dir_.string(), "': ", ec.message());
  const std::string key = cache_key(pkg, parts);
  const fs::path entry = dir_ / (key + kEntrySuffix);
  if (fs::is_directory(entry)) {
    ++hits_;
    write_stamp(entry, next_stamp(dir_));
    return entry;
  }
  // Compile into a temporary name and rename: a crash never leaves a half-written entry under the key.
  const fs::path pkg_dir = dir_ / ("tmp-" + key + ".mlpackage");
  const fs::path tmp_out = dir_ / ("tmp-" + key + ".compiling");
  fs::remove_all(tmp_out, ec);
  ORCHARD_RETURN_IF_ERROR(write_package(pkg, pkg_dir));
  Status s = compiler_(pkg_dir, tmp_out);
  fs::remove_all(pkg_dir, ec);
  if (!s.ok()) {
    fs::remove_all(tmp_out, ec);
    return s.with_prefix("[coreml] compiling for the cache: ");
  }
  if (!fs::is_directory(tmp_out)) return internal_error("[coreml] the compiler produced no directory at '", tmp_out.string(), "'");
  fs::rename(tmp_out, entry, ec);
  if (ec) return unavailable("[coreml] cache: cannot move the compiled model into place: ", ec.message());
  ++compiles_;
  write_stamp(entry, next_stamp(dir_));
  evict(key);
  return entry;
}

void ModelCache::evict(const std::string& keep) {
  struct Entry {
    fs::path path;
    uint64_t stamp, bytes;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() != kEntrySuffix) continue;
    Entry x{e.path(), read_stamp(e.path()), dir_bytes(e.path())};
    total += x.bytes;
    entries.push_back(std::move(x));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.stamp < b.stamp; });
  for (const auto& e : entries) {
    if (total <= max_bytes_) break;
    if (e.path.stem() == keep) continue;
    fs::remove_all(e.path, ec);
    total -= e.bytes;
  }
}

}  // namespace orchard::coreml
