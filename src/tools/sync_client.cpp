#include "tools/sync_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "runtime/socket.hpp"

namespace harbor::tools {

namespace {
int64_t now_ms() { return runtime::EventLoop::steady_ms(); }

// A blocking stream connection to a Unix-domain socket; connect() on it does not wait for
// the peer to accept, so no timeout is needed.
tl::expected<int, std::string> connect_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return tl::unexpected("unix socket path is longer than " + std::to_string(sizeof addr.sun_path - 1) +
                          " bytes: " + path);
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return tl::unexpected(std::string("socket: ") + std::strerror(errno));
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected("connect to unix socket " + path + ": " + std::strerror(err));
  }
  return fd;
}

std::string printable(std::string_view s, size_t limit = 64) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7F) {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > limit) out += "...";
  return out;
}
}  // namespace

std::string describe(mqtt::ReasonCode rc) {
  char buf[16];
  std::snprintf(buf, sizeof buf, " (0x%02x)", static_cast<unsigned>(rc));
  return std::string(mqtt::to_string(rc)) + buf;
}

std::string describe_properties(const mqtt::Properties& p) {
  std::ostringstream os;
  auto sep = [&os, first = true]() mutable {
    if (!first) os << ' ';
    first = false;
  };
  if (p.payload_format_indicator) sep(), os << "payload-format=" << int(*p.payload_format_indicator);
  if (p.message_expiry_interval) sep(), os << "message-expiry=" << *p.message_expiry_interval;
  if (p.content_type) sep(), os << "content-type=" << *p.content_type;
  if (p.response_topic) sep(), os << "response-topic=" << *p.response_topic;
  if (p.correlation_data) sep(), os << "correlation-data=" << printable(*p.correlation_data);
  for (auto id : p.subscription_identifiers) sep(), os << "subscription-id=" << id;
  if (p.session_expiry_interval) sep(), os << "session-expiry=" << *p.session_expiry_interval;
  if (p.assigned_client_identifier) sep(), os << "assigned-client-id=" << *p.assigned_client_identifier;
  if (p.server_keep_alive) sep(), os << "server-keep-alive=" << *p.server_keep_alive;
  if (p.reason_string) sep(), os << "reason-string=\"" << *p.reason_string << '"';
  if (p.receive_maximum) sep(), os << "receive-maximum=" << *p.receive_maximum;
  if (p.topic_alias_maximum) sep(), os << "topic-alias-maximum=" << *p.topic_alias_maximum;
  if (p.topic_alias) sep(), os << "topic-alias=" << *p.topic_alias;
  if (p.maximum_qos) sep(), os << "maximum-qos=" << int(*p.maximum_qos);
  if (p.retain_available) sep(), os << "retain-available=" << int(*p.retain_available);
  if (p.maximum_packet_size) sep(), os << "maximum-packet-size=" << *p.maximum_packet_size;
  if (p.server_reference) sep(), os << "server-reference=" << *p.server_reference;
  for (const auto& [k, v] : p.user_properties) sep(), os << "user-property:" << k << '=' << v;
  return os.str();
}

std::string describe_packet(const mqtt::Packet& packet) {
  std::ostringstream os;
  os << mqtt::to_string(mqtt::packet_type(packet));
  std::visit(
      [&os](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, mqtt::Connect>) {
          os << " id=" << p.client_id << " clean=" << p.clean_start << " keepalive=" << p.keep_alive;
        } else if constexpr (std::is_same_v<T, mqtt::Connack>) {
          os << " session-present=" << p.session_present << " reason=" << describe(p.reason);
        } else if constexpr (std::is_same_v<T, mqtt::Publish>) {
          os << " topic=" << p.topic << " qos=" << int(p.qos) << " retain=" << p.retain << " dup=" << p.dup;
          if (p.qos) os << " mid=" << p.packet_id;
          os << " bytes=" << p.payload.size();
        } else if constexpr (std::is_same_v<T, mqtt::PubAck>) {
          os << " mid=" << p.packet_id << " reason=" << describe(p.reason);
        } else if constexpr (std::is_same_v<T, mqtt::Subscribe>) {
          os << " mid=" << p.packet_id;
          for (const auto& t : p.topics) os << ' ' << t.filter << ":q" << int(t.qos);
        } else if constexpr (std::is_same_v<T, mqtt::Suback>) {
          os << " mid=" << p.packet_id;
          for (auto r : p.reasons) os << ' ' << describe(r);
        } else if constexpr (std::is_same_v<T, mqtt::Disconnect>) {
          os << " reason=" << describe(p.reason);
        }
        if constexpr (requires { p.props; }) {
          std::string props = describe_properties(p.props);
          if (!props.empty()) os << " [" << props << ']';
        }
      },
      packet);
  return os.str();
}

mqtt::Connect make_connect(const ConnectOptions& o, std::string client_id) {
  mqtt::Connect c;
  c.version = o.version;
  if (o.version == mqtt::Version::v31) c.protocol_name = "MQIsdp";
  c.clean_start = o.clean_start;
  c.keep_alive = o.keepalive;
  c.client_id = std::move(client_id);
  c.username = o.username;
  c.password = o.password;
  if (!o.will_topic.empty()) {
    mqtt::Will w;
    w.topic = o.will_topic;
    w.payload = o.will_payload;
    w.qos = static_cast<mqtt::QoS>(o.will_qos);
    w.retain = o.will_retain;
    if (o.version == mqtt::Version::v5) w.props = o.props.will;
    c.will = std::move(w);
  }
  if (o.version == mqtt::Version::v5) {
    c.props = o.props.connect;  // -D connect, -x and --connect-property (finalize merged them)
  }
  return c;
}

SyncClient::SyncClient(const ConnectOptions& options, bool debug)
    : options_(options), debug_(debug), protocol_(options.version) {}

SyncClient::~SyncClient() {
  if (fd_ >= 0) close(fd_);
}

uint16_t SyncClient::next_packet_id() {
  if (++packet_id_ == 0) packet_id_ = 1;
  return packet_id_;
}

ToolResult<mqtt::Connack> SyncClient::connect(const std::string& client_id) {
  auto timeout_ms = static_cast<int>(options_.timeout_s * 1000);
  runtime::HostPort where{options_.host, options_.port};
  auto fd = options_.unix_path.empty() ? runtime::connect_tcp_blocking(where, timeout_ms)
                                       : connect_unix(options_.unix_path);
  if (!fd) {
    bool timed_out = fd.error().find("timed out") != std::string::npos;
    return tl::unexpected(ToolError{timed_out ? kExitTimeout : kExitConnectFailed, fd.error()});
  }
  fd_ = *fd;
  if (options_.stream.any()) {
    stream_.emplace(options_.stream);
    stream_->start(out_);
  }
  if (auto r = send(make_connect(options_, client_id)); !r) return tl::unexpected(r.error());
  auto p = wait_for([](const mqtt::Packet& p) { return std::holds_alternative<mqtt::Connack>(p); },
                    [](const mqtt::Packet&) {}, "CONNACK");
  if (!p) return tl::unexpected(p.error());
  auto& ack = std::get<mqtt::Connack>(*p);
  if (mqtt::is_error(ack.reason) || ack.reason != mqtt::ReasonCode::Success) {
    std::string msg = "connection refused by broker: CONNACK " + describe(ack.reason);
    if (ack.props.reason_string) msg += ": " + *ack.props.reason_string;
    return tl::unexpected(ToolError{kExitConnackRefused, msg});
  }
  connack_ = ack;
  return ack;
}

ToolResult<void> SyncClient::send(const mqtt::Packet& p) {
  if (debug_) std::fprintf(stderr, "-> %s\n", describe_packet(p).c_str());
  if (!stream_) {
    protocol_.encode(p, out_);
    return flush();
  }
  std::string mqtt;
  protocol_.encode(p, mqtt);
  if (!stream_->write(mqtt, out_))
    return tl::unexpected(
        ToolError{kExitProtocol, std::string("connection lost: TLS session closed")});
  return flush();
}

ToolResult<void> SyncClient::take_input(std::string_view bytes) {
  mqtt_in_.clear();
  auto r = stream_->read(bytes, mqtt_in_, out_);
  // Handshake flights and replies first, so a failed handshake's alert reaches the broker.
  if (!out_.empty()) {
    if (auto f = flush(); !f) return f;
  }
  if (!r) return tl::unexpected(ToolError{kExitProtocol, r.error()});
  if (!mqtt_in_.empty()) {
    auto buf = protocol_.prepare(mqtt_in_.size());
    std::memcpy(buf.data(), mqtt_in_.data(), mqtt_in_.size());
    protocol_.commit(mqtt_in_.size());
  }
  return {};
}

ToolResult<void> SyncClient::flush() {
  size_t off = 0;
  while (off < out_.size()) {
    ssize_t n = ::send(fd_, out_.data() + off, out_.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      out_.clear();
      return tl::unexpected(ToolError{kExitProtocol, std::string("connection lost: ") + std::strerror(errno)});
    }
    off += static_cast<size_t>(n);
  }
  out_.clear();
  last_send_ms_ = now_ms();
  return {};
}

ToolResult<std::optional<mqtt::Packet>> SyncClient::receive(int timeout_ms) {
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms() + timeout_ms;
  for (;;) {
    auto next = protocol_.next();
    if (!next) {
      return tl::unexpected(ToolError{kExitProtocol, "protocol error from broker: " + next.error().message +
                                                         " (" + describe(next.error().reason) + ")"});
    }
    if (*next) {
      if (debug_) std::fprintf(stderr, "<- %s\n", describe_packet(**next).c_str());
      if (auto* d = std::get_if<mqtt::Disconnect>(&**next)) {
        std::string msg = "broker sent DISCONNECT " + describe(d->reason);
        if (d->props.reason_string) msg += ": " + *d->props.reason_string;
        return tl::unexpected(ToolError{kExitProtocol, msg});
      }
      if (std::holds_alternative<mqtt::Pingresp>(**next)) continue;
      return std::move(*next);
    }
    int64_t now = now_ms();
    if (now >= deadline) return std::optional<mqtt::Packet>{};
    int64_t wait = deadline - now;
    if (options_.keepalive > 0) {
      int64_t ping_at = last_send_ms_ + int64_t{options_.keepalive} * 1000;
      if (now >= ping_at) {
        if (auto r = send(mqtt::Pingreq{}); !r) return tl::unexpected(r.error());
        continue;
      }
      wait = std::min(wait, ping_at - now);
    }
    pollfd pfd{fd_, POLLIN, 0};
    int rc = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(wait, 1'000'000)));
    if (rc < 0 && errno != EINTR)
      return tl::unexpected(ToolError{kExitProtocol, std::string("poll: ") + std::strerror(errno)});
    if (rc <= 0) continue;
    // With a stream, the socket's bytes are read aside and filtered into the decoder.
    std::array<uint8_t, 16 * 1024> raw;
    auto buf = stream_ ? std::span<uint8_t>(raw) : protocol_.prepare(4096);
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n == 0) return tl::unexpected(ToolError{kExitProtocol, "connection closed by broker"});
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return tl::unexpected(ToolError{kExitProtocol, std::string("connection lost: ") + std::strerror(errno)});
    }
    if (!stream_) {
      protocol_.commit(static_cast<size_t>(n));
    } else if (auto r = take_input(std::string_view(reinterpret_cast<const char*>(raw.data()),
                                                    static_cast<size_t>(n)));
               !r) {
      return tl::unexpected(r.error());
    }
  }
}

void SyncClient::disconnect() {
  if (fd_ < 0) return;
  mqtt::Disconnect d;
  if (options_.version == mqtt::Version::v5) d.props = options_.props.disconnect;
  (void)send(d);
  shutdown(fd_, SHUT_WR);
  close(fd_);
  fd_ = -1;
}

int exit_code(const ToolResult<void>& result) {
  if (result) return kExitOk;
  std::fprintf(stderr, "Error: %s\n", result.error().message.c_str());
  return result.error().code;
}

}  // namespace harbor::tools
