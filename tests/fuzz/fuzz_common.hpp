// Shared pieces of the libFuzzer targets (tests/fuzz/README.md): session options for one thread, and a
// memory-backed file so that the path-based readers can be fed bytes without touching the disk.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "orchard/session.hpp"

namespace orchard::fuzz {

// Options for loading fuzzed models: one shared single-thread pool, small size caps, external data looked
// up in a folder that does not exist (a fuzzed model must not read files of the machine it runs on).
inline SessionOptions session_options() {
  static const std::shared_ptr<ThreadPool> pool = std::make_shared<ThreadPool>(1);
  SessionOptions o;
  o.thread_pool = pool;
  o.max_model_bytes = 1 << 20;
  o.max_external_data_bytes = 1 << 20;
  return o;
}

inline const char* no_such_folder() { return "/nonexistent/orchard-fuzz"; }

// A regular file in memory (memfd) whose contents are replaced by each input; path() names it.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("orchard-fuzz", MFD_CLOEXEC)) {
    if (fd_ < 0) std::abort();
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;

  // Replaces the contents with `size` bytes at `data`.
  void write(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
  }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace orchard::fuzz
