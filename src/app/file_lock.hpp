// An exclusive POSIX record lock on a file, held for the life of the object: one broker per
// data directory (DATA/harbormq.lock) and per pid file. The file holds the holder's pid.
// The kernel drops the lock when the process ends, however it ends (kill -9 included), so a
// stale file never blocks a start. Main thread only.
//
// POSIX record locks belong to the process and are released when the process closes *any*
// descriptor of the file: nothing else in the broker may open a locked file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include <tl/expected.hpp>

namespace harbor::app {

class FileLock {
 public:
  struct Refused {
    pid_t holder = 0;     // the process holding the lock, when it is the reason
    std::string message;  // what went wrong (errno text, or "held by pid N")
  };

  // Creates `path` if missing (mode 0644), locks it without waiting and writes our pid.
  static tl::expected<FileLock, Refused> acquire(const std::string& path);
  // The pid of the process holding a lock on `path`, if any (a missing file: none).
  static std::optional<pid_t> holder(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  const std::string& path() const { return path_; }
  // Removes the file, then releases the lock (clean shutdown).
  void remove();

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
};

}  // namespace harbor::app
