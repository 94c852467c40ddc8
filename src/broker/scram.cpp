#include "broker/scram.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>

#include "broker/password_hash.hpp"

namespace harbor::broker {
namespace {

using Key = std::array<uint8_t, 32>;

Key hmac(const uint8_t* key, size_t key_len, std::string_view data) {
  Key out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_len),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
  return out;
}

Key sha256(const Key& in) {
  Key out{};
  unsigned int len = 0;
  EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string_view as_text(const Key& k) {
  return {reinterpret_cast<const char*>(k.data()), k.size()};
}

// Undoes saslname's escapes ("=2C" is ',', "=3D" is '='); nullopt for any other '='.
std::optional<std::string> sasl_name(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '=') {
      out.push_back(in[i]);
      continue;
    }
    const std::string_view esc = in.substr(i + 1, 2);
    if (esc == "2C")
      out.push_back(',');
    else if (esc == "3D")
      out.push_back('=');
    else
      return std::nullopt;
    i += 2;
  }
  return out;
}

bool printable_nonce(std::string_view n) {
  return !n.empty() &&
         std::all_of(n.begin(), n.end(), [](char c) { return c >= 0x21 && c <= 0x7E && c != ','; });
}

// The next ','-separated attribute of `rest` (consumed).
std::string_view next_attribute(std::string_view& rest) {
  const size_t comma = rest.find(',');
  std::string_view a = rest.substr(0, comma);
  rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  return a;
}

}  // namespace

std::optional<ScramCredentials> scram_credentials(std::string_view password, std::string salt,
                                                  uint32_t iterations) {
  ScramCredentials c;
  c.salt = std::move(salt);
  c.iterations = iterations;
  Key salted{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(c.salt.data()),
                        static_cast<int>(c.salt.size()), static_cast<int>(iterations), EVP_sha256(),
                        static_cast<int>(salted.size()), salted.data()) != 1) {
    return std::nullopt;
  }
  c.stored_key = sha256(hmac(salted.data(), salted.size(), "Client Key"));
  c.server_key = hmac(salted.data(), salted.size(), "Server Key");
  return c;
}

ScramCredentials scram_decoy(std::string_view secret, std::string_view user) {
  ScramCredentials c;
  const Key k = hmac(reinterpret_cast<const uint8_t*>(secret.data()), secret.size(), user);
  c.salt.assign(reinterpret_cast<const char*>(k.data()), 16);
  RAND_bytes(c.stored_key.data(), static_cast<int>(c.stored_key.size()));
  RAND_bytes(c.server_key.data(), static_cast<int>(c.server_key.size()));
  return c;
}

std::optional<std::string> ScramServer::client_first(std::string_view message) {
  // gs2-header: cbind flag, authzid, each followed by ','.
  std::string_view rest = message;
  const std::string_view flag = next_attribute(rest);
  if (flag.starts_with("p=")) return fail("the client asked for channel binding");
  if (flag != "n" && flag != "y") return fail("malformed client-first-message (gs2 header)");
  if (rest.data() == nullptr || message.size() == flag.size())
    return fail("malformed client-first-message (gs2 header)");
  const std::string_view authz = next_attribute(rest);
  std::optional<std::string> authzid;
  if (!authz.empty()) {
    if (!authz.starts_with("a=") || !(authzid = sasl_name(authz.substr(2))))
      return fail("malformed client-first-message (authzid)");
  }
  gs2_header_ = std::string(message.substr(0, message.size() - rest.size()));
  client_first_bare_ = std::string(rest);

  std::string_view attr = next_attribute(rest);
  if (attr.starts_with("m=")) return fail("the client requires an unknown SCRAM extension");
  if (!attr.starts_with("n=")) return fail("malformed client-first-message (no n=user)");
  auto user = sasl_name(attr.substr(2));
  if (!user || user->empty()) return fail("malformed client-first-message (user name)");
  attr = next_attribute(rest);
  if (!attr.starts_with("r=") || !printable_nonce(attr.substr(2)))
    return fail("malformed client-first-message (nonce)");
  client_nonce_ = std::string(attr.substr(2));
  if (authzid && *authzid != *user) return fail("the authorization identity is not the user");
  error_ = {};
  return user;
}

std::string ScramServer::server_first(const ScramCredentials& credentials,
                                      std::string_view server_nonce) {
  credentials_ = credentials;
  nonce_ = client_nonce_ + std::string(server_nonce);
  server_first_ = "r=" + nonce_ + ",s=" + base64_encode(credentials_.salt) +
                  ",i=" + std::to_string(credentials_.iterations);
  return server_first_;
}

std::optional<std::string> ScramServer::client_final(std::string_view message) {
  if (server_first_.empty()) return fail("client-final-message before server-first-message");
  const size_t proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos) return fail("malformed client-final-message (no proof)");
  const std::string_view without_proof = message.substr(0, proof_at);
  std::string_view rest = without_proof;
  std::string_view attr = next_attribute(rest);
  if (!attr.starts_with("c=")) return fail("malformed client-final-message (no c=)");
  auto binding = base64_decode(attr.substr(2));
  if (!binding || *binding != gs2_header_)
    return fail("the client-final-message's channel binding is not its gs2 header");
  attr = next_attribute(rest);
  if (!attr.starts_with("r=") || attr.substr(2) != nonce_)
    return fail("the client-final-message's nonce is not the exchange's");
  auto proof = base64_decode(message.substr(proof_at + 3));
  if (!proof || proof->size() != 32) return fail("malformed client-final-message (proof)");

  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const Key signature = hmac(credentials_.stored_key.data(), 32, auth_message);
  Key client_key{};
  for (size_t i = 0; i < client_key.size(); ++i)
    client_key[i] = static_cast<uint8_t>(static_cast<uint8_t>((*proof)[i]) ^ signature[i]);
  if (!equal_constant_time(as_text(sha256(client_key)), as_text(credentials_.stored_key)))
    return fail("wrong password (the SCRAM proof does not match)");
  const Key server_signature = hmac(credentials_.server_key.data(), 32, auth_message);
  error_ = {};
  return "v=" + base64_encode(as_text(server_signature));
}

std::string scram_nonce(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1)
    return {};
  return base64_encode(raw);
}

}  // namespace harbor::broker
