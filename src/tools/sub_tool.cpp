// `harbormq sub`: subscribe and print messages, like mosquitto_sub.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "mqtt/topic.hpp"
#include "runtime/event_loop.hpp"
#include "tools/output_format.hpp"
#include "tools/pub_tool.hpp"
#include "tools/stop_signal.hpp"
#include "tools/sync_client.hpp"

namespace harbor::tools {

namespace {
std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", s);
  return buf;
}

// One message as -F, -vv, -v or plain payload; then a newline unless -N (mosquitto_sub
// keeps -N with -F too).
void print_message(const SubOptions& o, const mqtt::Publish& p) {
  std::string out;
  if (o.format) {
    std::string errors;
    render_output_format(*o.format, p, receive_time_now(), out, errors);
    if (!errors.empty()) std::fputs(errors.c_str(), stderr);
  } else {
    if (o.verbose >= 2) {
      std::string props = describe_properties(p.props);
      char head[64];
      std::snprintf(head, sizeof head, " [qos=%d retain=%d dup=%d", int(p.qos), int(p.retain), int(p.dup));
      out += p.topic + head;
      if (p.qos) out += " mid=" + std::to_string(p.packet_id);
      if (!props.empty()) out += " " + props;
      out += "] ";
    } else if (o.verbose == 1) {
      out += p.topic + " ";
    }
    out += p.payload;
  }
  if (!o.no_eol) out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

bool filtered_out(const SubOptions& o, const std::string& topic) {
  for (const auto& f : o.filter_out)
    if (mqtt::topic_matches(f, topic)) return true;
  return false;
}

ToolResult<void> send_ack(SyncClient& client, const mqtt::Publish& p) {
  if (p.qos == 0) return {};
  mqtt::PubAck ack;
  ack.type = p.qos == 1 ? mqtt::PacketType::Puback : mqtt::PacketType::Pubrec;
  ack.packet_id = p.packet_id;
  return client.send(ack);
}

ToolResult<void> run(const SubOptions& o) {
  SyncClient client(o.conn, o.debug);
  std::string id = o.conn.client_id.empty() ? "harbormq-sub-" + std::to_string(getpid()) : o.conn.client_id;
  if (auto r = client.connect(id); !r) return tl::unexpected(r.error());

  uint64_t printed = 0;   // counts towards -C: messages not dropped by -R, -T
  bool finished = false;  // -C reached or --retained-only saw a fresh message
  bool arrived = false;   // any PUBLISH since the last -W check
  // mosquitto_sub's order: --retained-only ends at a fresh message before -R and -T look.
  auto handle = [&](const mqtt::Packet& pk) -> ToolResult<void> {
    if (auto* p = std::get_if<mqtt::Publish>(&pk)) {
      arrived = true;
      if (auto r = send_ack(client, *p); !r) return r;
      if (finished) return {};
      if (o.retained_only && !p->retain) {
        finished = true;
        return {};
      }
      if (o.skip_retained && p->retain) return {};
      if (filtered_out(o, p->topic)) return {};
      print_message(o, *p);
      ++printed;
      if (o.count > 0 && printed >= o.count) finished = true;
    } else if (auto* a = std::get_if<mqtt::PubAck>(&pk); a && a->type == mqtt::PacketType::Pubrel) {
      mqtt::PubAck comp;
      comp.type = mqtt::PacketType::Pubcomp;
      comp.packet_id = a->packet_id;
      if (auto r = client.send(comp); !r) return r;
    }
    return {};
  };

  // Waits for the acknowledgement `want` names; messages that arrive first (a session's
  // existing subscriptions, retained messages) are handled on the way.
  auto wait_ack = [&](uint16_t packet_id, bool suback) -> ToolResult<mqtt::Packet> {
    ToolResult<void> early{};
    auto ack = client.wait_for(
        [packet_id, suback](const mqtt::Packet& pk) {
          if (suback) {
            auto* s = std::get_if<mqtt::Suback>(&pk);
            return s && s->packet_id == packet_id;
          }
          auto* u = std::get_if<mqtt::Unsuback>(&pk);
          return u && u->packet_id == packet_id;
        },
        [&](const mqtt::Packet& pk) {
          if (early) early = handle(pk);
        },
        suback ? "SUBACK" : "UNSUBACK");
    if (!early) return tl::unexpected(early.error());
    return ack;
  };

  if (!o.topics.empty()) {
    mqtt::Subscribe sub;
    sub.packet_id = client.next_packet_id();
    if (o.conn.version == mqtt::Version::v5) sub.props = o.conn.props.subscribe;
    for (const auto& t : o.topics) {
      mqtt::SubscribeTopic st;
      st.filter = t;
      st.qos = static_cast<mqtt::QoS>(o.qos);
      st.no_local = o.no_local;
      st.retain_as_published = o.retain_as_published;
      st.retain_handling = static_cast<uint8_t>(o.retain_handling);
      sub.topics.push_back(std::move(st));
    }
    if (auto r = client.send(sub); !r) return r;
    auto suback = wait_ack(sub.packet_id, true);
    if (!suback) return tl::unexpected(suback.error());
    const auto& reasons = std::get<mqtt::Suback>(*suback).reasons;
    for (size_t i = 0; i < reasons.size() && i < o.topics.size(); ++i) {
      if (mqtt::is_error(reasons[i]))
        return tl::unexpected(
            ToolError{kExitRejected, "subscription to '" + o.topics[i] + "' refused: " + describe(reasons[i])});
    }
  }
  // -U after the subscriptions, as mosquitto_sub does (so -t a -U a leaves none).
  if (!o.unsubscribe.empty()) {
    mqtt::Unsubscribe unsub;
    unsub.packet_id = client.next_packet_id();
    if (o.conn.version == mqtt::Version::v5) unsub.props = o.conn.props.unsubscribe;
    unsub.filters = o.unsubscribe;
    if (auto r = client.send(unsub); !r) return r;
    auto unsuback = wait_ack(unsub.packet_id, false);
    if (!unsuback) return tl::unexpected(unsuback.error());
    const auto& reasons = std::get<mqtt::Unsuback>(*unsuback).reasons;  // 5.0 only
    for (size_t i = 0; i < reasons.size() && i < o.unsubscribe.size(); ++i) {
      if (mqtt::is_error(reasons[i]))
        return tl::unexpected(ToolError{kExitRejected, "unsubscribe from '" + o.unsubscribe[i] +
                                                           "' refused: " + describe(reasons[i])});
    }
  }
  if (o.exit_after_subscribe) {
    client.disconnect();
    return {};
  }

  int64_t last_message_ms = runtime::EventLoop::steady_ms();
  while (!stop_requested() && !finished) {
    int timeout = 1000;
    if (o.wait_s > 0) {
      int64_t left = last_message_ms + static_cast<int64_t>(o.wait_s * 1000) - runtime::EventLoop::steady_ms();
      if (left <= 0)
        return tl::unexpected(ToolError{kExitTimeout, "timed out: no message for " + format_seconds(o.wait_s)});
      timeout = static_cast<int>(std::min<int64_t>(left, 1000));
    }
    auto pk = client.receive(timeout);
    if (!pk) return tl::unexpected(pk.error());
    if (!*pk) continue;
    arrived = false;
    if (auto r = handle(**pk); !r) return r;
    if (arrived) last_message_ms = runtime::EventLoop::steady_ms();
  }
  client.disconnect();
  return {};
}
}  // namespace

int run_sub(SubOptions& o) {
  if (auto r = finalize(o); !r) {
    std::fprintf(stderr, "Error: %s\n", r.error().c_str());
    return kExitUsage;
  }
  for (const auto& t : o.topics) {
    if (!mqtt::valid_topic_filter(t)) {
      std::fprintf(stderr, "Error: invalid topic filter '%s'\n", t.c_str());
      return kExitUsage;
    }
  }
  install_stop_signals();
  return exit_code(run(o));
}

}  // namespace harbor::tools
