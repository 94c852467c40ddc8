#include "tools/client_stream.hpp"

#include <array>
#include <cstring>

namespace harbor::tools {

ClientStream::ClientStream(const StreamOptions& options)
    : ws_path_(options.ws_path), ws_host_(options.ws_host), random_(std::random_device{}()) {
  if (options.tls) tls_.emplace(options.tls);
  if (!ws_path_.empty()) ws_ = WsPhase::Upgrading;
}

wire::MaskKey ClientStream::next_mask() {
  const uint64_t r = random_();
  wire::MaskKey key;
  std::memcpy(key.data(), &r, key.size());
  return key;
}

bool ClientStream::send_raw(std::string_view bytes, std::string& wire_out) {
  if (!tls_) {
    wire_out += bytes;
    return true;
  }
  return tls_->write(bytes, wire_out);
}

void ClientStream::start(std::string& wire_out) {
  if (tls_) tls_->start(wire_out);
  if (ws_ != WsPhase::Upgrading) return;
  std::array<uint8_t, 16> nonce;
  for (size_t i = 0; i < nonce.size(); i += 8) {
    const uint64_t r = random_();
    std::memcpy(nonce.data() + i, &r, 8);
  }
  const std::string key = wire::websocket_client_key(nonce);
  upgrade_.emplace(key);
  send_raw(wire::websocket_upgrade_request(ws_host_, ws_path_, key), wire_out);
}

void ClientStream::frame(std::string_view mqtt, std::string& wire_out) {
  if (!tls_) {
    wire::append_masked_frame(wire_out, wire::Opcode::Binary, mqtt, next_mask());
    return;
  }
  std::string framed;
  wire::append_masked_frame(framed, wire::Opcode::Binary, mqtt, next_mask());
  tls_->write(framed, wire_out);
}

bool ClientStream::write(std::string_view mqtt, std::string& wire_out) {
  if (tls_ && tls_->state() != wire::TlsState::Handshaking && !tls_->established()) return false;
  switch (ws_) {
    case WsPhase::None:
      return send_raw(mqtt, wire_out);
    case WsPhase::Upgrading:
      held_ += mqtt;
      return true;
    case WsPhase::Open:
      frame(mqtt, wire_out);
      return true;
  }
  return false;
}

tl::expected<void, std::string> ClientStream::read(std::string_view wire_in, std::string& mqtt_out,
                                                   std::string& wire_out) {
  if (!tls_) {
    if (ws_ != WsPhase::None) return read_ws(wire_in, mqtt_out, wire_out);
    mqtt_out += wire_in;
    return {};
  }
  plain_.clear();
  const auto state = tls_->feed(wire_in, ws_ == WsPhase::None ? mqtt_out : plain_, wire_out);
  if (state == wire::TlsState::Failed)
    return tl::unexpected("TLS: " + std::string(tls_->failure_reason()));
  if (ws_ != WsPhase::None && !plain_.empty()) {
    if (auto r = read_ws(plain_, mqtt_out, wire_out); !r) return r;
  }
  if (state == wire::TlsState::Closed)
    return tl::unexpected(std::string("TLS close_notify from the broker"));
  return {};
}

tl::expected<void, std::string> ClientStream::read_ws(std::string_view bytes, std::string& mqtt_out,
                                                      std::string& wire_out) {
  if (ws_ == WsPhase::Upgrading) {
    auto r = upgrade_->feed(bytes);
    if (r.status == wire::UpgradeResponseReader::Status::Refused)
      return tl::unexpected("WebSocket upgrade refused: " + r.reason);
    if (r.status == wire::UpgradeResponseReader::Status::Incomplete) return {};
    ws_ = WsPhase::Open;
    upgrade_.reset();
    bytes.remove_prefix(r.consumed);
    if (!held_.empty()) {
      frame(held_, wire_out);
      std::string().swap(held_);
    }
  }
  std::string pong;
  auto r = frames_.feed(bytes, mqtt_out, pong, next_mask());
  if (!pong.empty()) send_raw(pong, wire_out);
  if (r.state == wire::StreamState::Closed)
    return tl::unexpected(std::string("WebSocket Close from the broker"));
  if (r.state == wire::StreamState::Failed)
    return tl::unexpected("WebSocket: the broker sent " + std::string(r.reason));
  return {};
}

}  // namespace harbor::tools
