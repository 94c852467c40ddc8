// OpenSSL does the TLS; this file gives it bytes and takes its bytes. The SSL object reads
// and writes one BIO of our own kind, which during a call of ours reads the caller's input
// span and appends to the caller's cipher_out, and outside a call is empty: unlike a memory
// BIO pair, no ciphertext buffer stays allocated in an idle session. With
// SSL_MODE_RELEASE_BUFFERS OpenSSL frees its record buffers whenever they are empty, so an
// idle established session is the SSL object, its session and its record keys.
//
// OpenSSL's error queue is per thread: every entry point clears it first, so one session's
// failure is never read as another's.
#include "wire/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <new>
#include <system_error>
#include <utility>

namespace harbor::wire {
namespace {

// Forward-secret AEAD suites for TLS 1.2; TLS 1.3 keeps OpenSSL's default suites (all AEAD).
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr uint8_t kHandshakeRecord = 0x16;  // ContentType handshake [RFC 8446 §5.1]
constexpr uint8_t kMqttConnect = 0x10;      // CONNECT's fixed header byte [MQTT-3.1.1]

// ---- the BIO --------------------------------------------------------------------------

// What the BIO reads and writes during one call of TlsSession.
struct CallIo {
  const uint8_t* in = nullptr;
  size_t in_left = 0;
  std::string* out = nullptr;
};

int io_write(BIO* bio, const char* data, size_t size, size_t* written) {
  BIO_clear_retry_flags(bio);
  auto* io = static_cast<CallIo*>(BIO_get_data(bio));
  if (io == nullptr || io->out == nullptr) {
    BIO_set_retry_write(bio);
    return 0;
  }
  io->out->append(data, size);
  *written = size;
  return 1;
}

int io_read(BIO* bio, char* data, size_t size, size_t* read) {
  BIO_clear_retry_flags(bio);
  auto* io = static_cast<CallIo*>(BIO_get_data(bio));
  if (io == nullptr || io->in_left == 0) {
    BIO_set_retry_read(bio);  // not EOF: more may come in the next feed()
    return 0;
  }
  const size_t n = std::min(size, io->in_left);
  std::memcpy(data, io->in, n);
  io->in += n;
  io->in_left -= n;
  *read = n;
  return 1;
}

long io_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;
    case BIO_CTRL_PENDING: {
      auto* io = static_cast<CallIo*>(BIO_get_data(bio));
      return io == nullptr ? 0 : static_cast<long>(io->in_left);
    }
    default:
      return 0;  // WPENDING 0, no EOF, no other control supported
  }
}

int io_create(BIO* bio) {
  BIO_set_data(bio, nullptr);
  BIO_set_init(bio, 1);
  return 1;
}

BIO_METHOD* io_method() {
  // Made once per process and kept (OpenSSL has no static BIO_METHOD for custom kinds).
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "harbor call io");
    if (m == nullptr || BIO_meth_set_write_ex(m, io_write) != 1 ||
        BIO_meth_set_read_ex(m, io_read) != 1 || BIO_meth_set_ctrl(m, io_ctrl) != 1 ||
        BIO_meth_set_create(m, io_create) != 1) {
      throw std::bad_alloc();
    }
    return m;
  }();
  return method;
}

// Points the BIO at one call's buffers for the lifetime of the scope.
class CallScope {
 public:
  CallScope(BIO* bio, CallIo& io) : bio_(bio) {
    ERR_clear_error();
    BIO_set_data(bio_, &io);
  }
  ~CallScope() { BIO_set_data(bio_, nullptr); }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  BIO* bio_;
};

// ---- errors ---------------------------------------------------------------------------

std::string error_text(unsigned long code) {
  if (ERR_SYSTEM_ERROR(code)) {  // errno, e.g. "No such file or directory"
    return std::error_code(ERR_GET_REASON(code), std::generic_category()).message();
  }
  if (const char* reason = ERR_reason_error_string(code)) return reason;
  std::array<char, 256> buf{};
  ERR_error_string_n(code, buf.data(), buf.size());
  return buf.data();
}

// Appends `text` unless `out` says it already, in any case ("No such file or directory"
// from the system, then "no such file" from the BIO).
void append_distinct(std::string& out, const std::string& text) {
  const auto same = [](char a, char b) { return std::tolower(a) == std::tolower(b); };
  if (text.empty() ||
      std::search(out.begin(), out.end(), text.begin(), text.end(), same) != out.end()) {
    return;
  }
  if (!out.empty()) out += "; ";
  out += text;
}

// Empties the thread's error queue into one line, the earliest reason first.
std::string drain_errors() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    // "system lib" only says that the entry before it is errno's.
    if (!ERR_SYSTEM_ERROR(code) && ERR_GET_REASON(code) == ERR_R_SYS_LIB) continue;
    append_distinct(out, error_text(code));
  }
  return out.empty() ? "no reason given by OpenSSL" : out;
}

int protocol_number(TlsVersion v) {
  return v == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;
}

std::string versions_text(TlsVersion min, TlsVersion max) {
  if (min == max) return min == TlsVersion::Tls12 ? "TLS 1.2" : "TLS 1.3";
  return "TLS 1.2 or 1.3";
}

// ---- building contexts ----------------------------------------------------------------

using ContextResult = tl::expected<std::shared_ptr<const TlsContext>, std::string>;

struct SslCtxOwner {
  SSL_CTX* ctx;
  ~SslCtxOwner() { SSL_CTX_free(ctx); }
  SSL_CTX* release() { return std::exchange(ctx, nullptr); }
};

tl::unexpected<std::string> failure(std::string text) { return tl::unexpected(std::move(text)); }

// Settings both roles share.
tl::expected<void, std::string> configure_common(SSL_CTX* ctx, TlsVersion min, TlsVersion max) {
  if (min == TlsVersion::Tls13 && max == TlsVersion::Tls12) {
    return failure("TLS min_version (1.3) is above max_version (1.2)");
  }
  if (SSL_CTX_set_min_proto_version(ctx, protocol_number(min)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, protocol_number(max)) != 1) {
    return failure("cannot set the TLS versions: " + drain_errors());
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return failure("cannot set the TLS 1.2 cipher suites: " + drain_errors());
  }
  return {};
}

struct PasswordRequest {
  const std::string* password;
  bool asked = false;
};

int give_password(char* buf, int size, int, void* user) {
  auto* request = static_cast<PasswordRequest*>(user);
  request->asked = true;
  const std::string& password = *request->password;
  if (password.empty() || password.size() > static_cast<size_t>(size)) return -1;
  std::memcpy(buf, password.data(), password.size());
  return static_cast<int>(password.size());
}

// Our certificate chain and its key, checked against each other.
tl::expected<void, std::string> load_identity(SSL_CTX* ctx, const std::string& certfile,
                                              const std::string& keyfile,
                                              const std::string& key_password) {
  if (SSL_CTX_use_certificate_chain_file(ctx, certfile.c_str()) != 1) {
    return failure("cannot read certificate file " + certfile + ": " + drain_errors());
  }
  BIO* file = BIO_new_file(keyfile.c_str(), "r");
  if (file == nullptr) return failure("cannot read key file " + keyfile + ": " + drain_errors());
  PasswordRequest request{&key_password};
  EVP_PKEY* key = PEM_read_bio_PrivateKey(file, nullptr, give_password, &request);
  BIO_free(file);
  if (key == nullptr) {
    std::string why = drain_errors();
    if (request.asked && key_password.empty()) {
      why = "the key is encrypted and key_password is not set";
    } else if (request.asked) {
      why += " (wrong key_password?)";
    }
    return failure("cannot read key file " + keyfile + ": " + why);
  }
  const int used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    const unsigned long code = ERR_peek_error();
    const int reason = ERR_GET_REASON(code);
    std::string why = drain_errors();
    if (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH ||
        reason == SSL_R_PRIVATE_KEY_MISMATCH) {
      return failure("key file " + keyfile + " does not match certificate file " + certfile + " (" +
                     why + ")");
    }
    return failure("cannot use key file " + keyfile + " with certificate file " + certfile + ": " +
                   why);
  }
  return {};
}

tl::expected<void, std::string> load_trust(SSL_CTX* ctx, const std::string& cacertfile) {
  if (SSL_CTX_load_verify_file(ctx, cacertfile.c_str()) != 1) {
    return failure("cannot read CA file " + cacertfile + ": " + drain_errors());
  }
  return {};
}

}  // namespace

// ---- TlsContext -----------------------------------------------------------------------

TlsContext::TlsContext(SSL_CTX* ctx, bool is_server, TlsVersion min, TlsVersion max)
    : ctx_(ctx), is_server_(is_server), min_version_(min), max_version_(max) {}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

ContextResult TlsContext::server(const TlsServerOptions& options) {
  ERR_clear_error();
  if (options.certfile.empty()) return failure("TLS listener: certfile is not set");
  if (options.keyfile.empty()) return failure("TLS listener: keyfile is not set");
  if (options.verify_peer && options.cacertfile.empty()) {
    return failure("TLS listener: verify_peer needs cacertfile, the CAs to verify clients with");
  }
  SslCtxOwner owner{SSL_CTX_new(TLS_server_method())};
  SSL_CTX* ctx = owner.ctx;
  if (ctx == nullptr) return failure("cannot create a TLS context: " + drain_errors());
  if (auto r = configure_common(ctx, options.min_version, options.max_version); !r) {
    return failure(r.error());
  }
  // No stateful session cache (its memory grows with connections and it is locked across
  // shards); resumption still works through stateless tickets.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  static constexpr unsigned char kSessionContext[] = "harbormq";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (auto r = load_identity(ctx, options.certfile, options.keyfile, options.key_password); !r) {
    return failure(r.error());
  }
  if (!options.cacertfile.empty()) {
    if (auto r = load_trust(ctx, options.cacertfile); !r) return failure(r.error());
  }
  if (options.verify_peer) {
    // The CA names go into CertificateRequest, so a client with several certificates knows
    // which one to send.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(options.cacertfile.c_str());
    if (names == nullptr) {
      return failure("cannot read CA file " + options.cacertfile + ": " + drain_errors());
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(
        ctx, SSL_VERIFY_PEER | (options.fail_if_no_peer_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
        nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<const TlsContext>(
      new TlsContext(owner.release(), true, options.min_version, options.max_version));
}

ContextResult TlsContext::client(const TlsClientOptions& options) {
  ERR_clear_error();
  if (options.certfile.empty() != options.keyfile.empty()) {
    return failure("TLS client: certfile and keyfile go together (one of them is not set)");
  }
  SslCtxOwner owner{SSL_CTX_new(TLS_client_method())};
  SSL_CTX* ctx = owner.ctx;
  if (ctx == nullptr) return failure("cannot create a TLS context: " + drain_errors());
  if (auto r = configure_common(ctx, options.min_version, options.max_version); !r) {
    return failure(r.error());
  }
  if (!options.certfile.empty()) {
    if (auto r = load_identity(ctx, options.certfile, options.keyfile, options.key_password); !r)
      return failure(r.error());
  }
  if (options.cacertfile.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return failure("cannot load the system's trusted CAs: " + drain_errors());
    }
  } else if (auto r = load_trust(ctx, options.cacertfile); !r) {
    return failure(r.error());
  }
  SSL_CTX_set_verify(ctx, options.verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  bool is_ip = false;
  if (!options.server_name.empty()) {
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
    is_ip = X509_VERIFY_PARAM_set1_ip_asc(param, options.server_name.c_str()) == 1;
    ERR_clear_error();  // "not an IP address" is not an error here
    if (!is_ip) {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_host(param, options.server_name.c_str(), 0) != 1) {
        return failure("TLS client: bad server name \"" + options.server_name +
                       "\": " + drain_errors());
      }
    }
  }
  auto context = std::shared_ptr<TlsContext>(
      new TlsContext(owner.release(), false, options.min_version, options.max_version));
  context->server_name_ = options.server_name;
  if (!is_ip) context->sni_ = options.server_name;
  return context;
}

// ---- TlsSession -----------------------------------------------------------------------

std::string_view to_string(TlsState state) {
  switch (state) {
    case TlsState::Handshaking:
      return "handshaking";
    case TlsState::Established:
      return "established";
    case TlsState::Closing:
      return "closing";
    case TlsState::Closed:
      return "closed";
    case TlsState::Failed:
      return "failed";
  }
  return "?";
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  ssl_ = SSL_new(context_->ctx_);
  bio_ = ssl_ == nullptr ? nullptr : BIO_new(io_method());
  if (bio_ == nullptr) {
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  SSL_set_bio(ssl_, bio_, bio_);  // the SSL owns the one reference
  if (context_->is_server_) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!context_->sni_.empty() && SSL_set_tlsext_host_name(ssl_, context_->sni_.c_str()) != 1) {
      release();
      ERR_clear_error();
      throw std::bad_alloc();
    }
  }
}

TlsSession::~TlsSession() { release(); }

void TlsSession::release() {
  SSL_free(ssl_);  // frees bio_ too
  ssl_ = nullptr;
  bio_ = nullptr;
}

TlsSession::TlsSession(TlsSession&& other) noexcept
    : context_(std::move(other.context_)),
      ssl_(std::exchange(other.ssl_, nullptr)),
      bio_(std::exchange(other.bio_, nullptr)),
      state_(other.state_),
      peer_alert_(other.peer_alert_),
      handshake_done_(other.handshake_done_),
      first_bytes_checked_(other.first_bytes_checked_),
      held_(std::move(other.held_)),
      failure_(std::move(other.failure_)) {}

TlsSession& TlsSession::operator=(TlsSession&& other) noexcept {
  if (this != &other) {
    release();
    context_ = std::move(other.context_);
    ssl_ = std::exchange(other.ssl_, nullptr);
    bio_ = std::exchange(other.bio_, nullptr);
    state_ = other.state_;
    peer_alert_ = other.peer_alert_;
    handshake_done_ = other.handshake_done_;
    first_bytes_checked_ = other.first_bytes_checked_;
    held_ = std::move(other.held_);
    failure_ = std::move(other.failure_);
  }
  return *this;
}

TlsState TlsSession::start(std::string& cipher_out) {
  if (is_server() || state_ != TlsState::Handshaking || SSL_in_before(ssl_) == 0) return state_;
  CallIo io{nullptr, 0, &cipher_out};
  CallScope scope(bio_, io);
  return drive_handshake();
}

TlsState TlsSession::feed(std::string_view cipher, std::string& plain_out,
                          std::string& cipher_out) {
  return feed(std::span(reinterpret_cast<const uint8_t*>(cipher.data()), cipher.size()), plain_out,
              cipher_out);
}

TlsState TlsSession::feed(std::span<const uint8_t> cipher, std::string& plain_out,
                          std::string& cipher_out) {
  if (state_ == TlsState::Closed || state_ == TlsState::Failed) return state_;
  if (is_server() && !check_first_bytes(cipher)) return state_;
  CallIo io{cipher.data(), cipher.size(), &cipher_out};
  CallScope scope(bio_, io);
  if (state_ == TlsState::Handshaking && drive_handshake() != TlsState::Established) {
    return state_;
  }
  return read_records(plain_out);
}

// A client's first record is a handshake record (ClientHello) whose version starts with 3
// [RFC 8446 §5.1, D.1]. Checked before OpenSSL sees the bytes, so that the common mistake,
// an MQTT client without TLS on the TLS port, is named as such.
bool TlsSession::check_first_bytes(std::span<const uint8_t> cipher) {
  for (size_t i = 0; i < cipher.size() && first_bytes_checked_ < 2; ++i, ++first_bytes_checked_) {
    const uint8_t byte = cipher[i];
    std::array<char, 8> hex{};
    std::snprintf(hex.data(), hex.size(), "0x%02x", byte);
    if (first_bytes_checked_ == 0 && byte == kMqttConnect) {
      fail("not TLS: the client sent plain MQTT (CONNECT, first byte 0x10) to the TLS port?");
      return false;
    }
    if (first_bytes_checked_ == 0 && byte != kHandshakeRecord) {
      fail(std::string("not TLS: the first byte is ") + hex.data() +
           ", a TLS ClientHello record starts with 0x16");
      return false;
    }
    if (first_bytes_checked_ == 1 && byte != 0x03) {
      fail(std::string("not TLS: the record version starts with ") + hex.data() + ", not 0x03");
      return false;
    }
  }
  return true;
}

TlsState TlsSession::drive_handshake() {
  const int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    state_ = TlsState::Established;
    handshake_done_ = true;
    if (!held_.empty()) {
      write_now(held_);       // on failure, the state is Failed
      held_ = std::string();  // free the buffer, not only empty it
    }
    return state_;
  }
  const int error = SSL_get_error(ssl_, r);
  if (error == SSL_ERROR_WANT_READ) return state_;  // the input is used up
  fail_from_openssl(error);
  return state_;
}

TlsState TlsSession::read_records(std::string& plain_out) {
  std::array<char, kMaxRecordPlaintext> buf;
  for (;;) {
    size_t got = 0;
    const int r = SSL_read_ex(ssl_, buf.data(), buf.size(), &got);
    if (r == 1) {
      plain_out.append(buf.data(), got);
      continue;
    }
    const int error = SSL_get_error(ssl_, r);
    if (error == SSL_ERROR_WANT_READ) return state_;
    if (error == SSL_ERROR_ZERO_RETURN) {
      // The peer's close_notify. From Established, answer with ours [RFC 8446 §6.1].
      if (state_ == TlsState::Established && SSL_shutdown(ssl_) < 0) {
        fail_from_openssl(SSL_get_error(ssl_, -1));
        return state_;
      }
      state_ = TlsState::Closed;
      return state_;
    }
    fail_from_openssl(error);
    return state_;
  }
}

bool TlsSession::write(std::string_view plain, std::string& cipher_out) {
  switch (state_) {
    case TlsState::Handshaking:
      if (held_.size() + plain.size() > kMaxHeldPlaintext) return false;
      held_.append(plain);
      start(cipher_out);
      return state_ != TlsState::Failed;
    case TlsState::Established: {
      CallIo io{nullptr, 0, &cipher_out};
      CallScope scope(bio_, io);
      return write_now(plain);
    }
    case TlsState::Closing:
    case TlsState::Closed:
    case TlsState::Failed:
      return false;
  }
  return false;
}

bool TlsSession::write_now(std::string_view plain) {
  if (plain.empty()) return true;
  size_t written = 0;
  const int r = SSL_write_ex(ssl_, plain.data(), plain.size(), &written);
  if (r == 1) return true;  // our BIO takes everything: the whole input was written
  fail_from_openssl(SSL_get_error(ssl_, r));
  return false;
}

TlsState TlsSession::close(std::string& cipher_out) {
  if (state_ == TlsState::Handshaking) {
    held_ = std::string();
    state_ = TlsState::Closed;
  } else if (state_ == TlsState::Established) {
    CallIo io{nullptr, 0, &cipher_out};
    CallScope scope(bio_, io);
    if (SSL_shutdown(ssl_) < 0) {
      fail_from_openssl(SSL_get_error(ssl_, -1));
    } else {
      state_ = TlsState::Closing;
    }
  }
  return state_;
}

void TlsSession::fail(std::string reason) {
  state_ = TlsState::Failed;
  failure_ = std::move(reason);
  held_ = std::string();
}

void TlsSession::fail_from_openssl(int ssl_error) {
  std::string reason;
  bool peer_alert = false;
  while (const unsigned long code = ERR_get_error()) {
    const int lib = ERR_GET_LIB(code);
    const int why = ERR_GET_REASON(code);
    if (!ERR_SYSTEM_ERROR(code) && why == ERR_R_SYS_LIB) continue;
    std::string text = error_text(code);
    if (lib == ERR_LIB_SSL && why == SSL_R_CERTIFICATE_VERIFY_FAILED) {
      const long result = SSL_get_verify_result(ssl_);
      text = std::string("certificate verify failed: ") + X509_verify_cert_error_string(result);
      if (result == X509_V_ERR_HOSTNAME_MISMATCH || result == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        text += " (expected \"" + context_->server_name_ + "\")";
      }
    } else if (lib == ERR_LIB_SSL && why == SSL_R_UNSUPPORTED_PROTOCOL) {
      text = "unsupported protocol version: the peer supports none of " +
             versions_text(context_->min_version_, context_->max_version_);
    } else if (lib == ERR_LIB_SSL && why >= SSL_AD_REASON_OFFSET) {
      peer_alert = true;
      text = "peer alert: " + text;
    }
    append_distinct(reason, text);
  }
  if (reason.empty()) {
    reason = ssl_error == SSL_ERROR_SYSCALL ? "the TLS stream broke off"
                                            : "TLS error " + std::to_string(ssl_error);
  }
  fail(std::move(reason));
  peer_alert_ = peer_alert;
}

std::string_view TlsSession::protocol_version() const {
  if (!handshake_done_) return {};
  return SSL_get_version(ssl_);
}

std::string_view TlsSession::cipher() const {
  if (!handshake_done_) return {};
  const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_);
  const char* name = cipher == nullptr ? nullptr : SSL_CIPHER_get_name(cipher);
  return name == nullptr ? std::string_view() : std::string_view(name);
}

namespace {

// The string's bytes, or nothing when they hold a NUL (an ASN.1 string may; a C string
// comparison further on would stop there).
std::optional<std::string> nul_free(const unsigned char* data, int size) {
  if (data == nullptr || size < 0) return std::nullopt;
  std::string text(reinterpret_cast<const char*>(data), static_cast<size_t>(size));
  if (text.find('\0') != std::string::npos) return std::nullopt;
  return text;
}

std::string last_common_name(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int last = -1;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) last = i;
  if (last < 0) return {};
  ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
  unsigned char* utf8 = nullptr;
  const int size = ASN1_STRING_to_UTF8(&utf8, value);
  auto text = nul_free(utf8, size);
  OPENSSL_free(utf8);
  return text.value_or(std::string());
}

std::string subject_text(X509* cert) {
  BIO* out = BIO_new(BIO_s_mem());
  if (out == nullptr) return {};
  std::string text;
  if (X509_NAME_print_ex(out, X509_get_subject_name(cert), 0,
                         XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
    char* data = nullptr;
    const long size = BIO_get_mem_data(out, &data);
    if (data != nullptr && size > 0) text.assign(data, static_cast<size_t>(size));
  }
  BIO_free(out);
  return text.find('\0') == std::string::npos ? text : std::string();
}

}  // namespace

std::optional<TlsPeerCertificate> TlsSession::peer_certificate() const {
  if (!handshake_done_) return std::nullopt;
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert == nullptr) return std::nullopt;
  TlsPeerCertificate peer;
  peer.verified = (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0 &&
                  SSL_get_verify_result(ssl_) == X509_V_OK;
  peer.subject_cn = last_common_name(cert);
  peer.subject = subject_text(cert);
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS && name->type != GEN_EMAIL) continue;
    const ASN1_IA5STRING* ia5 = name->type == GEN_DNS ? name->d.dNSName : name->d.rfc822Name;
    auto text = nul_free(ASN1_STRING_get0_data(ia5), ASN1_STRING_length(ia5));
    if (!text) continue;
    (name->type == GEN_DNS ? peer.dns_names : peer.emails).push_back(std::move(*text));
  }
  GENERAL_NAMES_free(names);
  ERR_clear_error();
  return peer;
}

}  // namespace harbor::wire
