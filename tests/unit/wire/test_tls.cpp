// TlsContext and TlsSession: a client session and a server session connected in memory, bytes
// pumped between them at every chunk size of the handshake and in random chunks, TLS 1.2 and
// 1.3; mutual TLS; the client's and the server's verification failures; a TLS 1.1 client and
// a plain MQTT client on the TLS port; close_notify; the contexts' file errors. Certificates
// are made at the start (tests/support/test_pki.hpp) into a temporary folder.
#include <gtest/gtest.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <random>

#include "support/test_pki.hpp"
#include "wire/tls.hpp"

namespace harbor::wire {
namespace {

using support::CertSpec;
using support::make_cert;
using support::make_key;
using support::write_pem;

constexpr const char* kKeyPassword = "harbor s3cret";

// Every file the tests use, made once for the whole program.
class Pki {
 public:
  static const Pki& get() {
    static const Pki pki;
    return pki;
  }
  std::string file(const std::string& name) const { return dir_.file(name); }

 private:
  Pki() {
    auto ca_key = make_key();
    auto ca = make_cert({.common_name = "HarborMQ test CA", .is_ca = true, .valid_to_days = 3650},
                        ca_key.get());
    write_pem(file("ca.pem"), {ca.get()});

    auto server_key = make_key();
    auto server =
        make_cert({.common_name = "localhost", .alt_names = "DNS:localhost,IP:127.0.0.1,IP:::1"},
                  server_key.get(), ca.get(), ca_key.get());
    write_pem(file("server.pem"), {server.get(), ca.get()});
    write_pem(file("server.key"), server_key.get());
    write_pem(file("server-encrypted.key"), server_key.get(), kKeyPassword);

    auto expired_key = make_key();
    auto expired = make_cert({.common_name = "localhost",
                              .alt_names = "DNS:localhost",
                              .valid_from_days = -30,
                              .valid_to_days = -1},
                             expired_key.get(), ca.get(), ca_key.get());
    write_pem(file("expired.pem"), {expired.get()});
    write_pem(file("expired.key"), expired_key.get());

    auto self_key = make_key();
    auto self =
        make_cert({.common_name = "localhost", .alt_names = "DNS:localhost"}, self_key.get());
    write_pem(file("self.pem"), {self.get()});
    write_pem(file("self.key"), self_key.get());

    auto client_key = make_key();
    auto client = make_cert(
        {.common_name = "client-1",
         .alt_names = "DNS:client-1.example,email:client-1@example.com,DNS:second.example"},
        client_key.get(), ca.get(), ca_key.get());
    write_pem(file("client.pem"), {client.get()});
    write_pem(file("client.key"), client_key.get());

    auto other_ca_key = make_key();
    auto other_ca = make_cert({.common_name = "Another CA", .is_ca = true, .valid_to_days = 3650},
                              other_ca_key.get());
    auto stranger_key = make_key();
    auto stranger = make_cert({.common_name = "stranger"}, stranger_key.get(), other_ca.get(),
                              other_ca_key.get());
    write_pem(file("stranger.pem"), {stranger.get()});
    write_pem(file("stranger.key"), stranger_key.get());

    std::FILE* junk = std::fopen(file("junk.pem").c_str(), "w");
    std::fputs("this is not PEM\n", junk);
    std::fclose(junk);
  }

  support::TempDir dir_;
};

std::string pki(const std::string& name) { return Pki::get().file(name); }

TlsServerOptions server_options() {
  return {.certfile = pki("server.pem"), .keyfile = pki("server.key")};
}

TlsClientOptions client_options() {
  return {.cacertfile = pki("ca.pem"), .server_name = "localhost"};
}

std::shared_ptr<const TlsContext> server_context(const TlsServerOptions& options) {
  auto context = TlsContext::server(options);
  if (!context) ADD_FAILURE() << context.error();
  return context ? *context : nullptr;
}

std::shared_ptr<const TlsContext> client_context(const TlsClientOptions& options) {
  auto context = TlsContext::client(options);
  if (!context) ADD_FAILURE() << context.error();
  return context ? *context : nullptr;
}

// A client session and a server session with the bytes in flight between them.
struct Link {
  Link(std::shared_ptr<const TlsContext> client_ctx, std::shared_ptr<const TlsContext> server_ctx)
      : client(std::move(client_ctx)), server(std::move(server_ctx)) {}

  // Moves the bytes in flight both ways, at most next_chunk() bytes per feed(), until none
  // are left. Returns the number of feed() calls.
  size_t pump(const std::function<size_t()>& next_chunk) {
    size_t feeds = 0;
    for (bool moved = true; moved;) {
      moved = false;
      moved |= move_one(to_server, to_server_sent, server, server_plain, to_client, next_chunk);
      moved |= move_one(to_client, to_client_sent, client, client_plain, to_server, next_chunk);
      feeds += moved;
    }
    return feeds;
  }
  size_t pump(size_t chunk = SIZE_MAX) {
    return pump([chunk] { return chunk; });
  }

  // Starts the client and pumps.
  void handshake(size_t chunk = SIZE_MAX) {
    client.start(to_server);
    pump(chunk);
  }

  TlsSession client;
  TlsSession server;
  std::string to_server, to_client;  // ciphertext in flight
  size_t to_server_sent = 0, to_client_sent = 0;
  std::string client_plain, server_plain;  // what each received
  size_t handshake_bytes_max_flight = 0;

 private:
  static bool move_one(std::string& queue, size_t& sent, TlsSession& to, std::string& plain,
                       std::string& reply, const std::function<size_t()>& next_chunk) {
    if (sent == queue.size()) return false;
    const size_t n = std::min(std::max<size_t>(next_chunk(), 1), queue.size() - sent);
    const std::string_view piece(queue.data() + sent, n);
    sent += n;
    to.feed(piece, plain, reply);
    if (sent == queue.size()) {
      queue.clear();
      sent = 0;
    }
    return true;
  }
};

// Writes a message each way and checks it arrives.
void expect_data_flows(Link& link) {
  ASSERT_TRUE(link.client.write("ping from the client", link.to_server));
  ASSERT_TRUE(link.server.write("pong from the server", link.to_client));
  link.pump();
  EXPECT_EQ(link.server_plain, "ping from the client");
  EXPECT_EQ(link.client_plain, "pong from the server");
  link.server_plain.clear();
  link.client_plain.clear();
}

// ---- handshakes at every split ----------------------------------------------------------

class Handshake : public ::testing::TestWithParam<TlsVersion> {
 protected:
  std::shared_ptr<const TlsContext> client_ctx() {
    auto options = client_options();
    options.min_version = options.max_version = GetParam();
    return client_context(options);
  }
  const char* expected_version() const {
    return GetParam() == TlsVersion::Tls12 ? "TLSv1.2" : "TLSv1.3";
  }
};

TEST_P(Handshake, CompletesWhole) {
  Link link(client_ctx(), server_context(server_options()));
  EXPECT_EQ(link.client.protocol_version(), "");
  link.handshake();
  ASSERT_EQ(link.client.state(), TlsState::Established) << link.client.failure_reason();
  ASSERT_EQ(link.server.state(), TlsState::Established) << link.server.failure_reason();
  EXPECT_EQ(link.client.protocol_version(), expected_version());
  EXPECT_EQ(link.server.protocol_version(), expected_version());
  EXPECT_EQ(link.client.cipher(), link.server.cipher());
  EXPECT_FALSE(link.client.cipher().empty());
  expect_data_flows(link);
}

// The largest single burst of handshake bytes either side sends (the server's flight).
size_t largest_flight(std::shared_ptr<const TlsContext> client_ctx,
                      std::shared_ptr<const TlsContext> server_ctx) {
  Link link(std::move(client_ctx), std::move(server_ctx));
  link.client.start(link.to_server);
  size_t largest = 0;
  while (!link.to_server.empty() || !link.to_client.empty()) {
    largest = std::max({largest, link.to_server.size(), link.to_client.size()});
    std::string to_server = std::exchange(link.to_server, {});
    std::string to_client = std::exchange(link.to_client, {});
    link.server.feed(to_server, link.server_plain, link.to_client);
    link.client.feed(to_client, link.client_plain, link.to_server);
  }
  return largest;
}

TEST_P(Handshake, CompletesAtEveryChunkSize) {
  auto server_ctx = server_context(server_options());
  auto client = client_ctx();
  const size_t largest = largest_flight(client, server_ctx);
  ASSERT_GT(largest, 500u);
  for (size_t chunk = 1; chunk <= largest; ++chunk) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    Link link(client, server_ctx);
    link.handshake(chunk);
    ASSERT_EQ(link.client.state(), TlsState::Established) << link.client.failure_reason();
    ASSERT_EQ(link.server.state(), TlsState::Established) << link.server.failure_reason();
    ASSERT_EQ(link.client.protocol_version(), expected_version());
    if (chunk % 97 == 1) expect_data_flows(link);
  }
}

TEST_P(Handshake, CompletesInRandomChunks) {
  auto server_ctx = server_context(server_options());
  auto client = client_ctx();
  std::mt19937 rng(20240611);
  for (int round = 0; round < 200; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::uniform_int_distribution<size_t> size(1, round % 2 == 0 ? 16 : 1500);
    Link link(client, server_ctx);
    link.client.start(link.to_server);
    link.pump([&] { return size(rng); });
    ASSERT_EQ(link.client.state(), TlsState::Established) << link.client.failure_reason();
    ASSERT_EQ(link.server.state(), TlsState::Established) << link.server.failure_reason();
    ASSERT_TRUE(link.client.write("after " + std::to_string(round), link.to_server));
    link.pump([&] { return size(rng); });
    ASSERT_EQ(link.server_plain, "after " + std::to_string(round));
  }
}

TEST_P(Handshake, OneMegabyteEachWayInRandomChunks) {
  Link link(client_ctx(), server_context(server_options()));
  link.handshake();
  ASSERT_TRUE(link.client.established());
  std::mt19937 rng(7);
  std::string up(1 << 20, '\0'), down(1 << 20, '\0');
  for (auto& c : up) c = static_cast<char>(rng());
  for (auto& c : down) c = static_cast<char>(rng());
  // Written in uneven pieces, carried in uneven chunks.
  std::uniform_int_distribution<size_t> piece(1, 40000);
  for (size_t at = 0; at < up.size();) {
    const size_t n = std::min(piece(rng), up.size() - at);
    ASSERT_TRUE(link.client.write(std::string_view(up).substr(at, n), link.to_server));
    ASSERT_TRUE(link.server.write(std::string_view(down).substr(at, n), link.to_client));
    at += n;
    std::uniform_int_distribution<size_t> chunk(1, 30000);
    link.pump([&] { return chunk(rng); });
  }
  EXPECT_TRUE(link.server_plain == up);
  EXPECT_TRUE(link.client_plain == down);
  EXPECT_EQ(link.server.state(), TlsState::Established);
}

TEST_P(Handshake, WritesBeforeTheHandshakeAreHeldThenSentInOrder) {
  Link link(client_ctx(), server_context(server_options()));
  ASSERT_TRUE(link.client.write("CONNECT ", link.to_server));  // starts the handshake
  ASSERT_TRUE(link.client.write("bytes", link.to_server));
  EXPECT_EQ(link.client.held_plaintext(), 13u);
  EXPECT_FALSE(link.to_server.empty());  // the ClientHello
  link.pump(7);
  ASSERT_TRUE(link.server.established()) << link.server.failure_reason();
  EXPECT_EQ(link.server_plain, "CONNECT bytes");
  EXPECT_EQ(link.client.held_plaintext(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Tls, Handshake, ::testing::Values(TlsVersion::Tls12, TlsVersion::Tls13),
                         [](const auto& info) {
                           return info.param == TlsVersion::Tls12 ? "Tls12" : "Tls13";
                         });

TEST(TlsSession, HeldPlaintextIsBounded) {
  TlsSession client(client_context(client_options()));
  std::string out;
  const std::string big(TlsSession::kMaxHeldPlaintext, 'x');
  EXPECT_TRUE(client.write(big, out));
  EXPECT_FALSE(client.write("one more", out));
  EXPECT_EQ(client.held_plaintext(), TlsSession::kMaxHeldPlaintext);
  EXPECT_EQ(client.state(), TlsState::Handshaking);
}

TEST(TlsSession, SurvivesBeingMovedMidHandshake) {
  Link link(client_context(client_options()), server_context(server_options()));
  link.client.start(link.to_server);
  TlsSession moved = std::move(link.server);
  std::string plain;
  moved.feed(link.to_server, plain, link.to_client);
  link.to_server.clear();
  link.server = std::move(moved);
  link.pump();
  EXPECT_TRUE(link.client.established());
  EXPECT_TRUE(link.server.established());
}

TEST(TlsSession, KeepsItsContextWhenTheOwnerDropsIt) {
  auto server_ctx = server_context(server_options());
  Link link(client_context(client_options()), server_ctx);
  server_ctx.reset();  // a reload built a new context; this connection keeps the old one
  link.handshake();
  EXPECT_TRUE(link.server.established());
  expect_data_flows(link);
}

// ---- peer certificates and mutual TLS -------------------------------------------------

TEST(TlsSession, ClientSeesTheServerCertificate) {
  Link link(client_context(client_options()), server_context(server_options()));
  link.handshake();
  ASSERT_TRUE(link.client.established()) << link.client.failure_reason();
  auto peer = link.client.peer_certificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_TRUE(peer->verified);
  EXPECT_EQ(peer->subject_cn, "localhost");
  EXPECT_EQ(peer->dns_names, std::vector<std::string>{"localhost"});
  EXPECT_TRUE(peer->emails.empty());
  // The server asked for no client certificate.
  EXPECT_FALSE(link.server.peer_certificate().has_value());
}

class MutualTls : public ::testing::TestWithParam<TlsVersion> {
 protected:
  std::shared_ptr<const TlsContext> server_ctx(bool fail_if_no_peer_cert) {
    auto options = server_options();
    options.cacertfile = pki("ca.pem");
    options.verify_peer = true;
    options.fail_if_no_peer_cert = fail_if_no_peer_cert;
    return server_context(options);
  }
  std::shared_ptr<const TlsContext> client_ctx(const std::string& name) {
    auto options = client_options();
    options.min_version = options.max_version = GetParam();
    if (!name.empty()) {
      options.certfile = pki(name + ".pem");
      options.keyfile = pki(name + ".key");
    }
    return client_context(options);
  }
};

TEST_P(MutualTls, ServerReadsTheClientCertificate) {
  Link link(client_ctx("client"), server_ctx(true));
  link.handshake();
  ASSERT_TRUE(link.server.established()) << link.server.failure_reason();
  ASSERT_TRUE(link.client.established()) << link.client.failure_reason();
  auto peer = link.server.peer_certificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_TRUE(peer->verified);
  EXPECT_EQ(peer->subject_cn, "client-1");
  EXPECT_EQ(peer->subject, "CN=client-1,O=HarborMQ tests");  // RFC 2253 text: http_auth %d
  EXPECT_EQ(peer->dns_names, (std::vector<std::string>{"client-1.example", "second.example"}));
  EXPECT_EQ(peer->emails, std::vector<std::string>{"client-1@example.com"});
  expect_data_flows(link);
}

TEST_P(MutualTls, ServerFailsAClientWithoutCertificate) {
  Link link(client_ctx(""), server_ctx(true));
  link.handshake();
  EXPECT_EQ(link.server.state(), TlsState::Failed);
  EXPECT_NE(link.server.failure_reason().find("peer did not return a certificate"),
            std::string::npos)
      << link.server.failure_reason();
  EXPECT_FALSE(link.server.peer_alert());
  // In TLS 1.3 the client finishes first and learns of it from the alert that follows.
  EXPECT_EQ(link.client.state(), TlsState::Failed);
  EXPECT_TRUE(link.client.peer_alert()) << link.client.failure_reason();
  EXPECT_NE(link.client.failure_reason().find("peer alert: "), std::string::npos)
      << link.client.failure_reason();
}

TEST_P(MutualTls, CertificateIsOptionalWithoutFailIfNoPeerCert) {
  Link link(client_ctx(""), server_ctx(false));
  link.handshake();
  ASSERT_TRUE(link.server.established()) << link.server.failure_reason();
  EXPECT_FALSE(link.server.peer_certificate().has_value());
  expect_data_flows(link);
}

TEST_P(MutualTls, ServerFailsACertificateFromAnotherCa) {
  Link link(client_ctx("stranger"), server_ctx(true));
  link.handshake();
  EXPECT_EQ(link.server.state(), TlsState::Failed);
  EXPECT_NE(link.server.failure_reason().find(
                "certificate verify failed: unable to get local issuer certificate"),
            std::string::npos)
      << link.server.failure_reason();
  EXPECT_EQ(link.client.state(), TlsState::Failed);
  EXPECT_TRUE(link.client.peer_alert()) << link.client.failure_reason();
}

INSTANTIATE_TEST_SUITE_P(Tls, MutualTls, ::testing::Values(TlsVersion::Tls12, TlsVersion::Tls13),
                         [](const auto& info) {
                           return info.param == TlsVersion::Tls12 ? "Tls12" : "Tls13";
                         });

// ---- the client's verification of the server --------------------------------------------

struct ClientFailure {
  std::string server_cert;  // pki file stem
  std::string server_name;
  std::string reason;  // expected in the client's failure reason
};

std::string client_failure_name(const ::testing::TestParamInfo<ClientFailure>& info) {
  static constexpr std::array<const char*, 4> kNames{"WrongHost", "WrongIp", "Expired",
                                                     "Untrusted"};
  return kNames.at(info.index);
}

class ClientVerification : public ::testing::TestWithParam<ClientFailure> {};

TEST_P(ClientVerification, FailsWithOpenSslsReason) {
  const auto& c = GetParam();
  auto server = server_options();
  server.certfile = pki(c.server_cert + ".pem");
  server.keyfile = pki(c.server_cert + ".key");
  auto client = client_options();
  client.server_name = c.server_name;
  Link link(client_context(client), server_context(server));
  link.handshake();
  EXPECT_EQ(link.client.state(), TlsState::Failed);
  EXPECT_FALSE(link.client.peer_alert());
  EXPECT_NE(link.client.failure_reason().find(c.reason), std::string::npos)
      << link.client.failure_reason();
  EXPECT_EQ(link.client.protocol_version(), "");
  // The client's alert told the server.
  EXPECT_EQ(link.server.state(), TlsState::Failed);
  EXPECT_TRUE(link.server.peer_alert()) << link.server.failure_reason();
}

INSTANTIATE_TEST_SUITE_P(
    Tls, ClientVerification,
    ::testing::Values(
        ClientFailure{"server", "broker.example.com",
                      "certificate verify failed: hostname mismatch (expected "
                      "\"broker.example.com\")"},
        ClientFailure{"server", "127.0.0.2", "certificate verify failed: IP address mismatch"},
        ClientFailure{"expired", "localhost", "certificate verify failed: certificate has expired"},
        ClientFailure{"self", "localhost", "certificate verify failed: self-signed certificate"}),
    client_failure_name);

TEST(TlsSession, ClientMatchesIpAddresses) {
  for (const char* ip : {"127.0.0.1", "::1"}) {
    auto client = client_options();
    client.server_name = ip;
    Link link(client_context(client), server_context(server_options()));
    link.handshake();
    EXPECT_TRUE(link.client.established()) << ip << ": " << link.client.failure_reason();
  }
}

TEST(TlsSession, ClientWithoutVerificationAcceptsAnyCertificate) {
  auto server = server_options();
  server.certfile = pki("self.pem");
  server.keyfile = pki("self.key");
  auto client = client_options();
  client.verify_peer = false;
  Link link(client_context(client), server_context(server));
  link.handshake();
  ASSERT_TRUE(link.client.established()) << link.client.failure_reason();
  auto peer = link.client.peer_certificate();
  ASSERT_TRUE(peer.has_value());
  EXPECT_FALSE(peer->verified);
  EXPECT_EQ(peer->subject_cn, "localhost");
}

// ---- what is not TLS 1.2+ ---------------------------------------------------------------

// A CONNECT for MQTT 3.1.1, client id "c".
const std::string kPlainConnect(
    "\x10\x0d\x00\x04MQTT\x04\x02\x00\x3c\x00\x01"
    "c",
    15);

TEST(TlsSession, ServerNamesAPlainMqttClient) {
  for (const size_t chunk : {kPlainConnect.size(), size_t{1}}) {
    TlsSession server(server_context(server_options()));
    std::string plain, out;
    for (size_t at = 0; at < kPlainConnect.size(); at += chunk) {
      server.feed(std::string_view(kPlainConnect).substr(at, chunk), plain, out);
    }
    EXPECT_EQ(server.state(), TlsState::Failed);
    EXPECT_EQ(server.failure_reason(),
              "not TLS: the client sent plain MQTT (CONNECT, first byte 0x10) to the TLS port?");
    EXPECT_FALSE(server.peer_alert());
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(plain.empty());
  }
}

TEST(TlsSession, ServerRefusesOtherNonTlsBytes) {
  struct Case {
    std::string input, reason;
  };
  for (const auto& c : {Case{"GET / HTTP/1.1\r\n", "not TLS: the first byte is 0x47"},
                        Case{std::string("\x16\x47", 2),
                             "not TLS: the record version starts "
                             "with 0x47"}}) {
    TlsSession server(server_context(server_options()));
    std::string plain, out;
    for (char byte : c.input) server.feed(std::string_view(&byte, 1), plain, out);
    EXPECT_EQ(server.state(), TlsState::Failed);
    EXPECT_NE(server.failure_reason().find(c.reason), std::string::npos) << server.failure_reason();
  }
}

// A raw OpenSSL client offering TLS 1.0 and 1.1 only, through memory BIOs.
TEST(TlsSession, ServerRefusesTls11) {
  SSL_CTX* old_ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_NE(old_ctx, nullptr);
  SSL_CTX_set_security_level(old_ctx, 0);
  ASSERT_EQ(SSL_CTX_set_min_proto_version(old_ctx, TLS1_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(old_ctx, TLS1_1_VERSION), 1);
  ASSERT_EQ(SSL_CTX_set_cipher_list(old_ctx, "ALL:@SECLEVEL=0"), 1);
  SSL* old = SSL_new(old_ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(old, in, out);
  SSL_set_connect_state(old);
  EXPECT_EQ(SSL_get_error(old, SSL_do_handshake(old)), SSL_ERROR_WANT_READ);
  char* hello_data = nullptr;
  const long hello_size = BIO_get_mem_data(out, &hello_data);
  ASSERT_GT(hello_size, 0);

  TlsSession server(server_context(server_options()));
  std::string plain, reply;
  server.feed(std::string_view(hello_data, hello_size), plain, reply);
  EXPECT_EQ(server.state(), TlsState::Failed);
  EXPECT_NE(server.failure_reason().find("unsupported protocol version"), std::string::npos)
      << server.failure_reason();
  // The server's protocol_version alert reaches the old client.
  ASSERT_FALSE(reply.empty());
  BIO_write(in, reply.data(), static_cast<int>(reply.size()));
  EXPECT_EQ(SSL_get_error(old, SSL_do_handshake(old)), SSL_ERROR_SSL);
  EXPECT_EQ(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
  ERR_clear_error();
  SSL_free(old);
  SSL_CTX_free(old_ctx);
}

TEST(TlsSession, Tls13OnlyServerRefusesATls12Client) {
  auto server = server_options();
  server.min_version = TlsVersion::Tls13;
  auto client = client_options();
  client.max_version = TlsVersion::Tls12;
  Link link(client_context(client), server_context(server));
  link.handshake();
  EXPECT_EQ(link.server.state(), TlsState::Failed);
  EXPECT_NE(link.server.failure_reason().find(
                "unsupported protocol version: the peer supports none of TLS 1.3"),
            std::string::npos)
      << link.server.failure_reason();
  EXPECT_TRUE(link.client.peer_alert()) << link.client.failure_reason();
}

// ---- close_notify -----------------------------------------------------------------------

TEST(TlsSession, ClientClosesServerAnswers) {
  Link link(client_context(client_options()), server_context(server_options()));
  link.handshake();
  ASSERT_TRUE(link.client.established());
  ASSERT_TRUE(link.client.write("DISCONNECT", link.to_server));
  EXPECT_EQ(link.client.close(link.to_server), TlsState::Closing);
  EXPECT_FALSE(link.client.write("late", link.to_server));
  link.pump(3);
  EXPECT_EQ(link.server_plain, "DISCONNECT");
  EXPECT_EQ(link.server.state(), TlsState::Closed);
  EXPECT_EQ(link.client.state(), TlsState::Closed);
  EXPECT_FALSE(link.server.write("late", link.to_client));
  // Input after the end is ignored.
  std::string plain, out;
  EXPECT_EQ(link.server.feed("\x17\x03\x03\x00\x01x", plain, out), TlsState::Closed);
  EXPECT_TRUE(plain.empty() && out.empty());
}

TEST(TlsSession, ServerClosesClientAnswersAndDataStillFlowsWhileClosing) {
  Link link(client_context(client_options()), server_context(server_options()));
  link.handshake();
  ASSERT_TRUE(link.server.established());
  EXPECT_EQ(link.server.close(link.to_client), TlsState::Closing);
  // The client writes before it sees the close_notify: the server still reads it.
  ASSERT_TRUE(link.client.write("last words", link.to_server));
  link.pump();
  EXPECT_EQ(link.server_plain, "last words");
  EXPECT_EQ(link.client.state(), TlsState::Closed);
  EXPECT_EQ(link.server.state(), TlsState::Closed);
}

TEST(TlsSession, CloseDuringTheHandshakeSendsNothing) {
  TlsSession client(client_context(client_options()));
  std::string out;
  ASSERT_TRUE(client.write("held", out));
  out.clear();
  EXPECT_EQ(client.close(out), TlsState::Closed);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(client.held_plaintext(), 0u);
}

TEST(TlsSession, GarbageAfterTheHandshakeFails) {
  Link link(client_context(client_options()), server_context(server_options()));
  link.handshake();
  std::string plain, out;
  link.server.feed(std::string_view("\x17\x03\x03\x00\x20" + std::string(32, 'z')), plain, out);
  EXPECT_EQ(link.server.state(), TlsState::Failed);
  EXPECT_FALSE(link.server.failure_reason().empty());
  EXPECT_FALSE(out.empty());  // the bad_record_mac alert
  EXPECT_EQ(link.server.protocol_version(), "TLSv1.3");
}

// ---- contexts -----------------------------------------------------------------------------

std::string server_error(const TlsServerOptions& options) {
  auto context = TlsContext::server(options);
  return context ? "no error" : context.error();
}

TEST(TlsContext, MissingFilesAreNamed) {
  auto options = server_options();
  options.certfile = "/nonexistent/cert.pem";
  EXPECT_EQ(server_error(options).rfind("cannot read certificate file /nonexistent/cert.pem: ", 0),
            0u)
      << server_error(options);
  EXPECT_NE(server_error(options).find("No such file or directory"), std::string::npos)
      << server_error(options);

  options = server_options();
  options.keyfile = "/nonexistent/key.pem";
  EXPECT_EQ(server_error(options).rfind("cannot read key file /nonexistent/key.pem: ", 0), 0u)
      << server_error(options);

  options = server_options();
  options.cacertfile = "/nonexistent/ca.pem";
  EXPECT_EQ(server_error(options).rfind("cannot read CA file /nonexistent/ca.pem: ", 0), 0u)
      << server_error(options);

  auto client = client_options();
  client.cacertfile = "/nonexistent/ca.pem";
  auto context = TlsContext::client(client);
  ASSERT_FALSE(context);
  EXPECT_EQ(context.error().rfind("cannot read CA file /nonexistent/ca.pem: ", 0), 0u)
      << context.error();
}

TEST(TlsContext, FilesThatAreNotPem) {
  auto options = server_options();
  options.certfile = pki("junk.pem");
  EXPECT_EQ(server_error(options).rfind("cannot read certificate file " + pki("junk.pem"), 0), 0u)
      << server_error(options);
  options = server_options();
  options.keyfile = pki("junk.pem");
  EXPECT_EQ(server_error(options).rfind("cannot read key file " + pki("junk.pem"), 0), 0u)
      << server_error(options);
}

TEST(TlsContext, KeyMustMatchCertificate) {
  auto options = server_options();
  options.keyfile = pki("client.key");
  EXPECT_EQ(server_error(options).rfind("key file " + pki("client.key") +
                                            " does not match certificate file " + pki("server.pem"),
                                        0),
            0u)
      << server_error(options);
}

TEST(TlsContext, EncryptedKey) {
  auto options = server_options();
  options.keyfile = pki("server-encrypted.key");
  options.key_password = kKeyPassword;
  auto good = TlsContext::server(options);
  ASSERT_TRUE(good) << good.error();
  Link link(client_context(client_options()), *good);
  link.handshake();
  EXPECT_TRUE(link.server.established()) << link.server.failure_reason();

  options.key_password = "wrong";
  EXPECT_NE(server_error(options).find("wrong key_password?"), std::string::npos)
      << server_error(options);
  EXPECT_EQ(server_error(options).rfind("cannot read key file " + pki("server-encrypted.key"), 0),
            0u);
  options.key_password.clear();
  EXPECT_EQ(server_error(options), "cannot read key file " + pki("server-encrypted.key") +
                                       ": the key is encrypted and key_password is not set");
}

TEST(TlsContext, OptionsThatDoNotGoTogether) {
  auto options = server_options();
  options.verify_peer = true;
  EXPECT_NE(server_error(options).find("verify_peer needs cacertfile"), std::string::npos);
  options = server_options();
  options.min_version = TlsVersion::Tls13;
  options.max_version = TlsVersion::Tls12;
  EXPECT_NE(server_error(options).find("min_version"), std::string::npos);
  options = server_options();
  options.certfile.clear();
  EXPECT_NE(server_error(options).find("certfile is not set"), std::string::npos);

  auto client = client_options();
  client.certfile = pki("client.pem");
  auto context = TlsContext::client(client);
  ASSERT_FALSE(context);
  EXPECT_NE(context.error().find("certfile and keyfile go together"), std::string::npos);
}

TEST(TlsContext, ClientWithTheSystemTrustStore) {
  TlsClientOptions options;
  options.server_name = "localhost";
  auto context = TlsContext::client(options);
  ASSERT_TRUE(context) << context.error();
  // Our test CA is not in the system's store.
  Link link(*context, server_context(server_options()));
  link.handshake();
  EXPECT_EQ(link.client.state(), TlsState::Failed);
  EXPECT_NE(link.client.failure_reason().find("certificate verify failed"), std::string::npos)
      << link.client.failure_reason();
}

// ---- memory ---------------------------------------------------------------------------------

// Not a test: measures the heap bytes an idle established server session holds (malloc's
// count of allocated bytes across 1,000 sessions after their handshake, clients freed). Run
// with --gtest_also_run_disabled_tests --gtest_filter='*IdleSessionBytes*'.
TEST(TlsMemory, DISABLED_IdleSessionBytes) {
  struct Setup {
    const char* name;
    TlsVersion version;
    bool mutual;
  };
  for (const auto& setup :
       {Setup{"TLS 1.3", TlsVersion::Tls13, false}, Setup{"TLS 1.2", TlsVersion::Tls12, false},
        Setup{"TLS 1.3 with client certificate", TlsVersion::Tls13, true}}) {
    auto server = server_options();
    auto client = client_options();
    client.max_version = setup.version;
    if (setup.mutual) {
      server.cacertfile = pki("ca.pem");
      server.verify_peer = server.fail_if_no_peer_cert = true;
      client.certfile = pki("client.pem");
      client.keyfile = pki("client.key");
    }
    auto server_ctx = server_context(server);
    auto client_ctx = client_context(client);
    constexpr int kSessions = 1000;
    std::vector<TlsSession> idle;
    idle.reserve(kSessions);
    {  // warm up OpenSSL's lazily made tables
      Link link(client_ctx, server_ctx);
      link.handshake();
    }
    const size_t before = mallinfo2().uordblks;
    for (int i = 0; i < kSessions; ++i) {
      Link link(client_ctx, server_ctx);
      link.handshake();
      expect_data_flows(link);
      ASSERT_TRUE(link.server.established());
      idle.push_back(std::move(link.server));
    }
    const size_t after = mallinfo2().uordblks;
    std::printf("%s: %zu heap bytes per idle server session, plus sizeof(TlsSession) = %zu\n",
                setup.name, (after - before) / kSessions, sizeof(TlsSession));
  }
}

}  // namespace
}  // namespace harbor::wire
