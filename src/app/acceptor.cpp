#include "app/acceptor.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "runtime/log.hpp"
#include "runtime/log_rate_limit.hpp"
#include "runtime/socket.hpp"

namespace harbor::app {

namespace {

// Sockets taken per readiness event before the loop serves its other descriptors (small,
// so a burst is spread over the shards that are waiting instead of taken by the first).
constexpr int kAcceptBatch = 32;

std::string describe_fd_limit(int err) {
  if (err == ENFILE) return "ENFILE: the system-wide limit fs.file-max is reached";
  rlimit lim{};
  std::string soft = "?";
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) soft = std::to_string(lim.rlim_cur);
  return "EMFILE: the process limit RLIMIT_NOFILE (ulimit -n) of " + soft + " is reached";
}

}  // namespace

Acceptor::Acceptor(int listen_fd, runtime::Shard& shard, broker::BrokerContext& ctx,
                   uint32_t max_connections, const std::string* websocket_path,
                   std::shared_ptr<const runtime::TlsListener> tls)
    : fd_(listen_fd),
      websocket_path_(websocket_path),
      tls_(std::move(tls)),
      shard_(shard),
      loop_(shard.loop()),
      ctx_(ctx),
      max_connections_(max_connections) {
  open_spare();
}

Acceptor::~Acceptor() {
  if (spare_fd_ >= 0) ::close(spare_fd_);
}

void Acceptor::open_spare() {
  if (spare_fd_ < 0) spare_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void Acceptor::start() {
  if (stopped_ || armed_) return;
  loop_.add(fd_, EPOLLIN | EPOLLEXCLUSIVE, this);
  armed_ = true;
}

void Acceptor::stop() {
  stopped_ = true;
  if (resume_timer_ != 0) loop_.cancel_timer(resume_timer_);
  resume_timer_ = 0;
  if (armed_) loop_.remove(fd_);
  armed_ = false;
}

void Acceptor::on_io(uint32_t) {
  if (!armed_) return;  // paused or stopped earlier in this epoll batch
  bool out_of_fds = false;
  for (int i = 0; i < kAcceptBatch; ++i) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    int c =
        ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      end_fd_burst();
      backoff_ms_ = 0;
      keep_or_refuse(c, peer);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) break;
    // The pending connection died before we took it: go on with the next one.
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EMFILE || err == ENFILE) {
      out_of_fds = true;
      note_fd_limit(err);
      if (shed_one()) continue;
      break;
    }
    runtime::log_limited(runtime::LogLevel::Warn, "accept",
                         std::string("accept: ") + std::strerror(err) +
                             "; not accepting for a while (backing off up to " +
                             std::to_string(kMaxBackoffMs) + " ms)");
    pause();
    return;
  }
  // Whatever arrives during the pause waits in the backlog for descriptors to free up; what
  // is still pending then and cannot be taken is shed on the next attempt.
  if (out_of_fds) pause();
}

void Acceptor::keep_or_refuse(int c, const sockaddr_storage& peer) {
  const uint32_t max = max_connections_;
  // Taken before the check so that acceptors on several shards cannot overshoot together.
  const int64_t open = ctx_.stats.sockets_open.fetch_add(1, std::memory_order_relaxed);
  if (max != 0 && open >= static_cast<int64_t>(max)) {
    ctx_.stats.sockets_open.fetch_sub(1, std::memory_order_relaxed);
    ::close(c);
    uint64_t total = ctx_.stats.refused_max_connections.fetch_add(1, std::memory_order_relaxed) + 1;
    runtime::log_limited(
        runtime::LogLevel::Warn, "max_connections",
        "refusing a new connection: mqtt.max_connections = " + std::to_string(max) + " reached (" +
            std::to_string(open) + " open); the socket is closed at once (" +
            std::to_string(total) + " refused so far)");
    return;
  }
  // The listener has TCP_NODELAY, and Linux hands it on to accepted sockets: checked on the
  // first one, set on each only where it is not inherited.
  if (nodelay_inherited_ < 0) nodelay_inherited_ = runtime::has_nodelay(c) ? 1 : 0;
  if (nodelay_inherited_ == 0) runtime::set_nodelay(c);
  // Clients send CONNECT right behind the handshake: it is mostly there already, and read
  // at the end of this loop iteration instead of after another trip through epoll.
  shard_.adopt_socket_here(c, runtime::format_address(peer), /*read_now=*/true, websocket_path_,
                           tls_);
}

bool Acceptor::shed_one() {
  if (spare_fd_ < 0) return false;
  ::close(spare_fd_);
  spare_fd_ = -1;
  int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  bool shed = c >= 0;
  if (shed) {
    ::close(c);
    ctx_.stats.refused_fd_limit.fetch_add(1, std::memory_order_relaxed);
    ++burst_refused_;
  }
  // Another thread may have taken the freed slot; then the next pause tries again.
  open_spare();
  return shed;
}

void Acceptor::note_fd_limit(int err) {
  if (in_fd_burst_) return;
  in_fd_burst_ = true;
  burst_refused_ = 0;
  runtime::log_limited(
      runtime::LogLevel::Warn, "accept: out of file descriptors",
      "accept: out of file descriptors (" + describe_fd_limit(err) + ", " +
          std::to_string(ctx_.stats.sockets_open.load(std::memory_order_relaxed)) +
          " client sockets open): new connections are closed until descriptors free up; "
          "raise the limit (ulimit -n, systemd LimitNOFILE) or set mqtt.max_connections below it");
}

void Acceptor::end_fd_burst() {
  if (!in_fd_burst_) return;
  in_fd_burst_ = false;
  runtime::log_limited(runtime::LogLevel::Info, "accept: file descriptors available",
                       "accept: file descriptors available again; " +
                           std::to_string(burst_refused_) +
                           " connections were closed while out of descriptors");
}

void Acceptor::pause() {
  if (stopped_ || !armed_) return;
  loop_.remove(fd_);
  armed_ = false;
  backoff_ms_ = backoff_ms_ == 0 ? kMinBackoffMs : std::min(backoff_ms_ * 2, kMaxBackoffMs);
  resume_timer_ = loop_.add_timer_after(backoff_ms_, [this] {
    resume_timer_ = 0;
    resume();
  });
}

void Acceptor::resume() {
  if (stopped_) return;
  open_spare();
  start();
}

}  // namespace harbor::app
