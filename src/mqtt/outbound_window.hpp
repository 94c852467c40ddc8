// The sending side of QoS 1 and QoS 2 for one session or client connection, sans-I/O:
// packet ids, the in-flight states, the peer's Receive Maximum, resend with DUP, and order.
// Pure data: no clocks (time is an argument, int64 milliseconds of any steady clock), no
// I/O, no threads, no logging, no exceptions. Used by the broker for every session, by the
// client tools (bench, pub) and by bridge links, so it knows nothing of their types: the
// message is a template parameter.
//
// Also here: InboundQuota, the receiving side's Receive Maximum count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mqtt/types.hpp"

namespace harbor::mqtt {

// The state of one in-flight message. The values are those of the in-flight states of
// broker::OutState (the store's column), so a stored state maps by a cast.
enum class OutboundState : uint8_t {
  AwaitPuback = 1,   // QoS 1 PUBLISH sent, waiting for PUBACK
  AwaitPubrec = 2,   // QoS 2 PUBLISH sent, waiting for PUBREC
  AwaitPubcomp = 3,  // QoS 2 PUBREC received and PUBREL sent, waiting for PUBCOMP
};

std::string_view to_string(OutboundState s);

// What can happen to an in-flight entry.
enum class WindowEvent : uint8_t {
  Puback,         // PUBACK received (any reason code: the QoS 1 flow ends either way)
  Pubrec,         // PUBREC received with a reason below 0x80
  PubrecRefused,  // PUBREC received with a reason of 0x80 or more
  Pubcomp,        // PUBCOMP received (any reason code)
  Resend,         // reconnect, or a 3.1.1 retry: send the entry's last packet again
};

// What a window event asks the caller to do.
enum class WindowAction : uint8_t {
  Nothing,          // nothing to write (QoS 0 given to submit: not a flow)
  SendPublish,      // write PUBLISH(handle, packet_id, qos, dup)
  SendPubrel,       // write PUBREL(packet_id, reason)
  Release,          // the flow is over: the handle is given back (`reason`: the ack's)
  Full,             // submit: no room now; keep the message queued, in order
  NoPacketId,       // submit: all 65,535 packet ids are in flight; keep it queued
  UnknownPacketId,  // an acknowledgement for an id not in flight; nothing changed
  ProtocolError,    // an acknowledgement of the wrong kind for the id's state; nothing
                    // changed; close the connection with `reason` (0x82)
};

std::string_view to_string(WindowAction a);

struct WindowTransition {
  WindowAction action = WindowAction::Nothing;
  OutboundState next = OutboundState::AwaitPuback;  // the entry's state after it (not Release)
};

// The one transition function of an in-flight entry: every state change of OutboundWindow
// goes through it. Release removes the entry; ProtocolError leaves it as it was.
constexpr WindowTransition window_transition(OutboundState from, WindowEvent event) {
  using S = OutboundState;
  using A = WindowAction;
  switch (from) {
    case S::AwaitPuback:
      switch (event) {
        case WindowEvent::Puback: return {A::Release, from};
        case WindowEvent::Resend: return {A::SendPublish, from};  // DUP=1 [MQTT-3.3.1-1]
        // PUBREC or PUBCOMP answer QoS 2 only [MQTT-4.3.2-2].
        default: return {A::ProtocolError, from};
      }
    case S::AwaitPubrec:
      switch (event) {
        case WindowEvent::Pubrec: return {A::SendPubrel, S::AwaitPubcomp};  // [MQTT-4.3.3-4]
        // The receiver refused it: the flow ends, the id is free (MQTT 5 §4.3.3).
        case WindowEvent::PubrecRefused: return {A::Release, from};
        case WindowEvent::Resend: return {A::SendPublish, from};  // DUP=1 [MQTT-3.3.1-1]
        // PUBACK for a QoS 2 id, PUBCOMP before any PUBREL was sent.
        default: return {A::ProtocolError, from};
      }
    case S::AwaitPubcomp:
      switch (event) {
        case WindowEvent::Pubcomp: return {A::Release, from};
        // A repeated PUBREC (the receiver saw a resent PUBLISH): PUBREL again.
        case WindowEvent::Pubrec: return {A::SendPubrel, from};
        // Refused after accepting: the receiver has dropped the flow; so do we.
        case WindowEvent::PubrecRefused: return {A::Release, from};
        // Never the PUBLISH again once PUBREL was sent [MQTT-4.3.3-6].
        case WindowEvent::Resend: return {A::SendPubrel, from};
        case WindowEvent::Puback: return {A::ProtocolError, from};
      }
  }
  return {A::ProtocolError, from};
}

// What the window asks for, for one event or one entry.
template <class Handle>
struct WindowOutput {
  WindowAction action = WindowAction::Nothing;
  uint16_t packet_id = 0;
  QoS qos = 0;                               // SendPublish
  bool dup = false;                          // SendPublish
  ReasonCode reason = ReasonCode::Success;   // SendPubrel: its reason; Release: the ack's;
                                             // ProtocolError: what to close with
  const Handle* publish = nullptr;           // SendPublish: the message to write; also set
                                             // for a resent PUBREL (its entry's handle);
                                             // valid until the window is next changed
  Handle released{};                         // Release: the message, moved out of the window
};

// A set of packet ids in one lazily allocated 8 KiB bitmap: what OutboundWindow falls back
// to when its ids are no longer in allocation order (see there). Owner thread only.
class PacketIdSet {
 public:
  bool active() const { return bits_ != nullptr; }
  void activate();  // allocates the (empty) bitmap
  void reset() { bits_.reset(); }
  bool contains(uint16_t id) const { return (bits_[id >> 6] >> (id & 63)) & 1U; }
  void insert(uint16_t id) { bits_[id >> 6] |= uint64_t{1} << (id & 63); }
  void erase(uint16_t id) { bits_[id >> 6] &= ~(uint64_t{1} << (id & 63)); }
  // The first id not in the set from `from` on (cyclically over 1..65535), or 0 if all are.
  uint16_t first_free_from(uint16_t from) const;

 private:
  std::unique_ptr<uint64_t[]> bits_;  // 1024 words; bit 0 (packet id 0) always set
};

// OutboundWindow<Handle>: the QoS 1/2 messages sent and not yet acknowledged, in the order
// they were submitted, each with its packet id and state.
//
// Owner: one thread (the session's shard, the tool's worker); not thread-safe. Every call
// returns before anything else happens: outputs come back only from the call that caused
// them, as its return value or through its `sink`, in the order they must be written.
//
// Handle: the caller's message (for the broker a refcounted message pointer or a small
// struct holding it; in tests an int). Default-constructible (an empty handle) and movable;
// the window moves it in on submit/restore and out on Release, never copies it.
//
// Order: messages are sent in submission order, resent in that order, and a new message
// never overtakes one waiting for room. The window does not queue: when it has no room,
// submit() answers Full and the caller keeps the message at the head of its own bounded
// queue (the broker's session queue, the bench's counter), then submits it again after a
// Release (and resume()) has made room. A caller that has a message waiting must not
// submit a later one.
//
// Bounds: at most 65,535 entries (one per packet id). The send quota (the peer's Receive
// Maximum, or the caller's max_inflight, whichever is smaller) counts the PUBLISH packets
// sent on the current connection that are not acknowledged yet (PUBACK, PUBCOMP, or PUBREC
// 0x80+) [MQTT-4.9.0-2]; an entry in AwaitPubcomp restored or carried over from an earlier
// connection only needs its PUBREL resent, which no quota holds back [MQTT-4.9.0-3], so
// the window may hold more entries than the quota. Memory: sizeof(OutboundWindow) ≤ 64
// bytes idle (trim() frees the array), plus one entry (sizeof(Handle) + 16 bytes rounded)
// per slot of a power-of-two array while busy, plus an 8 KiB id bitmap only while packet
// ids are out of allocation order (an id wrapped onto the oldest entry, or restored ids
// in no order); it is freed when the window empties.
//
// Sinks: on_connected, resume and on_retry_tick call `sink(const WindowOutput<Handle>&)`
// once per packet to write, in order, with SendPublish (dup=1) or SendPubrel. The sink may
// return void, or bool: false for a SendPublish means "not written and never will be"
// (e.g. larger than the peer's Maximum Packet Size [MQTT-3.1.2-25]) and the window drops
// the entry as if it were delivered (the caller frees what it keeps for it in the sink).
// A sink must not call back into the window.
template <class Handle>
class OutboundWindow {
 public:
  struct Entry {
    Handle handle{};
    int64_t sent_ms = 0;  // when its last packet was written (for the 3.1.1 retry)
    uint16_t packet_id = 0;
    OutboundState state = OutboundState::AwaitPuback;
    uint8_t flags = 0;  // window-internal: kCounted, kOwed
    QoS qos() const { return state == OutboundState::AwaitPuback ? 1 : 2; }
  };
  using Output = WindowOutput<Handle>;

  OutboundWindow() = default;
  OutboundWindow(OutboundWindow&&) noexcept = default;
  OutboundWindow& operator=(OutboundWindow&&) noexcept = default;

  // ---- events ----

  // A connection is up (the first one or a reconnect with the session kept): `version` and
  // `send_quota` (min of the peer's Receive Maximum — 65,535 when absent, always in 3.1.1 —
  // and the caller's own limit; 0 is taken as 1) hold until the next on_connected.
  // Outputs, through `sink`, in order: for each entry, PUBLISH with DUP=1 (AwaitPuback,
  // AwaitPubrec) while the quota lasts, PUBREL (AwaitPubcomp) always [MQTT-4.4.0-1],
  // [MQTT-4.6.0-1]; PUBLISH resends beyond the quota wait (owed) for resume().
  template <class Sink>
  void on_connected(Version version, uint16_t send_quota, int64_t now_ms, Sink&& sink);

  // The connection is gone. Entries stay; nothing is sent until on_connected. No outputs.
  void on_disconnected() { connected_ = false; }

  // A new QoS 1/2 message to send, in order after every earlier one. Returns:
  //   SendPublish (packet_id, qos, dup=0, publish → the handle, now owned by the window);
  //   Full: not connected, no quota left, or resends owed — `handle` untouched, keep it;
  //   NoPacketId: 65,535 entries already — `handle` untouched, keep it;
  //   Nothing: qos is 0 (not a flow; a caller bug) — `handle` untouched.
  // `handle` is moved from only when SendPublish is returned. If the caller then cannot
  // write the PUBLISH at all, it takes the entry back with discard().
  Output submit(Handle&& handle, QoS qos, int64_t now_ms);

  // Acknowledgements from the peer. Each returns one output:
  //   on_puback:  Release (handle, the PUBACK's reason) | ProtocolError (a QoS 2 id) |
  //               UnknownPacketId.
  //   on_pubrec:  SendPubrel (reason Success; the entry is now AwaitPubcomp; a repeated
  //               PUBREC gets PUBREL again) | Release (reason 0x80+: refused) |
  //               ProtocolError (a QoS 1 id [MQTT-4.3.2-2]) | for an unknown id: in MQTT 5
  //               SendPubrel with 0x92 Packet Identifier not found, in 3.1.1 UnknownPacketId.
  //   on_pubcomp: Release (handle, the PUBCOMP's reason) | ProtocolError (QoS 1 id, or
  //               PUBREL not sent yet) | UnknownPacketId.
  // UnknownPacketId changes nothing; in 3.1.1 it is expected after a retry (the peer
  // acknowledges both copies), so callers ignore it rather than close. After a Release
  // there is room: call resume() (if owed() > 0), then submit from the queue.
  Output on_puback(uint16_t packet_id, ReasonCode reason = ReasonCode::Success);
  Output on_pubrec(uint16_t packet_id, ReasonCode reason, int64_t now_ms);
  Output on_pubcomp(uint16_t packet_id, ReasonCode reason = ReasonCode::Success);

  // After a Release: sends (through `sink`, PUBLISH with DUP=1) the resends owed since
  // on_connected that now fit the quota, in order. Nothing if owed() == 0.
  template <class Sink>
  void resume(int64_t now_ms, Sink&& sink);

  // A periodic tick. MQTT 3.1.1, connected, retry_interval_ms > 0: every entry sent on
  // this connection whose last packet is at least retry_interval_ms old is sent again
  // through `sink` (PUBLISH with DUP=1, or PUBREL), in order. MQTT 5: nothing, ever — a
  // message is resent only on reconnect [MQTT-4.4.0-1].
  template <class Sink>
  void on_retry_tick(int64_t now_ms, int64_t retry_interval_ms, Sink&& sink);

  // ---- state restore and removal ----

  // An entry from persistent storage (at startup, before on_connected): appended in the
  // order of the calls (the original send order) with its packet id; resent by the next
  // on_connected. False (nothing changed) if packet_id is 0 or already in use, or 65,535
  // entries are held.
  bool restore(Handle&& handle, OutboundState state, uint16_t packet_id);
  // Removes an entry without an acknowledgement (its PUBLISH could not be written);
  // returns its handle, or nullopt for an unknown id. Frees its quota.
  std::optional<Handle> discard(uint16_t packet_id);
  // Drops every entry (the session is discarded). No outputs.
  void clear();
  // Frees the array when empty (an idle session then costs sizeof(*this)).
  void trim();

  // ---- inspection ----
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  bool connected() const { return connected_; }
  uint16_t send_quota() const { return limit_; }
  uint16_t quota_used() const { return in_quota_; }
  size_t owed() const { return owed_; }
  // Whether submit() would send now (connected, quota left, nothing owed, an id free).
  bool has_room() const {
    return connected_ && in_quota_ < limit_ && owed_ == 0 && size_ < kMaxEntries;
  }
  // How many submit() calls would send now (0 when has_room() is false).
  size_t room() const {
    if (!has_room()) return 0;
    return std::min<size_t>(limit_ - in_quota_, kMaxEntries - size_);
  }
  // The entry with this packet id, or nullptr; valid until the window is next changed.
  const Entry* find(uint16_t packet_id) const {
    const uint32_t i = index_of(packet_id);
    return i == kNotFound ? nullptr : &at(i);
  }
  // The handle of the entry with this packet id, for the caller's own fields (never its
  // order or identity), or nullptr; valid until the window is next changed.
  Handle* handle_of(uint16_t packet_id) {
    const uint32_t i = index_of(packet_id);
    return i == kNotFound ? nullptr : &at(i).handle;
  }
  // Calls f(const Entry&) for every entry, oldest first.
  template <class F>
  void for_each(F&& f) const {
    for (uint32_t i = 0; i < size_; ++i) f(at(i));
  }

 private:
  static constexpr uint32_t kMaxEntries = 65535;
  static constexpr uint32_t kNotFound = 0xFFFFFFFF;
  static constexpr uint8_t kCounted = 1;  // its PUBLISH went out on this connection: holds quota
  static constexpr uint8_t kOwed = 2;     // to be resent on this connection, waiting for quota

  static uint16_t next_id(uint16_t id) { return id == 65535 ? 1 : static_cast<uint16_t>(id + 1); }
  // Distance from `base` to `id` going up through 1..65535 (0..65534).
  static uint32_t id_offset(uint16_t base, uint16_t id) {
    return (static_cast<uint32_t>(id) + 65535 - base) % 65535;
  }

  Entry& at(uint32_t i) { return buf_[(head_ + i) & (cap_ - 1)]; }
  const Entry& at(uint32_t i) const { return buf_[(head_ + i) & (cap_ - 1)]; }
  void push_back(Entry&& e);
  void erase_at(uint32_t i);
  void grow();
  uint32_t index_of(uint16_t packet_id) const;
  uint16_t allocate_id();
  void use_bitmap();
  Output apply(uint16_t packet_id, WindowEvent event, ReasonCode reason, int64_t now_ms);
  Output resend(uint32_t i, int64_t now_ms);
  template <class Sink>
  bool emit(Sink& sink, const Output& out);
  // Resends entry i through `sink`; returns the index of the next entry (i + 1, or i when the
  // sink refused a PUBLISH and the entry was dropped).
  template <class Sink>
  uint32_t resend_through(uint32_t i, int64_t now_ms, Sink& sink);

  // Entries in submission order: a growable circular array (capacity a power of two).
  std::unique_ptr<Entry[]> buf_;
  // Packet ids in use, only while they are out of allocation order; otherwise the ids of
  // the entries ascend (cyclically) from the oldest and all lie before next_id_, so
  // next_id_ is free unless it has come round to the oldest entry's id.
  PacketIdSet ids_;
  uint32_t cap_ = 0;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  uint16_t next_id_ = 1;
  uint16_t limit_ = 65535;  // the send quota
  uint16_t in_quota_ = 0;   // entries with kCounted
  uint16_t owed_ = 0;       // entries with kOwed
  Version version_ = Version::v311;
  bool connected_ = false;
};

// The receiving side's Receive Maximum (MQTT 5): QoS 1 and 2 PUBLISH packets received and
// not yet acknowledged. Owner thread only; no outputs besides return values; 4 bytes.
class InboundQuota {
 public:
  explicit InboundQuota(uint16_t receive_maximum = 65535) { reset(receive_maximum); }
  // A new connection advertising `receive_maximum` (0 is taken as 1): nothing is
  // unacknowledged on it yet.
  void reset(uint16_t receive_maximum) {
    limit_ = receive_maximum == 0 ? 1 : receive_maximum;
    unacked_ = 0;
  }
  // A QoS 1/2 PUBLISH arrived (not a resent QoS 2 PUBLISH whose flow is already held).
  // Success: counted. ReceiveMaximumExceeded: it is one more than we allowed; close with
  // DISCONNECT 0x93 (MQTT 5 §3.3.4; the sender broke [MQTT-3.3.4-7]). Not counted then.
  [[nodiscard]] ReasonCode on_publish() {
    if (unacked_ >= limit_) return ReasonCode::ReceiveMaximumExceeded;
    ++unacked_;
    return ReasonCode::Success;
  }
  // Its flow ended on our side: PUBACK sent, PUBREC with a reason of 0x80+ sent, PUBCOMP
  // sent (or the QoS 2 state was dropped). Never goes below zero.
  void on_acknowledged() {
    if (unacked_ > 0) --unacked_;
  }
  uint16_t unacknowledged() const { return unacked_; }
  uint16_t receive_maximum() const { return limit_; }

 private:
  uint16_t limit_ = 65535;
  uint16_t unacked_ = 0;
};

// ---------------------------------------------------------------- implementation

template <class Handle>
template <class Sink>
void OutboundWindow<Handle>::on_connected(Version version, uint16_t send_quota, int64_t now_ms,
                                          Sink&& sink) {
  version_ = version;
  limit_ = send_quota == 0 ? 1 : send_quota;
  connected_ = true;
  in_quota_ = 0;
  owed_ = 0;
  for (uint32_t i = 0; i < size_; ++i) at(i).flags = 0;
  for (uint32_t i = 0; i < size_;) {
    Entry& e = at(i);
    if (e.state != OutboundState::AwaitPubcomp && in_quota_ >= limit_) {
      e.flags = kOwed;
      ++owed_;
      ++i;
      continue;
    }
    i = resend_through(i, now_ms, sink);
  }
}

template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::submit(Handle&& handle, QoS qos,
                                                                       int64_t now_ms) {
  Output out;
  if (qos != 1 && qos != 2) return out;
  if (!connected_ || in_quota_ >= limit_ || owed_ > 0) {
    out.action = WindowAction::Full;
    return out;
  }
  const uint16_t id = size_ < kMaxEntries ? allocate_id() : 0;
  if (id == 0) {
    out.action = WindowAction::NoPacketId;
    return out;
  }
  Entry e;
  e.handle = std::move(handle);
  e.sent_ms = now_ms;
  e.packet_id = id;
  e.state = qos == 1 ? OutboundState::AwaitPuback : OutboundState::AwaitPubrec;
  e.flags = kCounted;
  push_back(std::move(e));
  if (ids_.active()) ids_.insert(id);
  ++in_quota_;
  out.action = WindowAction::SendPublish;
  out.packet_id = id;
  out.qos = qos;
  out.publish = &at(size_ - 1).handle;
  return out;
}

template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::on_puback(uint16_t packet_id,
                                                                          ReasonCode reason) {
  return apply(packet_id, WindowEvent::Puback, reason, 0);
}

template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::on_pubrec(uint16_t packet_id,
                                                                          ReasonCode reason,
                                                                          int64_t now_ms) {
  return apply(packet_id, is_error(reason) ? WindowEvent::PubrecRefused : WindowEvent::Pubrec,
               reason, now_ms);
}

template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::on_pubcomp(uint16_t packet_id,
                                                                           ReasonCode reason) {
  return apply(packet_id, WindowEvent::Pubcomp, reason, 0);
}

template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::apply(uint16_t packet_id,
                                                                      WindowEvent event,
                                                                      ReasonCode reason,
                                                                      int64_t now_ms) {
  Output out;
  out.packet_id = packet_id;
  const uint32_t i = index_of(packet_id);
  if (i == kNotFound) {
    if (event != WindowEvent::Pubrec || !is_v5(version_)) {
      out.action = WindowAction::UnknownPacketId;
      return out;
    }
    // The flow is unknown here: tell the receiver so it can drop its state (MQTT 5 §4.3.3).
    out.action = WindowAction::SendPubrel;
    out.reason = ReasonCode::PacketIdentifierNotFound;
    return out;
  }
  Entry& e = at(i);
  const WindowTransition t = window_transition(e.state, event);
  out.action = t.action;
  switch (t.action) {
    case WindowAction::Release:
      out.reason = reason;
      out.released = std::move(e.handle);
      erase_at(i);
      break;
    case WindowAction::SendPubrel:
      e.state = t.next;
      e.sent_ms = now_ms;
      if (e.flags & kOwed) {  // acknowledged before we resent it: nothing owed any more
        e.flags &= static_cast<uint8_t>(~kOwed);
        --owed_;
      }
      break;
    case WindowAction::ProtocolError:
      out.reason = ReasonCode::ProtocolError;
      break;
    default:
      break;
  }
  return out;
}

template <class Handle>
template <class Sink>
void OutboundWindow<Handle>::resume(int64_t now_ms, Sink&& sink) {
  if (owed_ == 0 || !connected_) return;
  for (uint32_t i = 0; i < size_ && owed_ > 0 && in_quota_ < limit_;) {
    if (!(at(i).flags & kOwed)) {
      ++i;
      continue;
    }
    at(i).flags &= static_cast<uint8_t>(~kOwed);
    --owed_;
    i = resend_through(i, now_ms, sink);
  }
}

template <class Handle>
template <class Sink>
void OutboundWindow<Handle>::on_retry_tick(int64_t now_ms, int64_t retry_interval_ms, Sink&& sink) {
  // MQTT 5 forbids resending while connected [MQTT-4.4.0-1]; 3.1.1 allows it.
  if (is_v5(version_) || !connected_ || retry_interval_ms <= 0) return;
  for (uint32_t i = 0; i < size_;) {
    const Entry& e = at(i);
    if ((e.flags & kOwed) || now_ms - e.sent_ms < retry_interval_ms) {
      ++i;
      continue;
    }
    i = resend_through(i, now_ms, sink);
  }
}

// Entry i's packet again (its Resend transition); counts the quota a PUBLISH takes.
template <class Handle>
typename OutboundWindow<Handle>::Output OutboundWindow<Handle>::resend(uint32_t i, int64_t now_ms) {
  Entry& e = at(i);
  const WindowTransition t = window_transition(e.state, WindowEvent::Resend);
  e.state = t.next;
  e.sent_ms = now_ms;
  Output out;
  out.action = t.action;
  out.packet_id = e.packet_id;
  out.publish = &e.handle;
  if (t.action == WindowAction::SendPublish) {
    out.qos = e.qos();
    out.dup = true;
    if (!(e.flags & kCounted)) {
      e.flags |= kCounted;
      ++in_quota_;
    }
  }
  return out;
}

template <class Handle>
template <class Sink>
uint32_t OutboundWindow<Handle>::resend_through(uint32_t i, int64_t now_ms, Sink& sink) {
  if (emit(sink, resend(i, now_ms))) return i + 1;
  erase_at(i);
  return i;
}

// Hands `out` to the sink; false when the sink refused a PUBLISH (the entry is to go).
template <class Handle>
template <class Sink>
bool OutboundWindow<Handle>::emit(Sink& sink, const Output& out) {
  if constexpr (std::is_void_v<std::invoke_result_t<Sink&, const Output&>>) {
    sink(out);
    return true;
  } else {
    return static_cast<bool>(sink(out)) || out.action != WindowAction::SendPublish;
  }
}

template <class Handle>
bool OutboundWindow<Handle>::restore(Handle&& handle, OutboundState state, uint16_t packet_id) {
  if (packet_id == 0 || size_ >= kMaxEntries) return false;
  if (!ids_.active() && size_ > 0) {
    // Still in allocation order if it comes after the newest entry.
    const uint16_t base = at(0).packet_id;
    if (packet_id == base || id_offset(base, packet_id) <= id_offset(base, at(size_ - 1).packet_id))
      use_bitmap();
  }
  if (ids_.active()) {
    if (ids_.contains(packet_id)) return false;
    ids_.insert(packet_id);
  }
  Entry e;
  e.handle = std::move(handle);
  e.packet_id = packet_id;
  e.state = state;
  push_back(std::move(e));
  next_id_ = next_id(packet_id);
  return true;
}

template <class Handle>
std::optional<Handle> OutboundWindow<Handle>::discard(uint16_t packet_id) {
  const uint32_t i = index_of(packet_id);
  if (i == kNotFound) return std::nullopt;
  std::optional<Handle> h(std::move(at(i).handle));
  erase_at(i);
  return h;
}

template <class Handle>
void OutboundWindow<Handle>::clear() {
  buf_.reset();
  ids_.reset();
  cap_ = head_ = size_ = 0;
  in_quota_ = owed_ = 0;
}

template <class Handle>
void OutboundWindow<Handle>::trim() {
  if (size_ != 0) return;
  buf_.reset();
  cap_ = head_ = 0;
}

template <class Handle>
void OutboundWindow<Handle>::push_back(Entry&& e) {
  if (size_ == cap_) grow();
  buf_[(head_ + size_) & (cap_ - 1)] = std::move(e);
  ++size_;
}

// Removes entry i, keeping the order of the others, by moving whichever side is shorter.
// Entries before i keep their index; those after it move down by one.
template <class Handle>
void OutboundWindow<Handle>::erase_at(uint32_t i) {
  Entry& e = at(i);
  if (e.flags & kCounted) --in_quota_;
  if (e.flags & kOwed) --owed_;
  if (ids_.active()) ids_.erase(e.packet_id);
  if (i < size_ / 2) {
    for (uint32_t j = i; j > 0; --j) at(j) = std::move(at(j - 1));
    at(0) = Entry{};
    head_ = (head_ + 1) & (cap_ - 1);
  } else {
    for (uint32_t j = i; j + 1 < size_; ++j) at(j) = std::move(at(j + 1));
    at(size_ - 1) = Entry{};
  }
  if (--size_ == 0) {
    head_ = 0;
    ids_.reset();  // back in allocation order
  }
}

template <class Handle>
void OutboundWindow<Handle>::grow() {
  const uint32_t cap = cap_ == 0 ? 4 : cap_ * 2;
  auto next = std::make_unique<Entry[]>(cap);
  for (uint32_t i = 0; i < size_; ++i) next[i] = std::move(at(i));
  buf_ = std::move(next);
  cap_ = cap;
  head_ = 0;
}

template <class Handle>
uint32_t OutboundWindow<Handle>::index_of(uint16_t packet_id) const {
  if (size_ == 0 || packet_id == 0) return kNotFound;
  if (at(0).packet_id == packet_id) return 0;  // acknowledgements mostly come in order
  if (ids_.active()) {
    if (!ids_.contains(packet_id)) return kNotFound;
    for (uint32_t i = 1; i < size_; ++i)
      if (at(i).packet_id == packet_id) return i;
    return kNotFound;
  }
  // In allocation order: ids ascend from the oldest, and entry i is at offset ≥ i (the
  // gaps are acknowledged ids), so a binary search over [1, offset] finds it.
  const uint16_t base = at(0).packet_id;
  const uint32_t key = id_offset(base, packet_id);
  if (key > id_offset(base, at(size_ - 1).packet_id)) return kNotFound;
  uint32_t lo = 1;
  uint32_t hi = std::min<uint32_t>(key, size_ - 1);
  if (at(hi).packet_id == packet_id) return hi;  // nothing before it acknowledged yet
  while (lo <= hi) {
    const uint32_t mid = lo + (hi - lo) / 2;
    const uint32_t off = id_offset(base, at(mid).packet_id);
    if (off == key) return mid;
    if (off < key) {
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return kNotFound;
}

template <class Handle>
uint16_t OutboundWindow<Handle>::allocate_id() {
  // Never an id in flight [MQTT-2.2.1-3]; cyclic, so a just-released id is not reused at once.
  if (!ids_.active()) {
    if (size_ == 0 || next_id_ != at(0).packet_id) {
      const uint16_t id = next_id_;
      next_id_ = next_id(id);
      return id;
    }
    use_bitmap();  // come round to the oldest entry, still in flight: skip the ids in use
  }
  const uint16_t id = ids_.first_free_from(next_id_);
  if (id != 0) next_id_ = next_id(id);
  return id;
}

template <class Handle>
void OutboundWindow<Handle>::use_bitmap() {
  ids_.activate();
  for (uint32_t i = 0; i < size_; ++i) ids_.insert(at(i).packet_id);
}

}  // namespace harbor::mqtt
