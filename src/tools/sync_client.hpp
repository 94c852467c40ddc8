// A blocking MQTT client for the single-connection tools (pub, sub): one thread, poll()
// with deadlines, keep-alive pings while waiting. Every failure is a ToolError carrying
// the process exit code and a message for stderr.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <tl/expected.hpp>

#include "mqtt/protocol.hpp"
#include "runtime/event_loop.hpp"
#include "tools/client_stream.hpp"
#include "tools/exit_codes.hpp"
#include "tools/options.hpp"

namespace harbor::tools {

struct ToolError {
  int code = kExitProtocol;
  std::string message;
};

template <class T>
using ToolResult = tl::expected<T, ToolError>;

// The process exit code for a finished tool run; prints the error to stderr.
int exit_code(const ToolResult<void>& result);

// The CONNECT packet the options describe.
mqtt::Connect make_connect(const ConnectOptions& o, std::string client_id);
// "NotAuthorized (0x87)".
std::string describe(mqtt::ReasonCode rc);
// One-line rendering of a packet for -d / -vv output.
std::string describe_packet(const mqtt::Packet& p);
std::string describe_properties(const mqtt::Properties& props);

class SyncClient {
 public:
  SyncClient(const ConnectOptions& options, bool debug);
  ~SyncClient();
  SyncClient(const SyncClient&) = delete;
  SyncClient& operator=(const SyncClient&) = delete;

  // TCP (or --unix) connect, CONNECT, wait for CONNACK; an error CONNACK is kExitConnackRefused.
  ToolResult<mqtt::Connack> connect(const std::string& client_id);
  ToolResult<void> send(const mqtt::Packet& p);
  // The next packet, or std::nullopt when `timeout_ms` passes first (-1 = no limit).
  // Sends PINGREQ when the connection has been quiet for the keep-alive interval.
  ToolResult<std::optional<mqtt::Packet>> receive(int timeout_ms);
  // Waits for a packet matching `want` (other packets go to `other`), up to the timeout.
  template <class Pred, class Other>
  ToolResult<mqtt::Packet> wait_for(Pred want, Other other, const char* what);
  // Sends DISCONNECT (with the -D disconnect properties in 5.0) and closes.
  void disconnect();
  uint16_t next_packet_id();
  mqtt::Version version() const { return options_.version; }
  // The CONNACK of connect() (the broker's limits: topic alias maximum, ...).
  const mqtt::Connack& connack() const { return connack_; }

 private:
  ToolResult<void> flush();
  // Bytes read from the socket: through the stream's filters (if any) into the decoder.
  ToolResult<void> take_input(std::string_view bytes);

  ConnectOptions options_;
  bool debug_;
  int fd_ = -1;
  mqtt::ClientProtocol protocol_;
  std::optional<ClientStream> stream_;  // TLS / WebSocket; none for plain TCP
  std::string mqtt_in_;                 // one read's MQTT bytes, with a stream
  std::string out_;
  int64_t last_send_ms_ = 0;
  uint16_t packet_id_ = 0;
  mqtt::Connack connack_;
};

template <class Pred, class Other>
ToolResult<mqtt::Packet> SyncClient::wait_for(Pred want, Other other, const char* what) {
  auto timeout_ms = static_cast<int>(options_.timeout_s * 1000);
  int64_t deadline = runtime::EventLoop::steady_ms() + timeout_ms;
  for (;;) {
    int64_t left = deadline - runtime::EventLoop::steady_ms();
    if (left <= 0) return tl::unexpected(ToolError{kExitTimeout, std::string("timed out waiting for ") + what});
    auto p = receive(static_cast<int>(left));
    if (!p) return tl::unexpected(p.error());
    if (!*p) continue;
    if (want(**p)) return std::move(**p);
    other(**p);
  }
}

}  // namespace harbor::tools
