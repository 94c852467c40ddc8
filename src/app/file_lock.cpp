#include "app/file_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace harbor::app {
namespace {

flock whole_file(short type) {
  flock lk{};
  lk.l_type = type;
  lk.l_whence = SEEK_SET;
  lk.l_start = 0;
  lk.l_len = 0;
  return lk;
}

}  // namespace

tl::expected<FileLock, FileLock::Refused> FileLock::acquire(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return tl::unexpected(Refused{0, std::strerror(errno)});
  flock lk = whole_file(F_WRLCK);
  if (::fcntl(fd, F_SETLK, &lk) != 0) {
    int err = errno;
    flock probe = whole_file(F_WRLCK);
    pid_t holder = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK ? probe.l_pid : 0;
    ::close(fd);
    if (err == EACCES || err == EAGAIN) {
      return tl::unexpected(Refused{holder, "held by pid " + std::to_string(holder)});
    }
    return tl::unexpected(Refused{0, std::strerror(err)});
  }
  std::string text = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) !=
                                     static_cast<ssize_t>(text.size())) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(Refused{0, std::string("cannot write: ") + std::strerror(err)});
  }
  return FileLock(path, fd);
}

std::optional<pid_t> FileLock::holder(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  flock probe = whole_file(F_WRLCK);
  std::optional<pid_t> out;
  if (::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK) out = probe.l_pid;
  ::close(fd);
  return out;
}

FileLock::FileLock(FileLock&& other) noexcept : path_(std::move(other.path_)), fd_(other.fd_) {
  other.fd_ = -1;
}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

void FileLock::remove() {
  if (fd_ < 0) return;
  ::unlink(path_.c_str());
  ::close(fd_);
  fd_ = -1;
}

}  // namespace harbor::app
