// `harbormq pub`: publish one message (or each stdin line) and exit, like mosquitto_pub.
#include "tools/pub_tool.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#include "mqtt/outbound_window.hpp"
#include "mqtt/topic.hpp"
#include "tools/stop_signal.hpp"
#include "tools/sync_client.hpp"

namespace harbor::tools {

namespace {
std::string default_client_id(const char* tool) {
  return std::string("harbormq-") + tool + "-" + std::to_string(getpid());
}

// QoS 1/2 flows in flight: one at a time here (each publish waits for its flow to end).
using PubWindow = mqtt::OutboundWindow<int>;

const char* awaited(const PubWindow& window, uint16_t id) {
  const auto* e = window.find(id);
  if (e == nullptr) return "acknowledgement";
  switch (e->state) {
    case mqtt::OutboundState::AwaitPuback: return "PUBACK";
    case mqtt::OutboundState::AwaitPubrec: return "PUBREC";
    case mqtt::OutboundState::AwaitPubcomp: return "PUBCOMP";
  }
  return "acknowledgement";
}

// Sends one PUBLISH and completes its QoS flow. With a topic alias (-D publish topic-alias)
// the first PUBLISH carries the topic and the alias, later ones only the alias.
ToolResult<void> publish_one(SyncClient& client, PubWindow& window, const PubOptions& o,
                             const std::string& payload, bool& alias_known) {
  mqtt::Publish p;
  p.topic = o.topic;
  p.qos = static_cast<mqtt::QoS>(o.qos);
  p.retain = o.retain;
  p.payload = payload;
  if (o.qos > 0) {
    auto out = window.submit(0, p.qos, runtime::EventLoop::steady_ms());
    if (out.action != mqtt::WindowAction::SendPublish)  // not while each flow ends first
      return tl::unexpected(ToolError{kExitProtocol, "no packet id available to publish"});
    p.packet_id = out.packet_id;
  }
  if (o.conn.version == mqtt::Version::v5) {
    p.props = o.conn.props.publish;
    if (p.props.topic_alias) {
      if (alias_known) p.topic.clear();
      alias_known = true;
    }
  }
  if (auto r = client.send(p); !r) return r;
  if (o.qos == 0) return {};
  const uint16_t id = p.packet_id;
  auto is_ack = [id](const mqtt::Packet& pk) {
    auto* a = std::get_if<mqtt::PubAck>(&pk);
    return a && a->packet_id == id && a->type != mqtt::PacketType::Pubrel;
  };
  auto ignore = [](const mqtt::Packet&) {};
  while (window.find(id) != nullptr) {
    auto ack = client.wait_for(is_ack, ignore, awaited(window, id));
    if (!ack) return tl::unexpected(ack.error());
    const auto& a = std::get<mqtt::PubAck>(*ack);
    mqtt::WindowOutput<int> out;
    if (a.type == mqtt::PacketType::Puback) {
      out = window.on_puback(id, a.reason);
    } else if (a.type == mqtt::PacketType::Pubrec) {
      out = window.on_pubrec(id, a.reason, runtime::EventLoop::steady_ms());
    } else {
      out = window.on_pubcomp(id, a.reason);
    }
    switch (out.action) {
      case mqtt::WindowAction::Release:
        // A PUBCOMP error (0x92) comes after the PUBREC accepted the message.
        if (mqtt::is_error(out.reason) && a.type != mqtt::PacketType::Pubcomp)
          return tl::unexpected(
              ToolError{kExitRejected, "publish rejected by broker: " + describe(out.reason)});
        return {};
      case mqtt::WindowAction::SendPubrel: {
        mqtt::PubAck rel;
        rel.type = mqtt::PacketType::Pubrel;
        rel.packet_id = id;
        rel.reason = out.reason;
        if (auto r = client.send(rel); !r) return r;
        break;
      }
      case mqtt::WindowAction::ProtocolError:
        return tl::unexpected(ToolError{
            kExitProtocol, "protocol error from broker: " + std::string(mqtt::to_string(a.type)) +
                               " for packet id " + std::to_string(id) + ", sent at QoS " +
                               std::to_string(o.qos)});
      default:
        break;
    }
  }
  return {};
}

ToolResult<void> run(const PubOptions& o) {
  SyncClient client(o.conn, o.verbose > 0);
  std::string id = o.conn.client_id.empty() ? default_client_id("pub") : o.conn.client_id;
  if (auto r = client.connect(id); !r) return tl::unexpected(r.error());
  if (const auto& alias = o.conn.props.publish.topic_alias) {
    // [MQTT-3.3.2-9]: a client must not send an alias above the server's Topic Alias Maximum.
    uint16_t max = client.connack().props.topic_alias_maximum.value_or(0);
    if (*alias > max)
      return tl::unexpected(ToolError{kExitRejected, "topic alias " + std::to_string(*alias) +
                                                         " is above the broker's Topic Alias Maximum (" +
                                                         std::to_string(max) + ")"});
  }
  bool alias_known = false;
  PubWindow window;
  window.on_connected(o.conn.version, client.connack().props.receive_maximum.value_or(65535),
                      runtime::EventLoop::steady_ms(), [](const mqtt::WindowOutput<int>&) {});

  auto send_repeated = [&](const std::string& payload) -> ToolResult<void> {
    for (int i = 0; i < o.repeat; ++i) {
      if (i > 0 && o.repeat_delay_s > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(o.repeat_delay_s));
      if (auto r = publish_one(client, window, o, payload, alias_known); !r) return r;
    }
    return {};
  };

  if (o.stdin_lines) {
    std::string line;
    while (!stop_requested() && std::getline(std::cin, line)) {
      if (auto r = send_repeated(line); !r) return r;
    }
  } else {
    std::string payload;
    if (o.message) {
      payload = *o.message;
    } else if (!o.file.empty()) {
      std::ifstream in(o.file, std::ios::binary);
      if (!in) return tl::unexpected(ToolError{kExitIo, "cannot read file '" + o.file + "'"});
      payload.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    } else if (o.stdin_whole) {
      std::ostringstream ss;
      ss << std::cin.rdbuf();
      payload = ss.str();
    }
    if (auto r = send_repeated(payload); !r) return r;
  }
  client.disconnect();
  return {};
}
}  // namespace

int run_pub(PubOptions& o) {
  if (auto r = finalize(o); !r) {
    std::fprintf(stderr, "Error: %s\n", r.error().c_str());
    return kExitUsage;
  }
  if (!mqtt::valid_topic_name(o.topic)) {
    std::fprintf(stderr, "Error: invalid topic name '%s'\n", o.topic.c_str());
    return kExitUsage;
  }
  install_stop_signals();
  return exit_code(run(o));
}

}  // namespace harbor::tools
