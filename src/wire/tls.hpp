// TLS as a byte filter between the socket and the protocol (OpenSSL 3), both roles: the
// broker's `listeners.ssl` (server) and the bridges' links (client). Sans-I/O: the caller
// moves bytes between the socket and a TlsSession; no sockets, no clocks, no threads, no
// logging. TLS 1.2 and 1.3 only, no compression, no renegotiation.
//
// A TlsContext holds what is read from the configuration (certificates, key, trust) and is
// shared by every session built from it. Reloading certificates means building a new context:
// sessions built from the old one keep it alive until they end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

// OpenSSL's types, so that this header does not pull in its headers.
struct ssl_ctx_st;
struct ssl_st;
struct bio_st;

namespace harbor::wire {

enum class TlsVersion : uint8_t { Tls12, Tls13 };

// NanoMQ's `listeners.ssl` keys: certfile, keyfile, key_password, cacertfile, verify_peer,
// fail_if_no_peer_cert.
struct TlsServerOptions {
  std::string certfile;      // PEM: the server's certificate, then its chain (leaf first)
  std::string keyfile;       // PEM: its private key, encrypted or not
  std::string key_password;  // empty: the key is not encrypted
  std::string cacertfile;    // PEM: the CAs that client certificates are verified against
  // Ask clients for a certificate and verify it against cacertfile (which is then required).
  // A client that sends none is still accepted, unless fail_if_no_peer_cert. As in NanoMQ,
  // fail_if_no_peer_cert means nothing without verify_peer.
  bool verify_peer = false;
  bool fail_if_no_peer_cert = false;
  TlsVersion min_version = TlsVersion::Tls12;
  TlsVersion max_version = TlsVersion::Tls13;
};

struct TlsClientOptions {
  std::string cacertfile;  // PEM: the CAs trusted for the server; empty: the system's store
  std::string certfile;    // PEM: our certificate and chain, for mutual TLS; empty: none
  std::string keyfile;     // required with certfile
  std::string key_password;
  // Verify the server's certificate chain and, when server_name is set, that the certificate
  // is for that name. Off: any certificate is accepted (a man in the middle too).
  bool verify_peer = true;
  // The host the bridge dials: a DNS name (sent as SNI and checked against the certificate's
  // SAN DNS names, wildcards in the left label only) or an IP address (v4 or v6, checked
  // against SAN IP addresses; never sent as SNI [RFC 6066 §3]). Empty: no name check.
  std::string server_name;
  TlsVersion min_version = TlsVersion::Tls12;
  TlsVersion max_version = TlsVersion::Tls13;
};

// Immutable once built; any thread may build sessions from it at the same time.
class TlsContext {
 public:
  // Errors name the option's file and say OpenSSL's reason, e.g. "cannot read key file
  // /etc/k.pem: bad decrypt (wrong key_password?)" or "key file /k.pem does not match
  // certificate file /c.pem".
  static tl::expected<std::shared_ptr<const TlsContext>, std::string> server(
      const TlsServerOptions& options);
  static tl::expected<std::shared_ptr<const TlsContext>, std::string> client(
      const TlsClientOptions& options);

  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  bool is_server() const { return is_server_; }

 private:
  friend class TlsSession;
  TlsContext(ssl_ctx_st* ctx, bool is_server, TlsVersion min, TlsVersion max);

  ssl_ctx_st* ctx_;
  bool is_server_;
  TlsVersion min_version_;
  TlsVersion max_version_;
  std::string server_name_;  // client: as configured (for errors)
  std::string sni_;          // client: server_name unless it is an IP address
};

enum class TlsState : uint8_t {
  Handshaking,  // nothing decrypted yet; write() holds plaintext (see write())
  Established,  // application data flows both ways
  Closing,      // we sent close_notify (close()); the peer may still send data
  Closed,       // the peer's close_notify arrived (ours was sent before or in reply)
  Failed,       // a fatal error; our alert, if any, was appended to cipher_out
};

std::string_view to_string(TlsState state);

// The peer's certificate, as the peer sent it (leaf only).
struct TlsPeerCertificate {
  // The chain was verified against the context's CAs (server: verify_peer; client:
  // verify_peer). Without verification the names below are only what the peer claims.
  bool verified = false;
  // The subject's last (most specific) commonName, UTF-8; empty if it has none, or if it
  // holds a NUL byte (which would let "a\0b" pass as "a" further on).
  std::string subject_cn;
  // The whole subject, RFC 2253 style ("CN=client-1,O=Acme"), UTF-8 (NanoMQ's %d).
  std::string subject;
  std::vector<std::string> dns_names;  // subjectAltName dNSName entries (NUL-free ones)
  std::vector<std::string> emails;     // subjectAltName rfc822Name entries (NUL-free ones)
};

// One TLS connection. Belongs to one connection; called by its owner thread only. Movable
// (a moved-from session may only be destroyed or assigned to).
//
// Emits only from inside its calls, never later: for each call, before it returns, the bytes
// to send are appended to `cipher_out` (handshake flights, alerts, records, close_notify) and
// decrypted application bytes to `plain_out`. The caller sends cipher_out, in order, after
// the bytes of earlier calls; once the state is Closed or Failed, it sends what is left and
// closes the socket. An EOF from the socket without close_notify is the caller's to judge
// (MQTT has DISCONNECT; a truncated stream is a truncated MQTT packet).
//
// Bounds: after each call the session holds no decrypted plaintext, and at most one partial
// TLS record of ciphertext (kMaxBufferedCipher; OpenSSL's read buffer, freed when empty);
// all input is consumed. In Handshaking it holds up to kMaxHeldPlaintext bytes given to
// write(). plain_out grows by at most the input size plus one record (kMaxRecordPlaintext).
//
// Memory of an idle established server session, OpenSSL 3.0, glibc (measured by
// TlsMemory.DISABLED_IdleSessionBytes: malloc's in-use bytes over 1,000 sessions): about
// 14.2 KB for TLS 1.3, 13.0 KB for TLS 1.2, 24.9 KB with a client certificate (OpenSSL keeps
// the peer's certificate, decoded, in the session). OpenSSL's SSL object alone is 8.5 KB as
// SSL_new makes it. Its record buffers are already freed when empty (SSL_MODE_RELEASE_BUFFERS;
// freeing them by hand measured no gain, hence no trim()).
class TlsSession {
 public:
  static constexpr size_t kMaxRecordPlaintext = 16384;            // 2^14 [RFC 8446 §5.1]
  static constexpr size_t kMaxBufferedCipher = 5 + 16384 + 2048;  // [RFC 5246 §6.2.3]
  static constexpr size_t kMaxHeldPlaintext = 64 * 1024;

  // The role (server or client) is the context's. Never fails but on memory exhaustion
  // (std::bad_alloc).
  explicit TlsSession(std::shared_ptr<const TlsContext> context);
  ~TlsSession();
  TlsSession(TlsSession&& other) noexcept;
  TlsSession& operator=(TlsSession&& other) noexcept;
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // A client's first flight: its ClientHello into cipher_out. No-op for a server, or when
  // called again. (feed() and write() start the handshake too.)
  TlsState start(std::string& cipher_out);

  // Consumes all of `cipher` (bytes read from the socket). In Handshaking, advances the
  // handshake; once it completes (Established), flushes what write() held, then decrypts.
  // In Established and Closing, appends the decrypted bytes to plain_out; a close_notify
  // makes the state Closed (from Established, our close_notify goes to cipher_out).
  // Failures, all with failure_reason():
  //  - server: the first bytes are not a TLS handshake record, e.g. "not TLS: the client
  //    sent plain MQTT (CONNECT, first byte 0x10) to the TLS port?"; nothing is sent back;
  //  - no version both sides accept (a client offering only TLS 1.0/1.1): "unsupported
  //    protocol version: ..." (the other side gets "peer alert: ... protocol version");
  //  - the peer's certificate fails verification: "certificate verify failed: <OpenSSL's
  //    X509 verify reason>" (expired, self-signed, hostname mismatch (expected "x") ...);
  //  - the peer sent a fatal alert: "peer alert: <OpenSSL's alert text>" (peer_alert());
  //  - anything else broken: OpenSSL's reasons.
  // In Closed and Failed, ignores the input.
  TlsState feed(std::span<const uint8_t> cipher, std::string& plain_out, std::string& cipher_out);
  TlsState feed(std::string_view cipher, std::string& plain_out, std::string& cipher_out);

  // Encrypts application bytes into records appended to cipher_out. In Handshaking, holds
  // them (a client starts its handshake here) and sends them once Established, in order;
  // refuses (returns false, holds nothing of this call) when the held bytes would pass
  // kMaxHeldPlaintext. Returns false in Closing, Closed and Failed, true otherwise.
  bool write(std::string_view plain, std::string& cipher_out);

  // Established: appends our close_notify to cipher_out and goes to Closing. Handshaking:
  // gives up (held plaintext dropped) and goes to Closed, sending nothing. Otherwise no-op.
  TlsState close(std::string& cipher_out);

  TlsState state() const { return state_; }
  bool established() const { return state_ == TlsState::Established; }
  bool is_server() const { return context_->is_server(); }

  // Failed: why, for the log; and whether it was the peer's fatal alert that ended it.
  const std::string& failure_reason() const { return failure_; }
  bool peer_alert() const { return peer_alert_; }

  // After the handshake (Established and later): "TLSv1.2" / "TLSv1.3", and the cipher suite
  // in OpenSSL's naming, e.g. "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256".
  // Empty before (and after a failed handshake).
  std::string_view protocol_version() const;
  std::string_view cipher() const;
  // After the handshake: the peer's certificate, if it sent one (a server always does; a
  // client only when asked, verify_peer). Computed on each call, nothing is cached.
  std::optional<TlsPeerCertificate> peer_certificate() const;

  // Bytes held by write() before the handshake completed.
  size_t held_plaintext() const { return held_.size(); }

 private:
  void release();
  // Both run inside a CallScope: the BIO reads the call's input and writes its cipher_out.
  TlsState drive_handshake();
  TlsState read_records(std::string& plain_out);
  bool check_first_bytes(std::span<const uint8_t> cipher);
  bool write_now(std::string_view plain);
  void fail_from_openssl(int ssl_error);
  void fail(std::string reason);

  std::shared_ptr<const TlsContext> context_;
  ssl_st* ssl_ = nullptr;
  bio_st* bio_ = nullptr;  // the SSL's read and write BIO (one object), reading and writing
                           // the spans of the call in progress
  TlsState state_ = TlsState::Handshaking;
  bool peer_alert_ = false;
  bool handshake_done_ = false;      // it completed once (OpenSSL forgets it on a later failure)
  uint8_t first_bytes_checked_ = 0;  // server: how many of the first 2 bytes were looked at
  std::string held_;
  std::string failure_;
};

}  // namespace harbor::wire
