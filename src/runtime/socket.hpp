// Small POSIX socket helpers shared by the broker's listeners and the client tools.
// Any thread; every function is a thin wrapper with errors as values.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

namespace harbor::runtime {

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port", "[v6]:port" or ":port"/"port" (host = 0.0.0.0).
tl::expected<HostPort, std::string> parse_host_port(std::string_view text);

// Non-blocking, close-on-exec listening TCP socket with SO_REUSEADDR.
tl::expected<int, std::string> listen_tcp(const HostPort& where, int backlog = 4096);
// Port a bound socket actually listens on (for port 0).
uint16_t local_port(int fd);

// Non-blocking connect; the connection completes when the fd becomes writable
// (check with connect_result). TCP_NODELAY is set.
tl::expected<int, std::string> connect_tcp_nonblocking(const HostPort& where);
// 0 when connected, else the errno of the failed connect.
int connect_result(int fd);
// Blocking connect with a timeout, for simple tools; the returned fd is blocking.
tl::expected<int, std::string> connect_tcp_blocking(const HostPort& where, int timeout_ms);

void set_nonblocking(int fd);
void set_nodelay(int fd);
bool has_nodelay(int fd);
// "127.0.0.1:50544", "[::1]:50544"; "unknown" for another family.
std::string format_address(const sockaddr_storage& addr);
// The peer of a connected socket, formatted; "unknown" when it has none any more.
std::string peer_address(int fd);

}  // namespace harbor::runtime
