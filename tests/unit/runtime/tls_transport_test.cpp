// TlsTransport (runtime/tls_transport.hpp) as pure data: a wire::TlsSession client on the
// other side, the bytes moved by hand. The handshake, MQTT bytes both ways, the close reasons
// (a failed handshake, the client's close_notify) and our close_notify. Then the client role
// (a bridge's link) against a wire::TlsSession server: output held until the handshake
// completes, and the refusals a bridge logs (an untrusted certificate, another name).
#include "runtime/tls_transport.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "support/test_pki.hpp"

namespace harbor::runtime {
namespace {

using wire::support::make_cert;
using wire::support::make_key;
using wire::support::write_pem;

struct Files {
  wire::support::TempDir dir;
  std::string ca = dir.file("ca.pem");
  std::string cert = dir.file("server.pem");
  std::string key = dir.file("server.key");
  std::string other_ca = dir.file("other_ca.pem");
  Files() {
    auto ca_key = make_key();
    auto ca_cert = make_cert({.common_name = "CA", .is_ca = true}, ca_key.get());
    auto server_key = make_key();
    auto server = make_cert({.common_name = "localhost", .alt_names = "DNS:localhost"},
                            server_key.get(), ca_cert.get(), ca_key.get());
    write_pem(ca, {ca_cert.get()});
    write_pem(cert, {server.get()});
    write_pem(key, server_key.get());
    auto other_key = make_key();
    write_pem(other_ca,
              {make_cert({.common_name = "Other CA", .is_ca = true}, other_key.get()).get()});
  }
};

const Files& files() {
  static const Files f;
  return f;
}

std::span<const uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class TlsTransportTest : public ::testing::Test {
 protected:
  // Moves bytes both ways until neither side has anything to send; returns the plaintext the
  // client decrypted.
  std::string pump(std::string to_server = {}) {
    std::string client_plain;
    for (int i = 0; i < 10; ++i) {
      if (!to_server.empty()) {
        const std::string_view plain = transport_.take(bytes_of(to_server));
        server_plain_ += plain;
        to_server.clear();
      }
      if (transport_.wire_pending() == 0) break;
      std::string back(transport_.wire());
      transport_.consume(back.size());
      client_.feed(back, client_plain, to_server);
      if (to_server.empty()) break;
    }
    return client_plain;
  }

  void handshake() {
    std::string hello;
    client_.start(hello);
    pump(hello);
    ASSERT_TRUE(transport_.established());
    ASSERT_TRUE(client_.established());
  }

  std::shared_ptr<const wire::TlsContext> server_ =
      *wire::TlsContext::server({.certfile = files().cert, .keyfile = files().key});
  std::shared_ptr<const wire::TlsContext> client_context_ =
      *wire::TlsContext::client({.cacertfile = files().ca, .server_name = "localhost"});
  TlsTransport transport_{server_};
  wire::TlsSession client_{client_context_};
  std::string server_plain_;
};

TEST_F(TlsTransportTest, HandshakeThenMqttBytesBothWays) {
  EXPECT_FALSE(transport_.handshake_done());
  handshake();
  EXPECT_TRUE(transport_.handshake_done());
  EXPECT_FALSE(transport_.ended());
  std::string cipher;
  ASSERT_TRUE(client_.write(std::string("\x10\x0c", 2) + "CONNECT-ish!", cipher));
  pump(cipher);
  EXPECT_EQ(server_plain_, std::string("\x10\x0c", 2) + "CONNECT-ish!");

  // Output larger than one record is encrypted in several, all decrypted in order.
  const std::string big(3 * TlsTransport::kMaxChunk + 7, 'x');
  for (size_t at = 0; at < big.size(); at += TlsTransport::kMaxChunk)
    ASSERT_TRUE(transport_.encrypt(std::string_view(big).substr(at, TlsTransport::kMaxChunk)));
  std::string back(transport_.wire());
  transport_.consume(back.size());
  EXPECT_EQ(transport_.wire_pending(), 0u);
  std::string plain, reply;
  client_.feed(back, plain, reply);
  EXPECT_EQ(plain, big);
}

TEST_F(TlsTransportTest, OurCloseSendsCloseNotifyOnce) {
  handshake();
  transport_.close();
  EXPECT_TRUE(transport_.close_sent());
  const size_t queued = transport_.wire_pending();
  EXPECT_GT(queued, 0u);
  transport_.close();
  EXPECT_EQ(transport_.wire_pending(), queued);
  std::string back(transport_.wire()), plain, reply;
  client_.feed(back, plain, reply);
  EXPECT_EQ(client_.state(), wire::TlsState::Closed);
}

TEST_F(TlsTransportTest, TheClientsCloseNotifyEndsTheStreamAndIsAnswered) {
  handshake();
  std::string cipher;
  ASSERT_TRUE(
      client_.write(std::string_view("\xe0\x00", 2), cipher));  // DISCONNECT, then close_notify
  client_.close(cipher);
  const std::string_view plain = transport_.take(bytes_of(cipher));
  EXPECT_EQ(plain, std::string_view("\xe0\x00", 2));
  EXPECT_TRUE(transport_.ended());
  EXPECT_EQ(transport_.end_reason(), "TLS close_notify from the client");
  EXPECT_TRUE(transport_.close_sent());
  EXPECT_GT(transport_.wire_pending(), 0u);  // our close_notify in reply
  EXPECT_FALSE(transport_.encrypt("late"));
}

TEST_F(TlsTransportTest, PlainMqttFailsTheHandshakeWithItsReason) {
  const std::string connect("\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04test", 18);
  EXPECT_TRUE(transport_.take(bytes_of(connect)).empty());
  EXPECT_TRUE(transport_.ended());
  EXPECT_FALSE(transport_.handshake_done());
  EXPECT_TRUE(transport_.end_reason().starts_with("TLS handshake failed: not TLS"))
      << transport_.end_reason();
  EXPECT_EQ(transport_.wire_pending(), 0u);  // nothing is sent back
}

TEST_F(TlsTransportTest, TrimGivesBackIdleBuffers) {
  handshake();
  std::string cipher;
  ASSERT_TRUE(client_.write(std::string(5000, 'p'), cipher));
  pump(cipher);
  EXPECT_GT(transport_.trim(), 0u);
  EXPECT_EQ(transport_.trim(), 0u);  // nothing left to give back
}

// The bridge's side: TlsTransport in the client role, a wire::TlsSession as the remote.
class TlsClientTransportTest : public ::testing::Test {
 protected:
  static std::shared_ptr<const wire::TlsContext> client_context(std::string ca, std::string name) {
    return *wire::TlsContext::client({.cacertfile = std::move(ca), .server_name = std::move(name)});
  }

  // Moves bytes both ways until neither side has anything to send; returns the plaintext
  // the transport decrypted (MQTT from the remote).
  std::string pump(TlsTransport& transport) {
    std::string from_remote;
    for (int i = 0; i < 10 && transport.wire_pending() != 0; ++i) {
      std::string to_remote(transport.wire());
      transport.consume(to_remote.size());
      std::string back;
      remote_.feed(to_remote, remote_plain_, back);
      if (back.empty()) break;
      from_remote += transport.take(bytes_of(back));
    }
    return from_remote;
  }

  std::shared_ptr<const wire::TlsContext> server_ =
      *wire::TlsContext::server({.certfile = files().cert, .keyfile = files().key});
  wire::TlsSession remote_{server_};
  std::string remote_plain_;
};

TEST_F(TlsClientTransportTest, ConnectIsHeldUntilTheHandshakeThenSentEncrypted) {
  TlsTransport transport(client_context(files().ca, "localhost"));
  const std::string connect(
      "\x10\x10\x00\x04MQTT\x04\x02\x00\x3c\x00\x04"
      "edge",
      18);
  // What the bridge writes first starts the handshake: the ClientHello goes out, the CONNECT
  // waits in the session.
  ASSERT_TRUE(transport.encrypt(connect));
  EXPECT_GT(transport.wire_pending(), 0u);
  EXPECT_FALSE(transport.established());
  pump(transport);
  EXPECT_TRUE(transport.established());
  EXPECT_TRUE(remote_.established());
  EXPECT_EQ(remote_plain_, connect);
  auto peer = transport.peer_certificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_TRUE(peer->verified);

  std::string cipher;
  ASSERT_TRUE(remote_.write(std::string_view("\x20\x02\x00\x00", 4), cipher));  // CONNACK
  EXPECT_EQ(transport.take(bytes_of(cipher)), std::string_view("\x20\x02\x00\x00", 4));

  cipher.clear();
  remote_.close(cipher);
  transport.take(bytes_of(cipher));
  EXPECT_TRUE(transport.ended());
  EXPECT_EQ(transport.end_reason(), "TLS close_notify from the server");
}

TEST_F(TlsClientTransportTest, ACertificateFromAnotherCaFailsWithOpenSslsReason) {
  TlsTransport transport(client_context(files().other_ca, "localhost"));
  ASSERT_TRUE(transport.encrypt("\xc0\x00"));
  pump(transport);
  EXPECT_TRUE(transport.ended());
  EXPECT_FALSE(transport.handshake_done());
  EXPECT_TRUE(
      transport.end_reason().starts_with("TLS handshake failed: certificate verify failed: "))
      << transport.end_reason();
  EXPECT_TRUE(remote_plain_.empty());  // the CONNECT never left
}

TEST_F(TlsClientTransportTest, ACertificateForAnotherNameFails) {
  TlsTransport transport(client_context(files().ca, "other.example"));
  ASSERT_TRUE(transport.encrypt("\xc0\x00"));
  pump(transport);
  EXPECT_TRUE(transport.ended());
  EXPECT_NE(transport.end_reason().find("hostname mismatch (expected \"other.example\")"),
            std::string::npos)
      << transport.end_reason();
  EXPECT_TRUE(remote_plain_.empty());
}

}  // namespace
}  // namespace harbor::runtime
