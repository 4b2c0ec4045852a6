#include "core/file_read.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace orchard {

namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Closes a file descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Opens `path` for reading when it is a regular file (any size); `where` starts the error messages.
Result<RegularFile> open_checked(const std::filesystem::path& path, const std::string& where) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; the file type is checked on the open descriptor
  // (no window between a stat() and the open).
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return not_found(where, "no such file");
    return not_found(where, "cannot open: ", std::strerror(err));
  }
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return not_found(where, "cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return invalid_argument(where, "is ", file_kind(st.st_mode), ", not a regular file");
  // Regular files never block; reads wait for the disk like any other.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  closer.fd = -1;
  return RegularFile(fd, st.st_size);
}

}  // namespace

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<RegularFile> open_regular_file(const std::filesystem::path& path, std::string_view component, uint64_t max_bytes) {
  const std::string where = std::string(component) + " '" + path.string() + "': ";
  ORCHARD_ASSIGN_OR_RETURN(RegularFile file, open_checked(path, where));
  if (static_cast<uint64_t>(file.size()) > max_bytes) {
    return resource_exhausted(where, "reading ", file.size(), " bytes exceeds the limit of ", max_bytes, " bytes");
  }
  return file;
}

Result<std::string> read_regular_file(const std::filesystem::path& path, std::string_view component, uint64_t max_bytes,
                                      int64_t offset, int64_t length) {
  const std::string where = std::string(component) + " '" + path.string() + "': ";
  ORCHARD_ASSIGN_OR_RETURN(RegularFile file, open_checked(path, where));
  const int64_t size = file.size();
  if (offset < 0 || offset > size) return invalid_argument(where, "offset ", offset, " is beyond the end of the file (", size, " bytes)");
  if (length < 0) length = size - offset;
  if (length > size - offset) {  // (offset + length could overflow)
    return invalid_argument(where, length, " bytes at offset ", offset, " are beyond the end of the file (", size, " bytes)");
  }
  if (static_cast<uint64_t>(length) > max_bytes) {
    return resource_exhausted(where, "reading ", length, " bytes exceeds the limit of ", max_bytes, " bytes");
  }
  std::string bytes(static_cast<size_t>(length), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::pread(file.fd(), bytes.data() + done, bytes.size() - done, static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return invalid_argument(where, "read failed: ", std::strerror(errno));
    if (n == 0) return invalid_argument(where, "file shrank while it was read (", done, " of ", bytes.size(), " bytes)");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

}  // namespace orchard
