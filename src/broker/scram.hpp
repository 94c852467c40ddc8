// SCRAM-SHA-256 (RFC 5802, RFC 7677), server side, for MQTT 5 enhanced authentication
// (Authentication Method "SCRAM-SHA-256"). Pure: messages in, messages out; the caller
// carries them in CONNECT / AUTH / CONNACK packets. No channel binding (a client asking for
// it with "p=" is refused; "y" is accepted, as RFC 5802 §6 allows a server without it), no
// SASLprep: a user name is compared as the bytes it is, after "=2C"/"=3D" are undone.
// One ScramServer per exchange, owned by the connection's shard.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace harbor::broker {

inline constexpr std::string_view kScramSha256 = "SCRAM-SHA-256";
// RFC 7677 §4: at least 4096.
inline constexpr uint32_t kScramIterations = 4096;

// What a server keeps for one user (RFC 5802 §3): derived from the password once.
struct ScramCredentials {
  std::string salt;  // raw bytes
  uint32_t iterations = kScramIterations;
  std::array<uint8_t, 32> stored_key{};
  std::array<uint8_t, 32> server_key{};
};

// PBKDF2-HMAC-SHA-256 of `password` with `salt`, then the two keys. nullopt if OpenSSL fails.
std::optional<ScramCredentials> scram_credentials(std::string_view password, std::string salt,
                                                  uint32_t iterations = kScramIterations);

// Credentials for a user who has none usable: the salt is the same on every attempt for one
// user name (from `secret`, as a real user's would be), the keys are random, so the exchange
// looks like a real one and fails at the proof. Costs one HMAC, not a PBKDF2.
ScramCredentials scram_decoy(std::string_view secret, std::string_view user);

class ScramServer {
 public:
  // Reads client-first-message ("n,,n=user,r=nonce"). Returns the user name, or nullopt
  // with error() set when the message is malformed or asks for what is not offered
  // (channel binding, a mandatory extension, an authzid other than the user).
  std::optional<std::string> client_first(std::string_view message);

  // server-first-message for `credentials` (of the user client_first returned, or made up
  // when that user has none, so that the answer does not tell whether the user exists).
  // `server_nonce`: printable, no ','; appended to the client's nonce.
  std::string server_first(const ScramCredentials& credentials, std::string_view server_nonce);

  // Reads client-final-message and checks the proof. Returns server-final-message
  // ("v=...") when the client proved the password; nullopt with error() set otherwise.
  std::optional<std::string> client_final(std::string_view message);

  // Why the last step failed (static text, for the log); empty when none did.
  std::string_view error() const { return error_; }

 private:
  std::optional<std::string> fail(std::string_view why) {
    error_ = why;
    return std::nullopt;
  }

  std::string gs2_header_;         // "n,," as the client sent it
  std::string client_first_bare_;  // "n=user,r=cnonce"
  std::string client_nonce_;
  std::string nonce_;  // client's then server's
  std::string server_first_;
  ScramCredentials credentials_;
  std::string_view error_;
};

// A random printable nonce of `bytes` random bytes (base64, no ','); empty if the random
// source fails.
std::string scram_nonce(size_t bytes = 18);

}  // namespace harbor::broker
