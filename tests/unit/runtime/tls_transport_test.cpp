// TlsTransport (runtime/tls_transport.hpp) as pure data: a wire::TlsSession client on the
// other side, the bytes moved by hand. The handshake, MQTT bytes both ways, the close reasons
// (a failed handshake, the client's close_notify) and our close_notify.
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
  Files() {
    auto ca_key = make_key();
    auto ca_cert = make_cert({.common_name = "CA", .is_ca = true}, ca_key.get());
    auto server_key = make_key();
    auto server = make_cert({.common_name = "localhost", .alt_names = "DNS:localhost"},
                            server_key.get(), ca_cert.get(), ca_key.get());
    write_pem(ca, {ca_cert.get()});
    write_pem(cert, {server.get()});
    write_pem(key, server_key.get());
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

}  // namespace
}  // namespace harbor::runtime
