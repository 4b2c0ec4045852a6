// Reading files named by untrusted input (model files, external data, tensor files): only regular files
// are read, never FIFOs, devices or folders; sizes are checked against a cap before any byte is read.
// Layer: core (depends on include/orchard only). No exceptions escape.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>

#include "orchard/status.hpp"

namespace orchard {

// Returns the bytes [offset, offset + length) of the regular file at `path` (length -1: to the end).
// Errors (messages start with `component`, name the path): not_found when it does not exist,
// invalid_argument when it is a folder, FIFO, device or socket, or the range is past its end,
// resource_exhausted when the bytes to read exceed `max_bytes`.
Result<std::string> read_regular_file(const std::filesystem::path& path, std::string_view component, uint64_t max_bytes,
                                      int64_t offset = 0, int64_t length = -1);

// An open regular file, closed when this goes out of scope.
class RegularFile {
 public:
  RegularFile(int fd, int64_t size) : fd_(fd), size_(size) {}
  RegularFile(RegularFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)), size_(other.size_) {}
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  RegularFile& operator=(RegularFile&&) = delete;
  ~RegularFile();
  int fd() const { return fd_; }
  int64_t size() const { return size_; }

 private:
  int fd_;
  int64_t size_;
};

// Opens the regular file at `path` for reading, with read_regular_file's checks and errors (the whole file
// must fit in `max_bytes`), for readers that stream it rather than hold all its bytes.
Result<RegularFile> open_regular_file(const std::filesystem::path& path, std::string_view component, uint64_t max_bytes);

}  // namespace orchard
