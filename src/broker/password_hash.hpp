// Password secrets as stored in password files: plain text (NanoMQ's nanomq_pwd.conf), and
// the hashed forms of Mosquitto's mosquitto_passwd, read and written as they are:
//   $6$<salt b64>$<hash b64>           SHA-512 of password then salt
//   $7$<iterations>$<salt b64>$<hash b64>  PBKDF2-HMAC-SHA512, 64-byte hash
// Comparison is in constant time for the secret's length. Pure; any thread (OpenSSL's
// digest and PBKDF2 functions are thread-safe).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace harbor::broker {

enum class SecretKind : uint8_t { Plain, Sha512, Pbkdf2Sha512, Malformed };

// The form of a stored secret: a value starting with "$6$" or "$7$" is hashed (Malformed when
// its fields do not decode); anything else is a plain password.
SecretKind secret_kind(std::string_view stored);

// True when `password` (as the client sent it, binary) matches `stored`. A malformed
// hashed secret matches nothing.
bool verify_password(std::string_view stored, std::string_view password);

// A new "$7$..." secret for `password` with a fresh random 12-byte salt (Mosquitto's
// length); what `harbormq passwd` writes. Empty when the random source fails.
std::string hash_password(std::string_view password, uint32_t iterations);

// Standard base64 with padding (RFC 4648 §4); decoding refuses anything else (empty input
// included).
std::optional<std::string> base64_decode(std::string_view in);
std::string base64_encode(std::string_view in);

// Equal sizes and bytes, in time that depends only on the sizes.
bool equal_constant_time(std::string_view a, std::string_view b);

}  // namespace harbor::broker
