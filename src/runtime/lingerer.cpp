#include "runtime/lingerer.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace harbor::runtime {

Lingerer::~Lingerer() {
  for (auto& [fd, e] : entries_)
    if (e->fd >= 0) ::close(e->fd);  // the loop is gone or going: no epoll removal needed
}

void Lingerer::add(int fd, int64_t now_ms) {
  ::shutdown(fd, SHUT_WR);  // our FIN goes after what is already in the send buffer
  if (entries_.size() >= limits_.max_lingering) {
    ::close(fd);
    return;
  }
  auto e = std::make_unique<Entry>();
  e->owner = this;
  e->fd = fd;
  e->deadline_ms = now_ms + limits_.linger_ms;
  Entry* raw = e.get();
  entries_[fd] = std::move(e);
  loop_.add(fd, EPOLLIN | EPOLLRDHUP, raw);
}

void Lingerer::Entry::on_io(uint32_t) {
  if (fd < 0) return;
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      discarded += static_cast<size_t>(n);
      if (discarded >= owner->limits_.linger_bytes) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // more may come
    break;  // the peer closed (0) or the socket failed
  }
  owner->finish(*this);
}

void Lingerer::finish(Entry& e) {
  loop_.remove(e.fd);
  ::close(e.fd);
  finished_.push_back(e.fd);
  e.fd = -1;
}

void Lingerer::sweep(int64_t now_ms) {
  for (int fd : finished_) {
    auto it = entries_.find(fd);
    // The descriptor number may already belong to a newer lingering socket: only a finished
    // entry (fd -1) is freed.
    if (it != entries_.end() && it->second->fd < 0) entries_.erase(it);
  }
  finished_.clear();
  for (auto it = entries_.begin(); it != entries_.end();) {
    Entry& e = *it->second;
    if (e.fd >= 0 && now_ms >= e.deadline_ms) {
      loop_.remove(e.fd);
      ::close(e.fd);
      it = entries_.erase(it);
      continue;
    }
    ++it;
  }
}

}  // namespace harbor::runtime
