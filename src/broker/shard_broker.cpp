// ShardBroker: construction, packet dispatch and closing a connection. The class's other
// parts are in the files listed in shard_broker_detail.hpp, one concept per file.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

ShardBroker::ShardBroker(BrokerContext& ctx, ShardServices& services)
    : ctx_(ctx), settings_(ctx.settings), services_(services), shard_(services.shard_index()),
      stats_(ctx.shard_stats[shard_]) {
  outboxes_.resize(ctx_.num_shards);
  ack_outboxes_.resize(ctx_.num_shards);
}

ShardBroker::~ShardBroker() = default;

void ShardBroker::log(int level, const std::string& text) const {
  if (ctx_.log) ctx_.log(level, text);
}

uint64_t ShardBroker::submit(PersistOp op) { return ctx_.store->submit(std::move(op)); }


void ShardBroker::on_link_opened(Link* link) {
  links_[link->link_id()] = link;
  link->opened_ms = services_.now_steady_ms();
  link->last_rx_ms = link->opened_ms;
}

void ShardBroker::close_with(Link* link, ReasonCode rc) {
  if (link->outbound && !link->connected) {
    // A bridge's dial whose TCP connect or CONNACK did not come within mqtt.connect_timeout.
    link->set_close_reason("no CONNACK within mqtt.connect_timeout");
    link->close_after_flush();
    return;
  }
  if (rc == ReasonCode::KeepAliveTimeout) {
    int64_t idle_s = (services_.now_steady_ms() - link->last_rx_ms) / 1000;
    link->set_close_reason("keepalive timeout (" + std::to_string(idle_s) +
                           " s without a packet, keepalive " +
                           std::to_string(link->keep_alive_s) + " s)");
  } else if (rc == ReasonCode::ServerShuttingDown) {
    link->set_close_reason("server shutdown");
  } else {
    link->set_close_reason("closed by the server: " + reason_text(rc));
  }
  if (link->outbound) {
    // We are the client on a bridge's link: a shutdown is a normal disconnection; a silent
    // remote gets no DISCONNECT (it would not arrive); other reasons are the client's too.
    if (rc == ReasonCode::ServerShuttingDown) {
      // Both versions: a DISCONNECT, so the remote does not publish the bridge's will.
      mqtt::encode(mqtt::Packet{mqtt::Disconnect{}}, link->version(), link->out());
      link->mark_dirty();
      link->close_after_flush();
      return;
    }
    if (rc == ReasonCode::KeepAliveTimeout) {
      link->close_after_flush();
      return;
    }
  }
  if (link->connected && mqtt::is_v5(link->version())) {
    mqtt::Disconnect d;
    d.reason = rc;
    // [MQTT-3.1.2-24] No Reason String or User Properties: 3 bytes at most, below the
    // smallest CONNACK an attached client accepted (it carries Receive Maximum and Maximum
    // Packet Size), so it always fits; checked all the same, never sent when it does not.
    std::string packet = mqtt::encode(mqtt::Packet{std::move(d)}, link->version());
    if (link->session == nullptr || packet.size() <= link->session->max_packet_out) {
      link->out().append(packet);
      link->mark_dirty();
    }
  }
  link->close_after_flush();
}

void ShardBroker::on_protocol_error(Link* link, const mqtt::Error& error) {
  log(0, "closing connection: " + error.message);
  link->set_close_reason("protocol error: " + error.message + ", " + reason_text(error.reason));
  if (!link->connected) {
    // Before CONNACK: answer a CONNECT we could not accept with a CONNACK [MQTT-3.1.4-1].
    if (error.reason == ReasonCode::UnsupportedProtocolVersion) {
      // Unknown level: answer in the 3.1.1 layout, return code 0x01 [MQTT-3.1.2-2].
      mqtt::Connack ack;
      ack.reason = ReasonCode::UnsupportedProtocolVersion;
      mqtt::encode(mqtt::Packet{std::move(ack)},
                   link->version() == Version::v5 ? Version::v5 : Version::v311, link->out());
      link->mark_dirty();
    } else if (mqtt::is_v5(link->version()) && mqtt::is_error(error.reason)) {
      // A 5.0 CONNECT refused while decoding (malformed, too large, too many user
      // properties): the CONNACK says why [MQTT-3.2.2-8].
      mqtt::Connack ack;
      ack.reason = error.reason;
      mqtt::encode(mqtt::Packet{std::move(ack)}, Version::v5, link->out());
      link->mark_dirty();
    }
    link->close_after_flush();
    return;
  }
  close_with(link, error.reason);
}

Flow ShardBroker::on_packet(Link* link, mqtt::Packet packet) {
  Session* s = link->session;
  if (s == nullptr) {
    // Before CONNACK: the AUTH exchange of enhanced authentication; otherwise closing.
    if (link->enhanced_auth && link->enhanced_auth->pending_connect && !link->connected)
      on_auth_while_connecting(link, packet);
    return Flow::Continue;
  }
  if (http_acl_on(link) && (std::holds_alternative<mqtt::Publish>(packet) ||
                            std::holds_alternative<mqtt::Subscribe>(packet))) {
    if (park_for_http_acl(link, packet)) return Flow::Continue;  // on_http_acl_answer goes on
  }
  // Dispatch by type (PUBLISH first: the hot path). ServerProtocol already refused
  // server-to-client types, so anything else here is a protocol error.
  if (auto* p = std::get_if<mqtt::Publish>(&packet)) {
    return on_publish(link, *p);
  } else if (auto* a = std::get_if<mqtt::PubAck>(&packet)) {
    switch (a->type) {
      case mqtt::PacketType::Puback: on_puback(s, *a); break;
      case mqtt::PacketType::Pubrec: on_pubrec(link, s, *a); break;
      case mqtt::PacketType::Pubrel: on_pubrel(link, s, *a); break;
      case mqtt::PacketType::Pubcomp: on_pubcomp(s, *a); break;
      default: break;
    }
  } else if (auto* sub = std::get_if<mqtt::Subscribe>(&packet)) {
    on_subscribe(link, s, *sub);
  } else if (auto* unsub = std::get_if<mqtt::Unsubscribe>(&packet)) {
    on_unsubscribe(link, s, *unsub);
  } else if (std::holds_alternative<mqtt::Pingreq>(packet)) {
    mqtt::encode(mqtt::Packet{mqtt::Pingresp{}}, link->version(), link->out());
    link->mark_dirty();
  } else if (auto* d = std::get_if<mqtt::Disconnect>(&packet)) {
    on_disconnect(link, s, *d);
  } else if (auto* auth = std::get_if<mqtt::Auth>(&packet)) {
    on_reauthenticate(link, *auth);
  } else {
    // A type ServerProtocol lets through that a client may not send here.
    close_with(link, ReasonCode::ProtocolError);
  }
  return Flow::Continue;
}

}  // namespace harbor::broker
