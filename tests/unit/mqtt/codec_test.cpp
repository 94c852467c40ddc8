// Encoder/decoder round trips for every packet type and version, exact wire bytes for
// reference packets, and the stream decoder fed at every fragment size.
#include "mqtt/codec.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "mqtt/samples.hpp"

namespace harbor::mqtt {
namespace {

using testing::bytes_of;
using testing::name_of;
using testing::sample_packets;

// Decodes exactly one whole packet from `wire` with the free decode() function.
Result<Packet> decode_whole(std::string_view wire, Version v) {
  Decoder d;
  d.set_version(v);
  d.feed(wire);
  auto r = d.next();
  if (!r) return tl::unexpected(r.error());
  EXPECT_TRUE(r->has_value()) << "incomplete packet";
  EXPECT_EQ(d.buffered(), 0u);
  if (!*r) return fail(ReasonCode::UnspecifiedError, "incomplete");
  return std::move(**r);
}

std::string hex(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) out += {digits[c >> 4], digits[c & 15], ' '};
  return out;
}

class RoundTrip : public ::testing::TestWithParam<Version> {};

TEST_P(RoundTrip, EveryPacketTypeDecodesToWhatWasEncoded) {
  const Version v = GetParam();
  for (const auto& sample : sample_packets(v)) {
    SCOPED_TRACE(sample.name);
    std::string wire = encode(sample.packet, v);
    auto decoded = decode_whole(wire, v);
    ASSERT_TRUE(decoded) << decoded.error().message << " in " << hex(wire);
    EXPECT_EQ(*decoded, sample.packet);
    // The free decode() on the body agrees with the Decoder.
    size_t header = 1;
    while (static_cast<uint8_t>(wire[header]) & 0x80) ++header;
    ++header;
    auto direct = decode(
        static_cast<uint8_t>(wire[0]),
        std::span(reinterpret_cast<const uint8_t*>(wire.data()) + header, wire.size() - header), v);
    ASSERT_TRUE(direct) << direct.error().message;
    EXPECT_EQ(*direct, sample.packet);
    // Encoding is deterministic and appends.
    std::string twice = wire;
    encode(sample.packet, v, twice);
    EXPECT_EQ(twice, wire + wire);
  }
}

TEST_P(RoundTrip, EveryPacketDecodesIdenticallyAtEveryFragmentSize) {
  const Version v = GetParam();
  // The whole sample stream, so that fragments also straddle packet boundaries.
  std::string stream;
  std::vector<Packet> expected;
  for (const auto& sample : sample_packets(v)) {
    encode(sample.packet, v, stream);
    expected.push_back(sample.packet);
  }
  for (size_t step = 1; step <= stream.size(); ++step) {
    Decoder d;
    d.set_version(v);
    std::vector<Packet> got;
    for (size_t pos = 0; pos < stream.size(); pos += step) {
      const size_t n = std::min(step, stream.size() - pos);
      // Alternate the copying and the zero-copy interfaces.
      if (step % 2 == 0) {
        d.feed(std::string_view(stream).substr(pos, n));
      } else {
        auto room = d.prepare(n);
        ASSERT_GE(room.size(), n);
        std::memcpy(room.data(), stream.data() + pos, n);
        d.commit(n);
      }
      for (;;) {
        auto r = d.next();
        ASSERT_TRUE(r) << "step " << step << ": " << r.error().message;
        if (!*r) break;
        got.push_back(std::move(**r));
      }
    }
    ASSERT_EQ(got.size(), expected.size()) << "step " << step;
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], expected[i]) << "step " << step;
    ASSERT_EQ(d.buffered(), 0u);
    // Large steps are all equivalent to one feed; skip ahead to keep the test fast.
    if (step > 64 && step < stream.size() - 64) step += step / 4;
  }
}

TEST_P(RoundTrip, EachPacketAloneAtEveryFragmentSize) {
  const Version v = GetParam();
  for (const auto& sample : sample_packets(v)) {
    SCOPED_TRACE(sample.name);
    const std::string wire = encode(sample.packet, v);
    const size_t max_step = std::min<size_t>(wire.size(), 600);
    for (size_t step = 1; step <= max_step; ++step) {
      Decoder d;
      d.set_version(v);
      std::optional<Packet> got;
      for (size_t pos = 0; pos < wire.size(); pos += step) {
        d.feed(std::string_view(wire).substr(pos, std::min(step, wire.size() - pos)));
        auto r = d.next();
        ASSERT_TRUE(r) << r.error().message;
        if (*r) {
          ASSERT_FALSE(got) << "two packets from one";
          got = std::move(**r);
        }
      }
      ASSERT_TRUE(got) << "step " << step;
      ASSERT_EQ(*got, sample.packet) << "step " << step;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllVersions, RoundTrip,
                         ::testing::Values(Version::v31, Version::v311, Version::v5),
                         [](const auto& info) { return name_of(info.param); });

// Reference encodings, written out by hand from the spec's layouts.
TEST(Encode, Connect311Bytes) {
  Connect c;
  c.client_id = "ab";
  c.keep_alive = 60;
  EXPECT_EQ(encode(c, Version::v311), std::string("\x10\x0E\x00\x04MQTT\x04\x02\x00\x3C\x00\x02"
                                                  "ab",
                                                  16));
}

TEST(Encode, Connect31UsesMQIsdp) {
  Connect c;
  c.version = Version::v31;
  c.client_id = "ab";
  EXPECT_EQ(encode(c, Version::v31), std::string("\x10\x10\x00\x06MQIsdp\x03\x02\x00\x3C\x00\x02"
                                                 "ab",
                                                 18));
}

TEST(Encode, Connect5HasEmptyPropertyLength) {
  Connect c;
  c.version = Version::v5;
  c.client_id = "ab";
  EXPECT_EQ(encode(c, Version::v5), std::string("\x10\x0F\x00\x04MQTT\x05\x02\x00\x3C\x00\x00\x02"
                                                "ab",
                                                17));
}

TEST(Encode, ConnackMapsReasonTo311ReturnCode) {
  Connack c;
  c.reason = ReasonCode::BadUserNameOrPassword;
  EXPECT_EQ(encode(c, Version::v311), std::string("\x20\x02\x00\x04", 4));
  c.reason = ReasonCode::Banned;
  EXPECT_EQ(encode(c, Version::v311), std::string("\x20\x02\x00\x05", 4));
  c.reason = ReasonCode::ServerBusy;
  EXPECT_EQ(encode(c, Version::v311), std::string("\x20\x02\x00\x03", 4));
  c.reason = ReasonCode::Success;
  c.session_present = true;
  EXPECT_EQ(encode(c, Version::v5), std::string("\x20\x03\x01\x00\x00", 5));
}

TEST(Encode, PublishQoS0HasNoPacketId) {
  Publish p;
  p.topic = "t";
  p.payload = "x";
  p.retain = true;
  EXPECT_EQ(encode(p, Version::v311), std::string("\x31\x04\x00\x01tx", 6));
  EXPECT_EQ(encode(p, Version::v5), std::string("\x31\x05\x00\x01t\x00x", 7));
}

TEST(Encode, PubAckShortForms5) {
  // Section 3.4.2.1: Success without properties → packet id only.
  PubAck a;
  a.packet_id = 0x0102;
  EXPECT_EQ(encode(a, Version::v5), std::string("\x40\x02\x01\x02", 4));
  a.reason = ReasonCode::NoMatchingSubscribers;
  EXPECT_EQ(encode(a, Version::v5), std::string("\x40\x03\x01\x02\x10", 5));
  a.props.reason_string = "r";
  EXPECT_EQ(encode(a, Version::v5), std::string("\x40\x08\x01\x02\x10\x04\x1F\x00\x01r", 10));
  // 3.1.1 drops reason and properties.
  EXPECT_EQ(encode(a, Version::v311), std::string("\x40\x02\x01\x02", 4));
}

TEST(Encode, PubrelCarriesFlags0010) {
  PubAck a;
  a.type = PacketType::Pubrel;
  a.packet_id = 1;
  EXPECT_EQ(encode(a, Version::v311), std::string("\x62\x02\x00\x01", 4));
}

TEST(Encode, SubscribeAndUnsubscribeCarryFlags0010) {
  Subscribe s;
  s.packet_id = 1;
  s.topics.push_back({"a", 1});
  EXPECT_EQ(encode(s, Version::v311), std::string("\x82\x06\x00\x01\x00\x01"
                                                  "a\x01",
                                                  8));
  Unsubscribe u;
  u.packet_id = 1;
  u.filters = {"a"};
  EXPECT_EQ(encode(u, Version::v311), std::string("\xA2\x05\x00\x01\x00\x01"
                                                  "a",
                                                  7));
}

TEST(Encode, SubscribeOptions5) {
  Subscribe s;
  s.packet_id = 1;
  s.topics.push_back({"a", 2, true, true, 2});
  EXPECT_EQ(encode(s, Version::v5), std::string("\x82\x07\x00\x01\x00\x00\x01"
                                                "a\x2E",
                                                9));
}

TEST(Encode, SubackFailureIs0x80In311) {
  Suback s;
  s.packet_id = 1;
  s.reasons = {ReasonCode::GrantedQoS1, ReasonCode::TopicFilterInvalid, ReasonCode::NotAuthorized};
  EXPECT_EQ(encode(s, Version::v311), std::string("\x90\x05\x00\x01\x01\x80\x80", 7));
  EXPECT_EQ(encode(s, Version::v5), std::string("\x90\x06\x00\x01\x00\x01\x8F\x87", 8));
}

TEST(Encode, UnsubackHasNoReasonCodesIn311) {
  Unsuback u;
  u.packet_id = 3;
  u.reasons = {ReasonCode::Success};
  EXPECT_EQ(encode(u, Version::v311), std::string("\xB0\x02\x00\x03", 4));
  EXPECT_EQ(encode(u, Version::v5), std::string("\xB0\x04\x00\x03\x00\x00", 6));
}

TEST(Encode, DisconnectShortForms) {
  Disconnect d;
  EXPECT_EQ(encode(d, Version::v5), std::string("\xE0\x00", 2));
  d.reason = ReasonCode::DisconnectWithWill;
  EXPECT_EQ(encode(d, Version::v5), std::string("\xE0\x01\x04", 3));
  d.props.session_expiry_interval = 1;
  EXPECT_EQ(encode(d, Version::v5), std::string("\xE0\x07\x04\x05\x11\x00\x00\x00\x01", 9));
  // 3.1.1 DISCONNECT has no body whatever the reason.
  EXPECT_EQ(encode(d, Version::v311), std::string("\xE0\x00", 2));
}

TEST(Encode, AuthShortFormAndNothingBefore5) {
  EXPECT_EQ(encode(Auth{}, Version::v5), std::string("\xF0\x00", 2));
  EXPECT_EQ(encode(Auth{}, Version::v311), "");
}

TEST(Encode, PingPackets) {
  EXPECT_EQ(encode(Pingreq{}, Version::v311), std::string("\xC0\x00", 2));
  EXPECT_EQ(encode(Pingresp{}, Version::v5), std::string("\xD0\x00", 2));
}

TEST(Encode, RemainingLengthBoundaries) {
  // Section 1.5.5 examples: 127 → 1 byte, 128 → 2, 16383 → 2, 16384 → 3, 2097152 → 4.
  for (uint32_t n : {0u, 127u, 128u, 16'383u, 16'384u, 2'097'151u, 2'097'152u, 268'435'455u}) {
    std::string s;
    put_varint(s, n);
    EXPECT_EQ(s.size(), varint_size(n)) << n;
  }
  std::string s;
  put_varint(s, 321);
  EXPECT_EQ(s, "\xC1\x02");
  Publish p;
  p.topic = "t";
  for (size_t payload : {124u, 125u, 16'379u, 16'380u}) {
    p.payload.assign(payload, 'p');
    std::string wire = encode(p, Version::v311);
    auto back = decode_whole(wire, Version::v311);
    ASSERT_TRUE(back) << payload;
    EXPECT_EQ(std::get<Publish>(*back), p);
  }
}

TEST(Properties, SizeMatchesEncoding) {
  for (const auto& sample : sample_packets(Version::v5)) {
    std::visit(
        [&](const auto& p) {
          if constexpr (requires { p.props; }) {
            std::string out;
            encode_properties(p.props, out);
            EXPECT_EQ(out.size(), properties_size(p.props)) << sample.name;
          }
        },
        sample.packet);
  }
}

TEST(Types, Names) {
  EXPECT_EQ(to_string(PacketType::Subscribe), "SUBSCRIBE");
  EXPECT_EQ(to_string(PacketType::Auth), "AUTH");
  EXPECT_EQ(to_string(ReasonCode::PacketTooLarge), "Packet too large");
  EXPECT_EQ(packet_type(Packet{PubAck{PacketType::Pubcomp, 1}}), PacketType::Pubcomp);
  EXPECT_EQ(packet_type(Packet{Auth{}}), PacketType::Auth);
  EXPECT_EQ(to_311_connack(ReasonCode::ClientIdentifierNotValid),
            ConnectReturnCode311::IdentifierRejected);
  EXPECT_EQ(to_311_connack(ReasonCode::UnsupportedProtocolVersion),
            ConnectReturnCode311::UnacceptableProtocolVersion);
  EXPECT_EQ(to_311_connack(ReasonCode::Success), ConnectReturnCode311::Accepted);
}

}  // namespace
}  // namespace harbor::mqtt
