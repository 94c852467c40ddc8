#include "broker/password_hash.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <vector>

namespace harbor::broker {
namespace {

constexpr size_t kHashLen = 64;  // SHA-512
constexpr size_t kSaltLen = 12;  // what mosquitto_passwd writes
constexpr uint32_t kMaxIterations = 10'000'000;

struct Parsed {
  SecretKind kind = SecretKind::Malformed;
  uint32_t iterations = 0;
  std::string salt;
  std::string hash;
};

// Splits "$6$salt$hash" / "$7$iter$salt$hash" and decodes its fields.
Parsed parse(std::string_view stored) {
  Parsed p;
  std::vector<std::string_view> fields;
  size_t start = 3;
  while (start <= stored.size()) {
    size_t end = stored.find('$', start);
    if (end == std::string_view::npos) end = stored.size();
    fields.push_back(stored.substr(start, end - start));
    start = end + 1;
  }
  const bool pbkdf2 = stored[1] == '7';
  if (fields.size() != (pbkdf2 ? 3u : 2u)) return p;
  size_t next = 0;
  if (pbkdf2) {
    const auto it = fields[next++];
    auto [ptr, ec] = std::from_chars(it.data(), it.data() + it.size(), p.iterations);
    if (ec != std::errc() || ptr != it.data() + it.size() || p.iterations == 0 ||
        p.iterations > kMaxIterations) {
      return p;
    }
  }
  auto salt = base64_decode(fields[next++]);
  auto hash = base64_decode(fields[next]);
  if (!salt || salt->empty() || !hash || hash->size() != kHashLen) return p;
  p.salt = std::move(*salt);
  p.hash = std::move(*hash);
  p.kind = pbkdf2 ? SecretKind::Pbkdf2Sha512 : SecretKind::Sha512;
  return p;
}

std::optional<std::string> derive(const Parsed& p, std::string_view password) {
  std::string out(kHashLen, '\0');
  auto* dst = reinterpret_cast<unsigned char*>(out.data());
  if (p.kind == SecretKind::Pbkdf2Sha512) {
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(p.salt.data()),
                          static_cast<int>(p.salt.size()), static_cast<int>(p.iterations),
                          EVP_sha512(), static_cast<int>(kHashLen), dst) != 1) {
      return std::nullopt;
    }
    return out;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return std::nullopt;
  unsigned int len = 0;
  const bool ok = EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 &&
                  EVP_DigestUpdate(ctx, p.salt.data(), p.salt.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx, dst, &len) == 1 && len == kHashLen;
  EVP_MD_CTX_free(ctx);
  if (!ok) return std::nullopt;
  return out;
}

bool hashed_prefix(std::string_view s) {
  return s.size() >= 3 && s[0] == '$' && (s[1] == '6' || s[1] == '7') && s[2] == '$';
}

}  // namespace

std::optional<std::string> base64_decode(std::string_view in) {
  if (in.empty() || in.size() % 4 != 0) return std::nullopt;
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts the bytes the '=' padding stands for: take them off.
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) --len;
  out.resize(len);
  return out;
}

std::string base64_encode(std::string_view in) {
  std::string out((in.size() + 2) / 3 * 4 + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

bool equal_constant_time(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

SecretKind secret_kind(std::string_view stored) {
  if (!hashed_prefix(stored)) return SecretKind::Plain;
  return parse(stored).kind;
}

bool verify_password(std::string_view stored, std::string_view password) {
  if (!hashed_prefix(stored)) return equal_constant_time(stored, password);
  const Parsed p = parse(stored);
  if (p.kind == SecretKind::Malformed) return false;
  const auto derived = derive(p, password);
  return derived && equal_constant_time(*derived, p.hash);
}

std::string hash_password(std::string_view password, uint32_t iterations) {
  Parsed p;
  p.kind = SecretKind::Pbkdf2Sha512;
  p.iterations = iterations == 0 ? 1 : std::min(iterations, kMaxIterations);
  p.salt.assign(kSaltLen, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(p.salt.data()), static_cast<int>(kSaltLen)) !=
      1) {
    return {};
  }
  const auto derived = derive(p, password);
  if (!derived) return {};
  return "$7$" + std::to_string(p.iterations) + "$" + base64_encode(p.salt) + "$" +
         base64_encode(*derived);
}

}  // namespace harbor::broker
