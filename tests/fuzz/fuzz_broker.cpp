// libFuzzer target: the broker logic (one ShardBroker, single shard) driven through its
// connection-layer entry points by a script of operations from a few clients, with fake
// links, a manual clock and a fake store (broker_fuzz_fakes.hpp). Every client packet is
// encoded and read back through mqtt::ServerProtocol, as the runtime does, so the broker
// only ever sees what a real connection could hand it; every byte the broker writes is
// decoded through mqtt::ClientProtocol of the link's version.
//
// ---- Input format ----
// Byte 0, the broker's configuration:
//   bits 0-1  store: 0 none, 1 store acknowledging at once, 2-3 store acknowledging after commit
//   bit 2     mqtt.max_inflight_window = 3 (else 2048)
//   bit 3     mqtt.max_mqueue_len = 3 (else 2048)
//   bit 4     mqtt.queue_qos0 on
//   bit 5     mqtt.max_awaiting_rel = 2 (else 2048)
//   bit 6     mqtt.retry_interval = 2 s, mqtt.await_rel_timeout = 3 s (else 10 s, 10 s)
//   bit 7     mqtt.session_expiry_311 = 20 s (else never)
// Then operations until the input ends (at most kMaxOps). An operation is one byte: the low
// nibble is the opcode, the high nibble A its argument; C = A & 3 is a client slot (client id
// "c0".."c3"), H = A >> 2. Some read more bytes (a missing byte reads as 0). "The client's
// link" is its newest link that is neither closed nor closing; an operation on a client
// without one does nothing.
//   0 CONNECT    A: C, H version (0 3.1.1, 1-2 5.0, 3 3.1); opens a new link and sends CONNECT.
//                b1: bit0 clean start (always with 3.1: its CONNACK cannot say session present), bit1 will, bit2 empty client id (assigned), bits3-4
//                session expiry (none, 10 s, 300 s, never), bits5-6 receive maximum (none, 1,
//                2, 20), bit7 keep alive 10 s (else 0).
//                b2: bits0-1 maximum packet size (none, 64, 4096, none), bits2-4 will topic,
//                bits5-6 will QoS (3 -> 1), bit7 will retain.
//                b3: bit0 will delay 5 s, bit1 will message expiry 5 s.
//   1 SUBSCRIBE  A: C, H+1 filters. b1: bits0-2 packet id - 1, bits3-4 retain handling
//                (3 -> 0), bits5-6 subscription identifier (0 none). Per filter one byte:
//                bits0-3 filter (kFilters), bits4-5 QoS (3 -> 2), bit6 no local, bit7
//                retain as published.
//   2 UNSUBSCRIBE A: C, H+1 filters. b1: bits0-2 packet id - 1. Per filter one byte: bits0-3.
//   3 PUBLISH    A: C, H QoS (3 -> 0). b1: bits0-2 topic (kTopics), bit3 retain, bit4 DUP
//                (QoS > 0 only), bit5 empty payload (with retain: clears), bit6 long payload
//                (~200 bytes), bit7 rogue. b2: bits0-2 packet id - 1, bits3-4 message
//                expiry (none, 1 s, 100 s, none).
//                The client behaves: if it has an open flow with that packet id, this is
//                its resend (PUBLISH with DUP, or PUBREL once PUBREC came) unless rogue,
//                which publishes a new message under the id still in use.
//                Payloads are unique ("m<n>"), which identifies each message.
//   4 ACK        A: C, H type (PUBACK, PUBREC, PUBREL, PUBCOMP). b1: bits0-3 id (0-7: the
//                k-th id the client could sensibly acknowledge with that type, if any;
//                else and 8-15: literal id 1-8), bits4-5 reason (success, 0x80, 0x10/0x92,
//                success).
//   5 DISCONNECT A: C, H bit0 reason 0x04 (with will), H bit1 Session Expiry property.
//                b1: expiry value (b1 % 3: 0, 60 s, never).
//   6 CLOSED     A: C, H which link: 0 the newest open one, 1 the oldest open one, 2 every
//                closing one of the client, 3 every closing one of every client.
//                The runtime reports the link gone (on_link_closed).
//   7 TIME       A: how far (100 ms, 1 s, 3 s, 6 s, 12 s, 35 s, 120 s, 400 s, ... 16 steps),
//                then sweep().
//   8 COMMIT     A: 0 everything submitted is durable, else A/16 of what is not yet;
//                then on_durable().
//   9 DEGRADED   A bit0: the store refuses (on) or recovers (off).
//  10 PING       A: C.
//  11 GARBAGE    A: C, H variant: a second CONNECT, AUTH (F0 00), reserved type 0, PUBLISH
//                with QoS 3. The broker sees a protocol error or a packet it must refuse.
//  12 BACKLOG    A: C, H level: the link's unsent output (0, 300 KiB, 5 MiB stuck, 20 MiB
//                stuck); level 0 also reports the link writable.
//  13 OPEN       A: C: opens a link that sends nothing (connect timeout).
//  14 AUTOACK    A: C: the client answers everything it owes (PUBACK, PUBREC, PUBCOMP for
//                what it received, PUBREL for its own flows that got PUBREC).
//  15 RESEND     A: C: the client resends every open flow of its own (as after a reconnect
//                [MQTT-4.4.0-1]).
// After every client packet the broker handled, and after every operation (which ends with
// flush_outboxes() and the posted tasks: the end of a loop iteration), the fuzzer decodes
// every link's output and checks the invariants. At the end
// of the input: shutdown(), every link reported closed, a last check.
//
// ---- Invariants (a violation aborts with a message) ----
//  W  Well-formed output: every byte a link receives decodes as whole, valid packets of its
//     version in the server-to-client direction; CONNACK first and once; nothing but a
//     5.0 DISCONNECT 0x8E to a connection taken over, and nothing after the takeover; no
//     packet above the client's Maximum Packet Size; no topic alias (none was allowed).
//  C  Closed means closed: after on_link_closed the broker never touches that link again
//     (out(), mark_dirty(), close_after_flush(), trim_buffers()).
//  A  Answers match requests, per connection: each PUBACK / PUBREC / PUBCOMP / SUBACK /
//     UNSUBACK / PINGRESP answers a PUBLISH QoS 1 / PUBLISH QoS 2 / PUBREL / SUBSCRIBE /
//     UNSUBSCRIBE / PINGREQ the broker received on that same connection and has not
//     answered yet (an answer held for a connection that went is never written to the next
//     one); SUBACK has one code per filter, none above the QoS asked; clean start means
//     session_present=0 [MQTT-3.2.2-2], and session_present=1 needs an earlier session.
//  P  Packet ids, per session as its client sees it (across reconnects): a PUBLISH with
//     DUP=0 never uses an id whose QoS 1/2 flow is still in flight [MQTT-2.2.1-3]; a DUP=1
//     PUBLISH with an id in flight is the same message at the same QoS, never after the
//     client's PUBREC, and in 5.0 never on the connection that already had it
//     [MQTT-4.4.0-1]; a PUBREL (success) only follows the client's PUBREC; the PUBLISH
//     packets in flight that were sent on the current connection never exceed the client's
//     Receive Maximum (and mqtt.max_inflight_window) [MQTT-4.9.0-2] (the quota is per
//     connection: a flow carried over that only needs PUBREL does not count, MQTT 5 §4.9).
//     A flow is in flight from the client's receipt of the PUBLISH until the broker has
//     processed PUBACK (QoS 1), PUBCOMP after PUBREC, or a failed PUBREC (QoS 2).
//  S  Subscriptions: a message is delivered to a session only if, when it was published,
//     that session had a subscription matching its topic (and No Local did not exclude the
//     publisher's own session) — so nothing published after UNSUBSCRIBE is delivered through
//     that filter; a RETAIN=1 delivery of a retained message may also follow a later plain
//     SUBSCRIBE; the topic is the published one, the QoS not above it; $SYS topics published
//     by clients reach nobody.
//  Q  At most once per route: per session and message, new deliveries (DUP=0, and DUP=1 of an
//     id not in flight: Q+) are at most the number of subscription routes it had when
//     published (overlapping plain subscriptions: one; each shared subscription: one more),
//     summed over the publisher's sends that the broker may have routed; a QoS 2 flow
//     counts once however often it is resent, until the broker may have forgotten it
//     (await_rel_timeout, or a PUBREL before PUBREC). So a QoS 2 message reaches each
//     session at most once per route, across reconnects [MQTT-4.3.3-9].
// And (these were HARBOR_FUZZ_STRICT=1 only while the broker broke them; on by default since
// issue 11 fixed the four findings):
//  L  Answers come: after a COMMIT of everything (operation 8 with A = 0), every connection
//     still up has a PUBACK for each QoS 1 PUBLISH it sent, a PUBREC after its last QoS 2
//     PUBLISH of each id, a PUBCOMP after its last PUBREL of each id (unless a 3.1.1
//     PUBLISH met a refusing store: 3.1.1 cannot refuse, it gets no answer).
//  Q+ A DUP=1 PUBLISH of an id not in flight counts as a new delivery in Q (default: the id
//     is tracked but not trusted, since the broker may resend a flow already over).
//  D  Nothing after the end: no bytes behind a DISCONNECT or a refused CONNACK reach the
//     client [MQTT-3.14.4-1]. The fake link drops what the broker writes after
//     close_after_flush, as runtime::Connection's close mark does, so this checks what is
//     written before the request.
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "broker/context.hpp"
#include "broker/retained_store.hpp"
#include "broker/shard_broker.hpp"
#include "broker/subscription_tree.hpp"
#include "broker_fuzz_fakes.hpp"
#include "broker_fuzz_model.hpp"
#include "support/one_shard.hpp"
#include "mqtt/codec.hpp"
#include "mqtt/protocol.hpp"

namespace harbor::broker::fuzz {
namespace {

using mqtt::PacketType;
using mqtt::ReasonCode;
using mqtt::Version;

constexpr int kSlots = 4;
constexpr size_t kMaxOps = 400;
constexpr size_t kMaxLinks = 48;
constexpr const char* kClientIds[kSlots] = {"c0", "c1", "c2", "c3"};
constexpr const char* kTopics[8] = {"a", "a/b", "a/b/c", "b", "b/c", "$x/a", "$SYS/a", "c/a"};
constexpr const char* kFilters[16] = {"a",     "a/b",          "a/+",          "a/#",
                                      "#",     "+/c",          "+",            "b/#",
                                      "+/+",   "$x/#",         "a/b/c",        "a/#/b",
                                      "$SYS/#", "$share/g/a/#", "$share/g/#",  "$share/h/+/c"};
constexpr int64_t kTimeSteps[16] = {100,    1'000,  3'000,   6'000,   12'000,  35'000,
                                    120'000, 400'000, 500,    2'000,   4'000,   9'000,
                                    20'000,  60'000,  200'000, 1'000'000};

// HARBOR_FUZZ_TRACE=1: every operation and every packet the broker writes, on stderr (to
// read a reproducer).
bool trace_mode() {
  static const bool trace = [] {
    const char* v = std::getenv("HARBOR_FUZZ_TRACE");
    return v != nullptr && v[0] == '1';
  }();
  return trace;
}

std::string hex_id(uint16_t id) { return std::to_string(id); }

class Script {
 public:
  Script(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool done() const { return pos_ >= size_; }
  uint8_t next() { return pos_ < size_ ? data_[pos_++] : 0; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// One connection: the fake link, the protocol reading what the client sends (the runtime's
// side) and the protocol reading what the broker writes (the client's side), and what that
// connection still owes answers to.
struct LinkState {
  std::unique_ptr<FuzzLink> link;
  int slot = 0;
  bool anonymous = false;
  std::unique_ptr<mqtt::ServerProtocol> server;
  std::unique_ptr<mqtt::ClientProtocol> client;
  std::optional<mqtt::Connect> connect;  // the CONNECT the broker received on it
  bool connack_ok = false;
  int epoch = -1;
  bool superseded = false;
  size_t superseded_step = 0;
  uint32_t window = 65535;
  std::map<uint16_t, int> owed_puback, owed_pubrec, owed_pubcomp;
  std::deque<std::pair<uint16_t, size_t>> owed_suback;  // packet id, filters
  std::deque<std::pair<uint16_t, size_t>> owed_unsuback;
  int owed_pingresp = 0;
  // Ids of a QoS 2 PUBLISH / a PUBREL received with no PUBREC / PUBCOMP for that id since.
  std::set<uint16_t> unanswered_pubrec, unanswered_pubcomp;
  // A 3.1.1 QoS 1/2 PUBLISH arrived while the store refused: it gets no answer at all.
  bool may_be_refused = false;
};

class BrokerFuzz {
 public:
  explicit BrokerFuzz(uint8_t flags) {
    settings_ = Settings{};
    auto& m = settings_;
    if (flags & 0x04) m.max_inflight_window = 3;
    if (flags & 0x08) m.max_mqueue_len = 3;
    m.queue_qos0 = (flags & 0x10) != 0;
    if (flags & 0x20) m.max_awaiting_rel = 2;
    if (flags & 0x40) {
      m.retry_interval = std::chrono::milliseconds(2'000);
      m.await_rel_timeout = std::chrono::milliseconds(3'000);
    }
    if (flags & 0x80) m.session_expiry_311 = 20;
    const unsigned store_mode = flags & 3;
    sink_.set_ack_after_commit(store_mode >= 2);
    world_.build(settings_, services_, store_mode != 0 ? &sink_ : nullptr);
  }

  ~BrokerFuzz() {
    // The broker goes first: it may still hold pointers to links.
    world_.broker.reset();
  }

  void run(Script& script) {
    size_t ops = 0;
    while (!script.done() && ops++ < kMaxOps) {
      ++step_;
      accumulate_wills();
      const uint8_t op = script.next();
      execute(op & 0x0F, op >> 4, script);
      end_of_iteration();
    }
    ++step_;
    accumulate_wills();
    world_.broker->shutdown();
    end_of_iteration();
    for (auto& ls : links_) close_link(ls);
    end_of_iteration();
  }

 private:
  // ------------------------------------------------------------ operations

  void execute(unsigned opcode, unsigned a, Script& s) {
    if (trace_mode()) std::fprintf(stderr, "step %zu: op %u arg %u\n", step_, opcode, a);
    const int slot = static_cast<int>(a & 3);
    const unsigned h = a >> 2;
    switch (opcode) {
      case 0: op_connect(slot, h, s.next(), s.next(), s.next()); break;
      case 1: op_subscribe(slot, h + 1, s); break;
      case 2: op_unsubscribe(slot, h + 1, s); break;
      case 3: op_publish(slot, h, s.next(), s.next()); break;
      case 4: op_ack(slot, h, s.next()); break;
      case 5: op_disconnect(slot, h, s.next()); break;
      case 6: op_closed(slot, h); break;
      case 7:
        services_.advance(kTimeSteps[a]);
        world_.broker->sweep();
        note_sweep();
        break;
      case 8:
        if (world_.ctx->store != nullptr) {
          const uint64_t durable = sink_.durable_seq();
          const uint64_t open = sink_.last_seq() - durable;
          sink_.set_durable(a == 0 ? sink_.last_seq() : durable + (open * a + 15) / 16);
          world_.broker->on_durable();
        }
        if (a == 0) {
          end_of_iteration();
          check_all_answered();
        }
        break;
      case 9: sink_.set_degraded((a & 1) != 0); break;
      case 10:
        if (LinkState* ls = current(slot)) send(*ls, mqtt::Pingreq{});
        break;
      case 11: op_garbage(slot, h); break;
      case 12: op_backlog(slot, h); break;
      case 13:
        if (links_.size() < kMaxLinks) open_link(slot);
        break;
      case 14: op_autoack(slot); break;
      case 15: op_resend(slot); break;
      default: break;
    }
  }

  LinkState& open_link(int slot) {
    auto ls = std::make_unique<LinkState>();
    ls->link = std::make_unique<FuzzLink>(next_link_id_++);
    ls->slot = slot;
    mqtt::ServerProtocol::Limits limits;
    limits.max_packet_size = settings_.max_packet_size;
    limits.max_topic_alias = settings_.max_topic_alias;
    limits.max_user_properties = settings_.max_user_properties;
    ls->server = std::make_unique<mqtt::ServerProtocol>(limits);
    links_.push_back(std::move(ls));
    LinkState& ref = *links_.back();
    world_.broker->on_link_opened(ref.link.get());
    return ref;
  }

  // The client's newest link that is neither closed nor closing.
  LinkState* current(int slot) {
    for (auto it = links_.rbegin(); it != links_.rend(); ++it) {
      LinkState& ls = **it;
      if (ls.slot == slot && !ls.link->closed() && !ls.link->close_requested()) return &ls;
    }
    return nullptr;
  }

  void op_connect(int slot, unsigned h, uint8_t b1, uint8_t b2, uint8_t b3) {
    if (links_.size() >= kMaxLinks) return;
    static constexpr Version kVersions[4] = {Version::v311, Version::v5, Version::v5, Version::v31};
    mqtt::Connect c;
    c.version = kVersions[h & 3];
    c.protocol_name = c.version == Version::v31 ? "MQIsdp" : "MQTT";
    // A 3.1 CONNACK has no session-present flag: a 3.1 client always starts clean here, so
    // the model knows which session it is in.
    c.clean_start = (b1 & 0x01) != 0 || c.version == Version::v31;
    c.keep_alive = (b1 & 0x80) ? 10 : 0;
    const bool anonymous = (b1 & 0x04) != 0;
    c.client_id = anonymous ? "" : kClientIds[slot];
    if (mqtt::is_v5(c.version)) {
      static constexpr uint32_t kExpiry[4] = {0, 10, 300, 0xFFFFFFFF};
      if (unsigned e = (b1 >> 3) & 3) c.props.session_expiry_interval = kExpiry[e];
      static constexpr uint16_t kReceiveMax[4] = {0, 1, 2, 20};
      if (unsigned r = (b1 >> 5) & 3) c.props.receive_maximum = kReceiveMax[r];
      static constexpr uint32_t kMaxPacket[4] = {0, 64, 4096, 0};
      if (uint32_t m = kMaxPacket[b2 & 3]) c.props.maximum_packet_size = m;
    }
    if (b1 & 0x02) {
      mqtt::Will w;
      w.topic = kTopics[(b2 >> 2) & 7];
      w.payload = "w" + std::to_string(++payload_counter_);
      w.qos = static_cast<mqtt::QoS>((b2 >> 5) & 3);
      if (w.qos == 3) w.qos = 1;
      w.retain = (b2 & 0x80) != 0;
      if (mqtt::is_v5(c.version)) {
        if (b3 & 1) w.props.will_delay_interval = 5;
        if (b3 & 2) w.props.message_expiry_interval = 5;
      }
      c.will = std::move(w);
    }
    LinkState& ls = open_link(slot);
    ls.anonymous = anonymous;
    send(ls, std::move(c));
  }

  void op_subscribe(int slot, unsigned count, Script& s) {
    const uint8_t b1 = s.next();
    mqtt::Subscribe sub;
    sub.packet_id = static_cast<uint16_t>((b1 & 7) + 1);
    uint8_t handling = (b1 >> 3) & 3;
    if (handling == 3) handling = 0;
    if (unsigned id = (b1 >> 5) & 3) sub.props.subscription_identifiers.push_back(id);
    for (unsigned i = 0; i < count; ++i) {
      const uint8_t t = s.next();
      mqtt::SubscribeTopic topic;
      topic.filter = kFilters[t & 15];
      topic.qos = static_cast<mqtt::QoS>((t >> 4) & 3);
      if (topic.qos == 3) topic.qos = 2;
      topic.no_local = (t & 0x40) != 0;
      topic.retain_as_published = (t & 0x80) != 0;
      topic.retain_handling = handling;
      sub.topics.push_back(std::move(topic));
    }
    if (LinkState* ls = current(slot)) send(*ls, std::move(sub));
  }

  void op_unsubscribe(int slot, unsigned count, Script& s) {
    mqtt::Unsubscribe unsub;
    unsub.packet_id = static_cast<uint16_t>((s.next() & 7) + 1);
    for (unsigned i = 0; i < count; ++i) unsub.filters.push_back(kFilters[s.next() & 15]);
    if (LinkState* ls = current(slot)) send(*ls, std::move(unsub));
  }

  void op_publish(int slot, unsigned h, uint8_t b1, uint8_t b2) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    mqtt::Publish p;
    p.qos = static_cast<mqtt::QoS>(h == 3 ? 0 : h);
    p.packet_id = p.qos > 0 ? static_cast<uint16_t>((b2 & 7) + 1) : 0;
    const bool rogue = (b1 & 0x80) != 0;
    Epoch* e = epoch_of(*ls);
    if (p.qos > 0 && !rogue && e != nullptr) {
      if (auto it = e->own.find(p.packet_id); it != e->own.end()) {
        const OwnFlow& f = it->second;
        if (f.state == OwnState::GotPubrec || f.state == OwnState::Released) {
          send(*ls, pub_ack(PacketType::Pubrel, p.packet_id));
          return;
        }
        p.qos = f.qos;
        p.topic = f.topic;
        p.payload = f.payload;
        p.retain = f.retain;
        p.dup = true;
        send(*ls, std::move(p));
        return;
      }
    }
    p.topic = kTopics[b1 & 7];
    p.retain = (b1 & 0x08) != 0;
    p.dup = p.qos > 0 && (b1 & 0x10) != 0;
    if (!(p.retain && (b1 & 0x20))) {
      p.payload = "m" + std::to_string(++payload_counter_);
      if (b1 & 0x40) p.payload += ":" + std::string(200, 'x');
    }
    if (mqtt::is_v5(ls->link->version())) {
      static constexpr uint32_t kExpiry[4] = {0, 1, 100, 0};
      if (uint32_t x = kExpiry[(b2 >> 3) & 3]) p.props.message_expiry_interval = x;
    }
    send(*ls, std::move(p));
  }

  static mqtt::PubAck pub_ack(PacketType type, uint16_t id, ReasonCode rc = ReasonCode::Success) {
    mqtt::PubAck a;
    a.type = type;
    a.packet_id = id;
    a.reason = rc;
    return a;
  }

  void op_ack(int slot, unsigned h, uint8_t b1) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    static constexpr PacketType kTypes[4] = {PacketType::Puback, PacketType::Pubrec,
                                             PacketType::Pubrel, PacketType::Pubcomp};
    const PacketType type = kTypes[h & 3];
    std::vector<uint16_t> sensible;
    if (Epoch* e = epoch_of(*ls)) {
      if (type == PacketType::Pubrel) {
        for (const auto& [id, f] : e->own)
          if (f.qos == 2) sensible.push_back(id);
      } else {
        for (const auto& [id, f] : e->inflight) {
          if ((type == PacketType::Puback) == (f.qos == 1)) sensible.push_back(id);
        }
      }
    }
    const unsigned sel = b1 & 15;
    const uint16_t id = sel < 8 && !sensible.empty() ? sensible[sel % sensible.size()]
                                                     : static_cast<uint16_t>((sel & 7) + 1);
    ReasonCode rc = ReasonCode::Success;
    switch ((b1 >> 4) & 3) {
      case 1: rc = ReasonCode::UnspecifiedError; break;
      case 2:
        rc = type == PacketType::Puback || type == PacketType::Pubrec
                 ? ReasonCode::NoMatchingSubscribers
                 : ReasonCode::PacketIdentifierNotFound;
        break;
      default: break;
    }
    send(*ls, pub_ack(type, id, rc));
  }

  void op_disconnect(int slot, unsigned h, uint8_t b1) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    mqtt::Disconnect d;
    if (h & 1) d.reason = ReasonCode::DisconnectWithWill;
    if (h & 2) {
      static constexpr uint32_t kExpiry[3] = {0, 60, 0xFFFFFFFF};
      d.props.session_expiry_interval = kExpiry[b1 % 3];
    }
    send(*ls, std::move(d));
  }

  void op_closed(int slot, unsigned which) {
    switch (which) {
      case 0:
        for (auto it = links_.rbegin(); it != links_.rend(); ++it) {
          if ((*it)->slot == slot && !(*it)->link->closed()) {
            close_link(*it);
            return;
          }
        }
        return;
      case 1:
        for (auto& ls : links_) {
          if (ls->slot == slot && !ls->link->closed()) {
            close_link(ls);
            return;
          }
        }
        return;
      default:
        for (auto& ls : links_) {
          if ((which == 3 || ls->slot == slot) && ls->link->close_requested()) close_link(ls);
        }
        return;
    }
  }

  void op_garbage(int slot, unsigned variant) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    switch (variant) {
      case 0: {
        mqtt::Connect c;
        const Version v = ls->link->version();
        c.version = v;
        c.protocol_name = v == Version::v31 ? "MQIsdp" : "MQTT";
        c.client_id = kClientIds[slot];
        feed(*ls, mqtt::encode(mqtt::Packet{std::move(c)}, v));
        return;
      }
      case 1: feed(*ls, std::string("\xF0\x00", 2)); return;
      case 2: feed(*ls, std::string("\x00\x00", 2)); return;
      default: feed(*ls, std::string("\x36\x03\x00\x01\x61", 5)); return;
    }
  }

  void op_backlog(int slot, unsigned level) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    static constexpr size_t kBytes[4] = {0, 300u * 1024, 5u * 1024 * 1024, 20u * 1024 * 1024};
    ls->link->set_pending_bytes(kBytes[level & 3]);
    if (level >= 2) ls->link->last_write_ms = services_.now_steady_ms() - 10'000;
    else ls->link->last_write_ms = services_.now_steady_ms();
    if (level == 0 && ls->link->wants_writable) world_.broker->on_link_writable(ls->link.get());
  }

  void op_autoack(int slot) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    Epoch* e = epoch_of(*ls);
    if (e == nullptr) return;
    std::vector<mqtt::PubAck> acks;
    for (const auto& [id, f] : e->inflight) {
      if (f.qos == 1) acks.push_back(pub_ack(PacketType::Puback, id));
      else if (!f.pubrec_delivered) acks.push_back(pub_ack(PacketType::Pubrec, id));
      else if (f.pubrel_seen) acks.push_back(pub_ack(PacketType::Pubcomp, id));
    }
    for (const auto& [id, f] : e->own)
      if (f.state == OwnState::GotPubrec) acks.push_back(pub_ack(PacketType::Pubrel, id));
    for (auto& a : acks) {
      if (ls->link->close_requested() || ls->link->closed()) return;
      send(*ls, std::move(a));
    }
  }

  void op_resend(int slot) {
    LinkState* ls = current(slot);
    if (ls == nullptr) return;
    Epoch* e = epoch_of(*ls);
    if (e == nullptr) return;
    std::vector<mqtt::Packet> packets;
    for (const auto& [id, f] : e->own) {
      if (f.state == OwnState::GotPubrec || f.state == OwnState::Released) {
        packets.emplace_back(pub_ack(PacketType::Pubrel, id));
        continue;
      }
      mqtt::Publish p;
      p.qos = f.qos;
      p.packet_id = id;
      p.topic = f.topic;
      p.payload = f.payload;
      p.retain = f.retain;
      p.dup = true;
      packets.emplace_back(std::move(p));
    }
    for (auto& p : packets) {
      if (ls->link->close_requested() || ls->link->closed()) return;
      send(*ls, std::move(p));
    }
  }

  // ------------------------------------------------------------ the connection layer

  void send(LinkState& ls, mqtt::Packet packet) {
    const Version v = std::holds_alternative<mqtt::Connect>(packet)
                          ? std::get<mqtt::Connect>(packet).version
                          : ls.link->version();
    feed(ls, mqtt::encode(packet, v));
  }

  // What Connection::process_input does with bytes from the socket.
  void feed(LinkState& ls, const std::string& bytes) {
    if (ls.link->closed() || ls.link->close_requested()) return;
    ls.server->feed(bytes);
    for (;;) {
      if (ls.link->closed() || ls.link->close_requested()) return;
      auto next = ls.server->next();
      if (!next) {
        world_.broker->on_protocol_error(ls.link.get(), next.error());
        return;
      }
      if (!next->has_value()) return;
      mqtt::Packet& packet = **next;
      if (auto* c = std::get_if<mqtt::Connect>(&packet)) {
        ls.link->set_version(c->version);
        ls.connect = *c;
        make_client_protocol(ls);
        world_.broker->on_connect(ls.link.get(), std::move(*c));
        drain_all();
        continue;
      }
      if (ls.link->session != nullptr) note_client_packet(ls, packet);
      world_.broker->on_packet(ls.link.get(), std::move(packet));
      // Read what the broker wrote before the client's next packet reaches it, so the model
      // sees both in the broker's order.
      drain_all();
    }
  }

  // Newest first: a takeover's CONNACK marks the older connection before its output is read.
  void drain_all() {
    for (auto it = links_.rbegin(); it != links_.rend(); ++it) drain(**it);
  }

  void make_client_protocol(LinkState& ls) {
    uint32_t max_size = mqtt::kMaxRemainingLength + 5;
    if (ls.connect && ls.connect->props.maximum_packet_size)
      max_size = *ls.connect->props.maximum_packet_size;
    ls.client = std::make_unique<mqtt::ClientProtocol>(ls.link->version(), max_size);
    ls.client->set_max_topic_alias(0);
  }

  void close_link(std::unique_ptr<LinkState>& ls) {
    if (ls->link->closed()) return;
    drain(*ls);  // what was written before the socket went
    world_.broker->on_link_closed(ls->link.get());
    ls->link->mark_closed();
  }

  void end_of_iteration() {
    world_.broker->flush_outboxes();
    services_.run_posted(*world_.broker);
    drain_all();
  }

  // ------------------------------------------------------------ the model: client packets

  Epoch* epoch_of(LinkState& ls) {
    return ls.epoch >= 0 && ls.connack_ok ? &epochs_[static_cast<size_t>(ls.epoch)] : nullptr;
  }

  // Epochs a message may be routed to: the current session of each client id and every
  // session with an assigned id.
  std::vector<int> live_epochs() const {
    std::vector<int> ids;
    for (int slot = 0; slot < kSlots; ++slot)
      if (slot_epoch_[slot] >= 0) ids.push_back(slot_epoch_[slot]);
    for (int id : anonymous_epochs_) ids.push_back(id);
    return ids;
  }

  // One send of `rec` that the broker may route: adds the routes every session has now.
  void note_routable_send(MsgRecord& rec, bool starts_segment) {
    if (rec.new_segment || starts_segment) {
      for (const auto& [e, n] : rec.segment_max) rec.bound_closed[e] += n;
      rec.segment_max.clear();
      rec.new_segment = false;
      rec.segment_start_ms = services_.now_steady_ms();
    }
    if (!rec.is_will && (rec.topic == "$SYS" || rec.topic.starts_with("$SYS/"))) return;
    for (int id : live_epochs()) {
      const int n = routes_to(epochs_[static_cast<size_t>(id)], id, rec.topic, rec.origin_epoch);
      if (n == 0) continue;
      rec.allowed.insert(id);
      int& best = rec.segment_max[id];
      best = std::max(best, n);
    }
  }

  void note_client_packet(LinkState& ls, const mqtt::Packet& packet) {
    Epoch* e = epoch_of(ls);
    if (e == nullptr) violation("a packet reached the broker on a link the model has no session for");
    if (const auto* p = std::get_if<mqtt::Publish>(&packet)) {
      if (!p->payload.empty()) {
        auto [it, fresh] = messages_.try_emplace(p->payload);
        MsgRecord& rec = it->second;
        if (fresh) {
          rec.topic = p->topic;
          rec.qos = p->qos;
          rec.retain = p->retain;
          rec.origin_epoch = ls.epoch;
          rec.first_step = step_;
        }
        note_routable_send(rec, p->qos < 2);
      }
      if (p->qos == 1) ls.owed_puback[p->packet_id]++;
      if (p->qos == 2) {
        ls.owed_pubrec[p->packet_id]++;
        ls.unanswered_pubrec.insert(p->packet_id);
      }
      if (p->qos > 0 && !mqtt::is_v5(ls.link->version()) && world_.ctx->store != nullptr && sink_.degraded())
        ls.may_be_refused = true;
      if (p->qos > 0) {
        OwnFlow& f = e->own[p->packet_id];
        if (f.payload != p->payload || f.qos != p->qos) {
          f = OwnFlow{p->payload, p->topic, p->qos, p->retain,
                      p->qos == 1 ? OwnState::AwaitPuback : OwnState::AwaitPubrec};
        }
      }
    } else if (const auto* a = std::get_if<mqtt::PubAck>(&packet)) {
      auto in = e->inflight.find(a->packet_id);
      // An acknowledgement for an id the client never saw may still end (or advance) a flow
      // whose PUBLISH the broker holds for the store: what it writes for that id later is
      // not trusted (see InflightOut::uncertain), and a PUBREL for it may follow.
      if (in == e->inflight.end() && a->type != PacketType::Pubrel) e->clouded.insert(a->packet_id);
      switch (a->type) {
        case PacketType::Puback:
          if (in != e->inflight.end() && in->second.qos == 1) e->inflight.erase(in);
          break;
        case PacketType::Pubrec:
          if (in != e->inflight.end() && in->second.qos == 2) {
            if (mqtt::is_error(a->reason)) e->inflight.erase(in);
            else in->second.pubrec_delivered = true;
          }
          break;
        case PacketType::Pubcomp:
          if (in != e->inflight.end() && in->second.qos == 2 && in->second.pubrec_delivered)
            e->inflight.erase(in);
          break;
        case PacketType::Pubrel: {
          ls.owed_pubcomp[a->packet_id]++;
          ls.unanswered_pubcomp.insert(a->packet_id);
          auto own = e->own.find(a->packet_id);
          if (own == e->own.end() || own->second.qos != 2) break;
          if (own->second.state == OwnState::AwaitPubrec) {
            // Released before PUBREC: the broker may forget the flow and route a resend again.
            if (auto m = messages_.find(own->second.payload); m != messages_.end())
              m->second.new_segment = true;
          } else {
            own->second.state = OwnState::Released;
          }
          break;
        }
        default: break;
      }
    } else if (const auto* sub = std::get_if<mqtt::Subscribe>(&packet)) {
      ls.owed_suback.emplace_back(sub->packet_id, sub->topics.size());
      for (const auto& t : sub->topics) {
        e->subs[t.filter] = t.no_local;
        e->sub_history.emplace_back(step_, t.filter);
      }
    } else if (const auto* unsub = std::get_if<mqtt::Unsubscribe>(&packet)) {
      ls.owed_unsuback.emplace_back(unsub->packet_id, unsub->filters.size());
      for (const auto& f : unsub->filters) e->subs.erase(f);
    } else if (std::holds_alternative<mqtt::Pingreq>(packet)) {
      ls.owed_pingresp++;
    }
  }

  // L: once everything is durable, every connection still up has its answers: a PUBACK for
  // each QoS 1 PUBLISH, a PUBREC after the last QoS 2 PUBLISH of an id (one may answer
  // several resends), a PUBCOMP after the last PUBREL of an id.
  void check_all_answered() {
    for (auto& lp : links_) {
      LinkState& ls = *lp;
      if (ls.link->closed() || ls.link->close_requested() || ls.link->session == nullptr ||
          ls.superseded || ls.may_be_refused)
        continue;
      const std::string where = "link " + std::to_string(ls.link->link_id()) + ": ";
      for (const auto& [id, n] : ls.owed_puback)
        if (n > 0) violation(where + "QoS 1 PUBLISH " + hex_id(id) + " never acknowledged, all durable");
      if (!ls.unanswered_pubrec.empty())
        violation(where + "QoS 2 PUBLISH " + hex_id(*ls.unanswered_pubrec.begin()) +
                  " never answered with PUBREC, all durable [MQTT-4.3.3-8]");
      if (!ls.unanswered_pubcomp.empty())
        violation(where + "PUBREL " + hex_id(*ls.unanswered_pubcomp.begin()) +
                  " never answered with PUBCOMP, all durable [MQTT-4.3.3-11]");
    }
  }

  // The broker forgets an acknowledged inbound QoS 2 flow after await_rel_timeout: a resend
  // after that may be routed again.
  void note_sweep() {
    const int64_t timeout = settings_.await_rel_timeout.count();
    if (timeout <= 0) return;
    const int64_t now = services_.now_steady_ms();
    for (auto& e : epochs_) {
      for (const auto& [id, f] : e.own) {
        if (f.qos != 2) continue;
        auto m = messages_.find(f.payload);
        if (m != messages_.end() && now - m->second.segment_start_ms > timeout) m->second.new_segment = true;
      }
    }
  }

  // A will is published once, at a moment the model does not know exactly (a timer, a
  // takeover, a closed link): its routes are the most it had at any step since it was set.
  void accumulate_wills() {
    for (const std::string& payload : pending_wills_) note_routable_send(messages_[payload], false);
  }

  // ------------------------------------------------------------ the model: broker output

  void drain(LinkState& ls) {
    std::string bytes = ls.link->take_output();
    if (bytes.empty()) return;
    if (!ls.client) make_client_protocol(ls);
    ls.client->feed(bytes);
    for (;;) {
      auto next = ls.client->next();
      if (!next) {
        violation("link " + std::to_string(ls.link->link_id()) +
                  ": broker output does not decode: " + next.error().message);
      }
      if (!next->has_value()) break;
      on_server_packet(ls, **next);
    }
    if (ls.client->buffered() != 0) {
      if (ls.client->phase() == mqtt::ProtocolPhase::Closed) {
        violation("link " + std::to_string(ls.link->link_id()) +
                  ": bytes after a DISCONNECT or a refused CONNACK [MQTT-3.14.4-1]");
      } else {
        violation("link " + std::to_string(ls.link->link_id()) + ": partial packet written");
      }
    }
  }

  void on_server_packet(LinkState& ls, const mqtt::Packet& packet) {
    const std::string where = "link " + std::to_string(ls.link->link_id()) + ": ";
    if (trace_mode()) {
      std::string text = std::string(mqtt::to_string(mqtt::packet_type(packet)));
      if (const auto* p = std::get_if<mqtt::Publish>(&packet)) {
        text += " '" + p->topic + "' '" + p->payload.substr(0, 12) + "' q" + std::to_string(p->qos) +
                " id " + std::to_string(p->packet_id) + (p->dup ? " dup" : "") + (p->retain ? " retain" : "");
      } else if (const auto* a = std::get_if<mqtt::PubAck>(&packet)) {
        text += " " + std::to_string(a->packet_id) + " rc " + std::to_string(static_cast<int>(a->reason));
      } else if (const auto* c = std::get_if<mqtt::Connack>(&packet)) {
        text += std::string(" present ") + (c->session_present ? "1" : "0") + " rc " +
                std::to_string(static_cast<int>(c->reason));
      }
      std::fprintf(stderr, "  %s(slot %d) <- %s\n", where.c_str(), ls.slot, text.c_str());
    }
    if (ls.superseded && (step_ > ls.superseded_step || !std::holds_alternative<mqtt::Disconnect>(packet)))
      violation(where + "packet written to a connection after its session was taken over");
    if (const auto* ack = std::get_if<mqtt::Connack>(&packet)) return on_connack(ls, *ack, where);
    if (const auto* p = std::get_if<mqtt::Publish>(&packet)) return on_delivery(ls, *p, where);
    if (const auto* a = std::get_if<mqtt::PubAck>(&packet)) return on_server_ack(ls, *a, where);
    if (const auto* s = std::get_if<mqtt::Suback>(&packet)) {
      auto it = ls.owed_suback.begin();
      while (it != ls.owed_suback.end() && it->first != s->packet_id) ++it;
      if (it == ls.owed_suback.end()) violation(where + "SUBACK " + hex_id(s->packet_id) + " answers no SUBSCRIBE");
      if (it->second != s->reasons.size()) violation(where + "SUBACK with a code count unlike its SUBSCRIBE");
      ls.owed_suback.erase(it);
      return;
    }
    if (const auto* u = std::get_if<mqtt::Unsuback>(&packet)) {
      auto it = ls.owed_unsuback.begin();
      while (it != ls.owed_unsuback.end() && it->first != u->packet_id) ++it;
      if (it == ls.owed_unsuback.end()) violation(where + "UNSUBACK " + hex_id(u->packet_id) + " answers no UNSUBSCRIBE");
      if (mqtt::is_v5(ls.link->version()) && it->second != u->reasons.size())
        violation(where + "UNSUBACK with a code count unlike its UNSUBSCRIBE");
      ls.owed_unsuback.erase(it);
      return;
    }
    if (std::holds_alternative<mqtt::Pingresp>(packet)) {
      if (ls.owed_pingresp-- <= 0) violation(where + "PINGRESP without PINGREQ");
      return;
    }
    if (std::holds_alternative<mqtt::Auth>(packet)) violation(where + "AUTH without enhanced authentication");
  }

  void on_connack(LinkState& ls, const mqtt::Connack& ack, const std::string& where) {
    if (!ls.connect) violation(where + "CONNACK on a link that sent no CONNECT");
    const mqtt::Connect& c = *ls.connect;
    if (mqtt::is_error(ack.reason)) return;  // ClientProtocol: nothing may follow
    ls.connack_ok = true;
    if (ack.session_present && c.clean_start) violation(where + "session present after clean start [MQTT-3.2.2-2]");
    const bool v5 = mqtt::is_v5(c.version);
    if (ls.anonymous) {
      if (ack.session_present) violation(where + "session present for an assigned client id");
      ls.epoch = new_epoch(ls.slot, true);
      anonymous_epochs_.push_back(ls.epoch);
    } else {
      int& current = slot_epoch_[ls.slot];
      if (ack.session_present) {
        if (current < 0) violation(where + "session present for a client that never had a session");
      } else {
        current = new_epoch(ls.slot, false);
      }
      ls.epoch = current;
      for (auto& other : links_) {
        LinkState& o = *other;
        if (&o == &ls || o.slot != ls.slot || o.anonymous || !o.connack_ok || o.superseded ||
            o.link->closed())
          continue;
        o.superseded = true;
        o.superseded_step = step_;
      }
    }
    Epoch& e = epochs_[static_cast<size_t>(ls.epoch)];
    if (v5 && c.props.maximum_packet_size && *c.props.maximum_packet_size < 4096) e.tainted = true;
    uint32_t window = settings_.max_inflight_window;
    if (v5 && c.props.receive_maximum) window = std::min<uint32_t>(window, *c.props.receive_maximum);
    ls.window = std::max<uint32_t>(1, std::min<uint32_t>(window, 65535));
    if (c.will) {
      auto [it, fresh] = messages_.try_emplace(c.will->payload);
      if (!fresh) violation("will payload reused");
      MsgRecord& rec = it->second;
      rec.topic = c.will->topic;
      rec.qos = c.will->qos;
      rec.retain = c.will->retain;
      rec.is_will = true;
      rec.origin_epoch = ls.epoch;
      rec.first_step = step_;
      note_routable_send(rec, false);
      pending_wills_.push_back(c.will->payload);
    }
  }

  int new_epoch(int slot, bool anonymous) {
    epochs_.emplace_back();
    epochs_.back().slot = slot;
    epochs_.back().anonymous = anonymous;
    return static_cast<int>(epochs_.size() - 1);
  }

  void on_delivery(LinkState& ls, const mqtt::Publish& p, const std::string& where) {
    Epoch* e = epoch_of(ls);
    if (e == nullptr) violation(where + "PUBLISH before a successful CONNACK");
    const std::string what = where + "PUBLISH '" + p.topic + "' '" + p.payload.substr(0, 16) +
                             "' id " + hex_id(p.packet_id) + " dup " + (p.dup ? "1" : "0") + ": ";
    // ---- P: packet ids ----
    bool new_flow = !p.dup;
    if (p.qos > 0 && !e->tainted) {
      auto in = e->inflight.find(p.packet_id);
      const bool clouded = in == e->inflight.end() && e->clouded.count(p.packet_id) != 0;
      if (in != e->inflight.end() && in->second.uncertain &&
          (!p.dup || in->second.payload != p.payload)) {
        e->inflight.erase(in);  // the broker may not have had it: a new flow may take the id
        in = e->inflight.end();
      }
      if (clouded) {
        // A PUBLISH for an id the client acknowledged before seeing it: a new delivery to
        // the client (counted in Q), tracked as uncertain (the broker may still hold the
        // acknowledgement's effect for the older flow).
        InflightOut f{p.payload, p.qos, false, false, ls.link->link_id()};
        f.uncertain = true;
        e->inflight[p.packet_id] = std::move(f);
        e->clouded.erase(p.packet_id);  // the id's next flow is an ordinary one
        new_flow = true;
      } else if (in != e->inflight.end()) {
        InflightOut& f = in->second;
        if (!p.dup) violation(what + "packet id still in flight [MQTT-2.2.1-3]");
        if (f.payload != p.payload || f.qos != p.qos)
          violation(what + "DUP resend of a different message under that id");
        if (f.pubrec_delivered && !f.uncertain) violation(what + "PUBLISH resent after the client's PUBREC");
        if (mqtt::is_v5(ls.link->version()) && f.last_link == ls.link->link_id() && !f.uncertain)
          violation(what + "5.0 resend on the same connection [MQTT-4.4.0-1]");
        f.last_link = ls.link->link_id();
      } else {
        // A PUBLISH (also DUP=1) of an id not in flight is new to the client: a DUP=1 one
        // legitimately so when its first send was held for the store and dropped with the
        // old connection. Counted in Q; a resend of a flow that was already over would
        // exceed the routes and fail there (Q+).
        new_flow = true;
        InflightOut f{p.payload, p.qos, false, false, ls.link->link_id()};
        e->inflight[p.packet_id] = std::move(f);
      }
      // The send quota is per connection: it counts the PUBLISH packets sent on this one and
      // not acknowledged; a flow carried over that only needs its PUBREL again is not in it
      // (MQTT 5 section 4.9).
      size_t on_this_link = 0;
      for (const auto& [id, f] : e->inflight) on_this_link += !f.uncertain && f.last_link == ls.link->link_id();
      if (on_this_link > ls.window)
        violation(what + "more PUBLISH in flight on this connection than the Receive Maximum / window of " +
                  std::to_string(ls.window) + " [MQTT-4.9.0-2]");
    }
    if (p.payload.empty()) return;  // a retained-message clear: not identifiable
    // ---- S: who may get it ----
    auto it = messages_.find(p.payload);
    if (it == messages_.end()) violation(what + "a message nobody published");
    MsgRecord& rec = it->second;
    if (p.topic != rec.topic) violation(what + "topic differs from the published one");
    if (p.qos > rec.qos) violation(what + "QoS above the published QoS");
    if (p.retain && !rec.retain) violation(what + "RETAIN set on a message published without it");
    const bool live_ok = rec.allowed.count(ls.epoch) != 0;
    bool retained_ok = false;
    if (rec.retain && p.retain) {
      for (const auto& [at, filter] : e->sub_history) {
        if (at >= rec.first_step && !shared_part(filter) && filter_matches(filter, rec.topic)) {
          retained_ok = true;
          break;
        }
      }
    }
    if (!live_ok && !retained_ok)
      violation(what + "no matching subscription when it was published (or after UNSUBSCRIBE)");
    // ---- Q: how often ----
    if (rec.counted() && new_flow) {
      const int seen = ++rec.flows[ls.epoch];
      if (seen > rec.bound(ls.epoch))
        violation(what + "delivered " + std::to_string(seen) + " times as new, routes allow " +
                  std::to_string(rec.bound(ls.epoch)));
    }
  }

  void on_server_ack(LinkState& ls, const mqtt::PubAck& a, const std::string& where) {
    Epoch* e = epoch_of(ls);
    if (e == nullptr) violation(where + "acknowledgement before a successful CONNACK");
    const std::string id = hex_id(a.packet_id);
    auto owed = [&](std::map<uint16_t, int>& m, const char* what) {
      auto it = m.find(a.packet_id);
      if (it == m.end() || it->second <= 0)
        violation(where + what + " " + id + " answers nothing received on this connection");
      if (--it->second == 0) m.erase(it);
    };
    switch (a.type) {
      case PacketType::Puback: {
        owed(ls.owed_puback, "PUBACK");
        auto f = e->own.find(a.packet_id);
        if (f != e->own.end() && f->second.qos == 1) e->own.erase(f);
        return;
      }
      case PacketType::Pubrec: {
        owed(ls.owed_pubrec, "PUBREC");
        ls.unanswered_pubrec.erase(a.packet_id);
        auto f = e->own.find(a.packet_id);
        if (f != e->own.end() && f->second.qos == 2) {
          if (mqtt::is_error(a.reason)) e->own.erase(f);
          else if (f->second.state == OwnState::AwaitPubrec) f->second.state = OwnState::GotPubrec;
        }
        return;
      }
      case PacketType::Pubcomp: {
        owed(ls.owed_pubcomp, "PUBCOMP");
        ls.unanswered_pubcomp.erase(a.packet_id);
        auto f = e->own.find(a.packet_id);
        if (f != e->own.end() && f->second.qos == 2 && f->second.state == OwnState::Released)
          e->own.erase(f);
        return;
      }
      case PacketType::Pubrel: {
        if (mqtt::is_error(a.reason) || e->tainted) return;
        auto in = e->inflight.find(a.packet_id);
        if (e->clouded.count(a.packet_id) != 0) return;
        if (in == e->inflight.end() || in->second.qos != 2 ||
            (!in->second.pubrec_delivered && !in->second.uncertain))
          violation(where + "PUBREL " + id + " for a flow the client did not PUBREC");
        in->second.pubrel_seen = true;
        return;
      }
      default: return;
    }
  }

  Settings settings_;
  FuzzServices services_;
  FuzzSink sink_;
  support::OneShard world_;
  std::vector<std::unique_ptr<LinkState>> links_;
  uint64_t next_link_id_ = 100;
  uint64_t payload_counter_ = 0;
  size_t step_ = 0;
  std::vector<Epoch> epochs_;
  int slot_epoch_[kSlots] = {-1, -1, -1, -1};
  std::vector<int> anonymous_epochs_;
  std::map<std::string, MsgRecord> messages_;
  std::vector<std::string> pending_wills_;
};

}  // namespace
}  // namespace harbor::broker::fuzz

// Entropic scheduling spends most of each run re-weighting this target's many features
// (measured: ~180 exec/s with it, ~1000 without); it is turned off unless the command line
// asks for it again (flags given later win).
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  static std::vector<char*> args;
  static char entropic_off[] = "-entropic=0";
  args.assign(*argv, *argv + *argc);
  args.insert(args.begin() + (args.empty() ? 0 : 1), entropic_off);
  args.push_back(nullptr);
  *argc = static_cast<int>(args.size() - 1);
  *argv = args.data();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  harbor::broker::fuzz::Script script(data + 1, size - 1);
  harbor::broker::fuzz::BrokerFuzz fuzz(data[0]);
  fuzz.run(script);
  return 0;
}
