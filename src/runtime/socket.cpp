#include "runtime/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace harbor::runtime {

namespace {

std::string errno_text(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

tl::expected<addrinfo*, std::string> resolve(const HostPort& where, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = std::to_string(where.port);
  int rc =
      getaddrinfo(where.host.empty() ? nullptr : where.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return tl::unexpected("cannot resolve '" + where.host + "': " + gai_strerror(rc));
  return res;
}

}  // namespace

tl::expected<HostPort, std::string> parse_host_port(std::string_view text) {
  HostPort hp;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return tl::unexpected("bad address '" + std::string(text) + "': expected [v6]:port");
    hp.host = std::string(text.substr(1, close - 1));
    port_text = text.substr(close + 2);
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    hp.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
  } else {
    port_text = text;
  }
  if (hp.host.empty()) hp.host = "0.0.0.0";
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535)
    return tl::unexpected("bad port in '" + std::string(text) + "'");
  hp.port = static_cast<uint16_t>(port);
  return hp;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool has_nodelay(int fd) {
  int value = 0;
  socklen_t len = sizeof value;
  return getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &len) == 0 && value != 0;
}

std::string format_address(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
  }
  return "unknown";
}

std::string peer_address(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "unknown";
  return format_address(addr);
}

tl::expected<int, std::string> listen_tcp(const HostPort& where, int backlog) {
  auto res = resolve(where, true);
  if (!res) return tl::unexpected(res.error());
  std::string last_error = "no address";
  for (addrinfo* ai = *res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      last_error = errno_text("socket");
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
      freeaddrinfo(*res);
      return fd;
    }
    last_error = errno_text("bind/listen");
    close(fd);
  }
  freeaddrinfo(*res);
  return tl::unexpected("cannot listen on " + where.host + ":" + std::to_string(where.port) + ": " +
                        last_error);
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

tl::expected<int, std::string> connect_tcp_nonblocking(const HostPort& where) {
  auto res = resolve(where, false);
  if (!res) return tl::unexpected(res.error());
  addrinfo* ai = *res;
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) {
    freeaddrinfo(*res);
    return tl::unexpected(errno_text("socket"));
  }
  set_nodelay(fd);
  int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
  freeaddrinfo(*res);
  if (rc != 0 && errno != EINPROGRESS) {
    std::string err = errno_text("connect");
    close(fd);
    return tl::unexpected(err);
  }
  return fd;
}

int connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

tl::expected<int, std::string> connect_tcp_blocking(const HostPort& where, int timeout_ms) {
  auto fd = connect_tcp_nonblocking(where);
  if (!fd) return fd;
  pollfd pfd{*fd, POLLOUT, 0};
  int rc = poll(&pfd, 1, timeout_ms);
  if (rc <= 0) {
    close(*fd);
    return tl::unexpected("connect to " + where.host + ":" + std::to_string(where.port) +
                          (rc == 0 ? ": timed out" : ": poll failed"));
  }
  if (int err = connect_result(*fd); err != 0) {
    close(*fd);
    return tl::unexpected("connect to " + where.host + ":" + std::to_string(where.port) + ": " +
                          std::strerror(err));
  }
  int flags = fcntl(*fd, F_GETFL, 0);
  fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace harbor::runtime
