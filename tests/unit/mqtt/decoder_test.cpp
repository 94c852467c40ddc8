// Stream decoder behaviour: buffering, zero-copy feeding, size limit, sticky errors and
// version adoption.
#include <gtest/gtest.h>

#include <cstring>

#include "mqtt/codec.hpp"

namespace harbor::mqtt {
namespace {

Publish make_publish(size_t payload_size, uint16_t id = 1) {
  Publish p;
  p.qos = 1;
  p.packet_id = id;
  p.topic = "a/b";
  p.payload.assign(payload_size, 'z');
  return p;
}

TEST(Decoder, NeedsMoreBytesUntilPacketIsWhole) {
  const std::string wire = encode(make_publish(10), Version::v311);
  Decoder d;
  for (size_t i = 0; i + 1 < wire.size(); ++i) {
    d.feed(std::string_view(wire).substr(i, 1));
    auto r = d.next();
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r) << "byte " << i;
    EXPECT_EQ(d.buffered(), i + 1);
  }
  d.feed(std::string_view(wire).substr(wire.size() - 1));
  auto r = d.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<Publish>(**r), make_publish(10));
  EXPECT_EQ(d.buffered(), 0u);
}

TEST(Decoder, SeveralPacketsInOneFeed) {
  std::string wire;
  for (uint16_t i = 1; i <= 5; ++i) encode(make_publish(i, i), Version::v311, wire);
  Decoder d;
  d.feed(wire);
  for (uint16_t i = 1; i <= 5; ++i) {
    auto r = d.next();
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(std::get<Publish>(**r).packet_id, i);
  }
  auto r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
}

TEST(Decoder, PrepareGivesAtLeastTheRequestedRoom) {
  Decoder d;
  for (size_t n : {1u, 100u, 5000u, 70'000u}) {
    auto room = d.prepare(n);
    EXPECT_GE(room.size(), n);
  }
  EXPECT_EQ(d.buffered(), 0u);
}

// Steady state: packets read as fast as they arrive never move or grow the buffer.
TEST(Decoder, SteadyStateDoesNotReallocate) {
  const std::string wire = encode(make_publish(100), Version::v311);
  Decoder d;
  const uint8_t* first = nullptr;
  for (int i = 0; i < 10'000; ++i) {
    auto room = d.prepare(wire.size());
    if (!first) first = room.data();
    ASSERT_EQ(room.data(), first) << "iteration " << i;
    std::memcpy(room.data(), wire.data(), wire.size());
    d.commit(wire.size());
    auto r = d.next();
    ASSERT_TRUE(r && *r);
  }
}

// A packet that arrives in pieces holds only what arrived: a header that announces
// 256 MB and then silence costs a few bytes, not 256 MB (issue 10: a partial packet reserved
// its whole declared size up front, before any authentication).
TEST(Decoder, PartialPacketHoldsOnlyWhatArrived) {
  Decoder d;
  d.feed(std::string_view("\x30\xfb\xff\xff\x7f", 5));  // PUBLISH of 268,435,451 bytes
  auto r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_LE(d.reserved(), 1024u);
}

// Read in 1 KiB steps as a connection does, a large packet grows the buffer with the bytes
// received (doubling: few copies), and still decodes whole.
TEST(Decoder, LargePacketGrowsWithWhatArrives) {
  const std::string wire = encode(make_publish(100'000), Version::v311);
  Decoder d;
  size_t sent = 0;
  while (sent < wire.size()) {
    auto room = d.prepare(1024);
    size_t n = std::min(room.size(), std::min<size_t>(1024, wire.size() - sent));
    std::memcpy(room.data(), wire.data() + sent, n);
    d.commit(n);
    sent += n;
    EXPECT_LE(d.reserved(), 2 * sent + 2048) << "after " << sent << " bytes";
    auto r = d.next();
    ASSERT_TRUE(r);
    if (sent < wire.size()) {
      ASSERT_FALSE(*r);
    } else {
      ASSERT_TRUE(*r);
      EXPECT_EQ(std::get<Publish>(**r).payload.size(), 100'000u);
    }
  }
}

// Section 3.1.2.11.4 / the broker's own limit: larger packets are refused as soon as the
// fixed header says so.
TEST(Decoder, PacketLargerThanMaximumIsPacketTooLarge) {
  const std::string wire = encode(make_publish(200), Version::v5);
  Decoder d(100);
  d.set_version(Version::v5);
  d.feed(std::string_view(wire).substr(0, 3));  // header only
  auto r = d.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::PacketTooLarge);

  // Exactly the maximum is accepted.
  Decoder exact(static_cast<uint32_t>(wire.size()));
  exact.feed(wire);
  EXPECT_TRUE(exact.next());
  Decoder smaller(static_cast<uint32_t>(wire.size()));
  smaller.set_max_packet_size(static_cast<uint32_t>(wire.size() - 1));
  smaller.feed(wire);
  EXPECT_FALSE(smaller.next());
}

TEST(Decoder, ErrorsAreSticky) {
  Decoder d;
  d.feed(std::string("\xC0\x01x", 3));  // PINGREQ with a body
  auto first = d.next();
  ASSERT_FALSE(first);
  d.feed(std::string("\xC0\x00", 2));
  for (int i = 0; i < 3; ++i) {
    auto again = d.next();
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().reason, first.error().reason);
    EXPECT_EQ(again.error().message, first.error().message);
  }
}

TEST(Decoder, AdoptsTheVersionOfACONNECT) {
  Connect c;
  c.version = Version::v5;
  c.client_id = "x";
  PubAck ack;
  ack.packet_id = 9;
  ack.reason = ReasonCode::NoMatchingSubscribers;
  std::string wire = encode(c, Version::v5);
  encode(ack, Version::v5, wire);
  Decoder d;
  EXPECT_EQ(d.version(), Version::v311);
  d.feed(wire);
  ASSERT_TRUE(*d.next());
  EXPECT_EQ(d.version(), Version::v5);
  auto r = d.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(std::get<PubAck>(**r), ack);
}

// A refused CONNECT still tells the version, so the CONNACK can be encoded for the client.
TEST(Decoder, AdoptsTheLevelOfARefusedCONNECT) {
  Decoder d;
  d.feed(std::string("\x10\x0D\x00\x04MQTT\x05\x03\x00\x3C\x00\x00\x00", 15));  // reserved bit
  auto r = d.next();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().reason, ReasonCode::MalformedPacket);
  EXPECT_EQ(d.version(), Version::v5);
}

}  // namespace
}  // namespace harbor::mqtt
