// `harbormq sub`: subscribe and print messages, like mosquitto_sub.
#include <unistd.h>

#include <cstdio>

#include "mqtt/topic.hpp"
#include "runtime/event_loop.hpp"
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

void print_message(const SubOptions& o, const mqtt::Publish& p) {
  if (o.verbose >= 2) {
    std::string props = describe_properties(p.props);
    std::fprintf(stdout, "%s [qos=%d retain=%d dup=%d", p.topic.c_str(), int(p.qos), int(p.retain), int(p.dup));
    if (p.qos) std::fprintf(stdout, " mid=%u", unsigned(p.packet_id));
    if (!props.empty()) std::fprintf(stdout, " %s", props.c_str());
    std::fputs("] ", stdout);
  } else if (o.verbose == 1) {
    std::fprintf(stdout, "%s ", p.topic.c_str());
  }
  std::fwrite(p.payload.data(), 1, p.payload.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

ToolResult<void> run(const SubOptions& o) {
  SyncClient client(o.conn, o.debug);
  std::string id = o.conn.client_id.empty() ? "harbormq-sub-" + std::to_string(getpid()) : o.conn.client_id;
  if (auto r = client.connect(id); !r) return tl::unexpected(r.error());

  mqtt::Subscribe sub;
  sub.packet_id = client.next_packet_id();
  sub.props.user_properties = o.user_props;
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

  uint64_t received = 0;
  auto handle = [&](const mqtt::Packet& pk) -> ToolResult<void> {
    if (auto* p = std::get_if<mqtt::Publish>(&pk)) {
      if (p->qos == 1) {
        mqtt::PubAck ack;
        ack.packet_id = p->packet_id;
        if (auto r = client.send(ack); !r) return r;
      } else if (p->qos == 2) {
        mqtt::PubAck rec;
        rec.type = mqtt::PacketType::Pubrec;
        rec.packet_id = p->packet_id;
        if (auto r = client.send(rec); !r) return r;
      }
      if (!(o.skip_retained && p->retain)) print_message(o, *p);
      ++received;
    } else if (auto* a = std::get_if<mqtt::PubAck>(&pk); a && a->type == mqtt::PacketType::Pubrel) {
      mqtt::PubAck comp;
      comp.type = mqtt::PacketType::Pubcomp;
      comp.packet_id = a->packet_id;
      if (auto r = client.send(comp); !r) return r;
    }
    return {};
  };

  // Messages can arrive before the SUBACK when the session already had subscriptions.
  ToolResult<void> early{};
  const uint16_t sub_id = sub.packet_id;
  auto suback = client.wait_for(
      [sub_id](const mqtt::Packet& pk) {
        auto* s = std::get_if<mqtt::Suback>(&pk);
        return s && s->packet_id == sub_id;
      },
      [&](const mqtt::Packet& pk) {
        if (early) early = handle(pk);
      },
      "SUBACK");
  if (!suback) return tl::unexpected(suback.error());
  if (!early) return early;
  const auto& reasons = std::get<mqtt::Suback>(*suback).reasons;
  for (size_t i = 0; i < reasons.size() && i < o.topics.size(); ++i) {
    if (mqtt::is_error(reasons[i]))
      return tl::unexpected(
          ToolError{kExitRejected, "subscription to '" + o.topics[i] + "' refused: " + describe(reasons[i])});
  }
  if (o.exit_after_subscribe) {
    client.disconnect();
    return {};
  }

  int64_t last_message_ms = runtime::EventLoop::steady_ms();
  while (!stop_requested() && (o.count == 0 || received < o.count)) {
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
    uint64_t before = received;
    if (auto r = handle(**pk); !r) return r;
    if (received != before) last_message_ms = runtime::EventLoop::steady_ms();
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
