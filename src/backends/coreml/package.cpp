#include "backends/coreml/package.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>

#include <nlohmann/json.hpp>

namespace orchard::coreml {

namespace fs = std::filesystem;

namespace {

// Returns a UUID-shaped (8-4-4-4-12, upper-case hex, version nibble 4) identifier from two hashes.
std::string uuid_from(uint64_t a, uint64_t b) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08X-%04X-4%03X-%04X-%012llX", static_cast<unsigned>(a >> 32), static_cast<unsigned>((a >> 16) & 0xffff),
                static_cast<unsigned>(a & 0xfff), static_cast<unsigned>(((b >> 48) & 0x3fff) | 0x8000),
                static_cast<unsigned long long>(b & 0xffffffffffffull));
  return buf;
}

Status write_file(const fs::path& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return unavailable("[coreml] cannot create '", path.string(), "'");
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f) return unavailable("[coreml] cannot write '", path.string(), "'");
  return Status::OK();
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("[coreml] cannot open '", path.string(), "'");
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

uint64_t fnv1a64(const void* bytes, size_t size, uint64_t seed) {
  uint64_t h = seed;
  const auto* p = static_cast<const unsigned char*>(bytes);
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

std::string manifest_json(const std::string& content_key) {
  const uint64_t h = fnv1a64(content_key.data(), content_key.size());
  const std::string model_id = uuid_from(h, fnv1a64("model", 5, h));
  const std::string weights_id = uuid_from(fnv1a64("weights", 7, h), fnv1a64("w", 1, h));
  nlohmann::ordered_json j;
  j["fileFormatVersion"] = "1.0.0";
  auto& items = j["itemInfoEntries"];
  items[weights_id] = {{"author", kPackageAuthor}, {"description", "CoreML Model Weights"}, {"name", kWeightsItemName},
                       {"path", std::string(kPackageAuthor) + "/" + kWeightsItemName}};
  items[model_id] = {{"author", kPackageAuthor}, {"description", "CoreML Model Specification"}, {"name", kModelItemName},
                     {"path", std::string(kPackageAuthor) + "/" + kModelItemName}};
  j["rootModelIdentifier"] = model_id;
  return j.dump(4) + "\n";
}

Status write_package(const Package& pkg, const fs::path& dir) {
  if (dir.extension() != ".mlpackage") return invalid_argument("[coreml] package path '", dir.string(), "' must end in .mlpackage");
  std::error_code ec;
  fs::remove_all(dir, ec);
  const fs::path data = dir / "Data" / kPackageAuthor;
  fs::create_directories(data / kWeightsItemName, ec);
  if (ec) return unavailable("[coreml] cannot create '", (data / kWeightsItemName).string(), "': ", ec.message());
  ORCHARD_RETURN_IF_ERROR(write_file(data / kModelItemName, pkg.model.data(), pkg.model.size()));
  ORCHARD_RETURN_IF_ERROR(write_file(data / kWeightsItemName / kWeightFileName, pkg.weights.data(), pkg.weights.size()));
  std::string key = pkg.model;
  key.append(reinterpret_cast<const char*>(pkg.weights.data()), pkg.weights.size());
  const std::string manifest = manifest_json(key);
  return write_file(dir / "Manifest.json", manifest.data(), manifest.size());
}

Result<Package> read_package(const fs::path& dir) {
  const std::string where = "[coreml] package '" + dir.string() + "': ";
  auto text = read_file(dir / "Manifest.json");
  if (!text.ok()) return text.status().with_prefix(where);
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return invalid_argument(where, "Manifest.json is not a JSON object");
  auto str = [&](const nlohmann::json& o, const char* key) -> std::string {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string version = str(j, "fileFormatVersion");
  int major = -1, minor = -1, patch = -1;
  if (std::sscanf(version.c_str(), "%d.%d.%d", &major, &minor, &patch) != 3 || major != 1 || minor != 0 || patch != 0) {
    return invalid_argument(where, "fileFormatVersion '", version, "' is not 1.0.0");
  }
  auto items = j.find("itemInfoEntries");
  if (items == j.end() || !items->is_object()) return invalid_argument(where, "no itemInfoEntries object");
  const std::string root = str(j, "rootModelIdentifier");
  fs::path model_path;
  for (auto it = items->begin(); it != items->end(); ++it) {
    for (const char* key : {"path", "name", "author", "description"}) {
      if (str(it.value(), key).empty()) return invalid_argument(where, "item '", it.key(), "' has no '", key, "'");
    }
    const std::string rel = str(it.value(), "path");
    if (rel.find("..") != std::string::npos || rel.front() == '/') return invalid_argument(where, "item path '", rel, "' leaves Data/");
    const fs::path p = dir / "Data" / rel;
    if (!fs::exists(p)) return not_found(where, "item '", it.key(), "' path Data/", rel, " does not exist");
    if (it.key() == root) model_path = p;
  }
  if (model_path.empty()) return invalid_argument(where, "rootModelIdentifier '", root, "' names no item");
  if (!fs::is_regular_file(model_path)) return invalid_argument(where, "root item ", model_path.string(), " is not a file");
  Package pkg;
  ORCHARD_ASSIGN_OR_RETURN(pkg.model, read_file(model_path));
  // The program finds its weights relative to the model file's folder, whatever the manifest lists.
  const fs::path weights = model_path.parent_path() / kWeightsItemName / kWeightFileName;
  if (fs::exists(weights)) {
    ORCHARD_ASSIGN_OR_RETURN(std::string w, read_file(weights));
    pkg.weights.resize(w.size());
    if (!w.empty()) std::memcpy(pkg.weights.data(), w.data(), w.size());
  }
  return pkg;
}

}  // namespace orchard::coreml
