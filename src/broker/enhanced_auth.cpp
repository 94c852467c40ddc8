// ShardBroker, MQTT 5 enhanced authentication (section 4.12) with SCRAM-SHA-256: CONNECT
// with the method and client-first-message, AUTH 0x18 both ways, CONNACK with
// server-final-message; re-authentication (AUTH 0x19) on a connected client. The user's
// password comes from auth's password file and must be stored in plain text there (a hash
// cannot give SCRAM its salted password). Never logs a secret or an exchange message.
#include <string>
#include <utility>

#include "broker/password_hash.hpp"
#include "broker/shard_broker.hpp"
#include "broker/shard_broker_detail.hpp"

namespace harbor::broker {

using namespace detail;

void ShardBroker::send_auth(Link* link, ReasonCode rc, std::string data) {
  mqtt::Auth auth;
  auth.reason = rc;
  auth.props.authentication_method = link->enhanced_auth->method;
  auth.props.authentication_data = std::move(data);
  mqtt::encode(mqtt::Packet{std::move(auth)}, link->version(), link->out());
  link->mark_dirty();
}

std::optional<std::string> ShardBroker::scram_first(Link* link, std::string_view data) {
  EnhancedAuth& ea = *link->enhanced_auth;
  ea.exchange = std::make_unique<ScramServer>();
  ea.doomed = {};
  auto user = ea.exchange->client_first(data);
  if (!user) return std::nullopt;
  const auto& access = settings_->access;
  if (scram_source_ != access) {  // a reload: passwords may have changed
    scram_cache_.clear();
    scram_source_ = access;
  }
  const ScramCredentials* creds = nullptr;
  ScramCredentials made_up;
  const auto& passwords = access->settings().passwords;
  auto entry = passwords.find(*user);
  if (auto cached = scram_cache_.find(*user); cached != scram_cache_.end()) {
    creds = &cached->second;
  } else if (entry != passwords.end() && secret_kind(entry->second) == SecretKind::Plain) {
    if (auto c = scram_credentials(entry->second, scram_nonce(16))) {
      creds = &scram_cache_.emplace(*user, std::move(*c)).first->second;
    }
  }
  if (creds == nullptr) {
    ea.doomed = entry == passwords.end()
                    ? std::string_view("unknown user")
                    : std::string_view(
                          "the user's password is stored hashed; SCRAM-SHA-256 needs it in "
                          "plain text in auth.password");
    // The exchange runs to its end and fails there, at the cost of one HMAC (no PBKDF2
    // for whoever sends made-up names).
    if (scram_secret_.empty()) scram_secret_ = scram_nonce(32);
    made_up = scram_decoy(scram_secret_, *user);
    creds = &made_up;
  }
  if (ea.user && *ea.user != *user) ea.doomed = "re-authentication as another user";
  ea.claimed = std::move(*user);
  return ea.exchange->server_first(*creds, scram_nonce());
}

void ShardBroker::begin_enhanced_auth(Link* link, mqtt::Connect c) {
  const auto& access = settings_->access;
  const std::string& method = *c.props.authentication_method;
  if (method != kScramSha256 || !access || !access->settings().check_users) {
    // [MQTT-4.12.0-1]: not a method we can run (SCRAM needs auth's password file).
    link->set_close_reason("CONNECT refused: authentication method '" + method +
                           (method == kScramSha256 ? "' needs auth.password" : "' unknown"));
    return reject_connect(link, ReasonCode::BadAuthenticationMethod);
  }
  link->enhanced_auth = std::make_unique<EnhancedAuth>();
  link->enhanced_auth->method = method;
  const std::string data = c.props.authentication_data.value_or(std::string());
  auto server_first = scram_first(link, data);
  if (!server_first) {
    stats_.auth_refused.add();
    link->set_close_reason("CONNECT refused: SCRAM-SHA-256: " +
                           std::string(link->enhanced_auth->exchange->error()));
    return reject_connect(link, ReasonCode::NotAuthorized);
  }
  link->enhanced_auth->pending_connect = std::make_unique<mqtt::Connect>(std::move(c));
  send_auth(link, ReasonCode::ContinueAuthentication, std::move(*server_first));
}

void ShardBroker::on_auth_while_connecting(Link* link, mqtt::Packet& packet) {
  EnhancedAuth& ea = *link->enhanced_auth;
  if (std::holds_alternative<mqtt::Disconnect>(packet)) {
    link->set_close_reason("DISCONNECT during authentication");
    link->close_after_flush();
    return;
  }
  auto* auth = std::get_if<mqtt::Auth>(&packet);
  if (auth == nullptr || auth->reason != ReasonCode::ContinueAuthentication ||
      auth->props.authentication_method != ea.method || !ea.exchange) {
    // Only AUTH (or DISCONNECT) may come before the CONNACK [MQTT-4.12.0-4]... in the
    // same method [MQTT-4.12.0-5].
    link->set_close_reason(
        "protocol error: only AUTH 0x18 with the CONNECT's method may follow it before CONNACK");
    return reject_connect(link, ReasonCode::ProtocolError);
  }
  auto final = ea.exchange->client_final(auth->props.authentication_data.value_or(""));
  if (!final || !ea.doomed.empty()) {
    stats_.auth_refused.add();
    link->set_close_reason(std::string("CONNECT refused: SCRAM-SHA-256: ") +
                           std::string(ea.doomed.empty() ? ea.exchange->error() : ea.doomed));
    return reject_connect(link, ReasonCode::BadUserNameOrPassword);
  }
  ea.exchange.reset();
  ea.user = std::move(ea.claimed);
  ea.final_data = std::move(*final);
  std::unique_ptr<mqtt::Connect> c = std::move(ea.pending_connect);
  on_connect(link, std::move(*c));
}

void ShardBroker::on_reauthenticate(Link* link, mqtt::Auth& auth) {
  EnhancedAuth* ea = link->enhanced_auth.get();
  if (ea == nullptr || !ea->user) {
    // AUTH without an Authentication Method in CONNECT [MQTT-4.12.0-1]... is a protocol error.
    return close_with(link, ReasonCode::ProtocolError);
  }
  if (auth.props.authentication_method != ea->method) {
    link->set_close_reason("protocol error: AUTH with another authentication method");
    return close_with(link, ReasonCode::ProtocolError);  // [MQTT-4.12.1-1]
  }
  if (auth.reason == ReasonCode::ReAuthenticate && !ea->exchange) {
    auto server_first = scram_first(link, auth.props.authentication_data.value_or(""));
    if (!server_first) {
      stats_.auth_refused.add();
      link->set_close_reason("re-authentication refused: SCRAM-SHA-256: " +
                             std::string(ea->exchange->error()));
      ea->exchange.reset();
      return close_with(link, ReasonCode::NotAuthorized);
    }
    return send_auth(link, ReasonCode::ContinueAuthentication, std::move(*server_first));
  }
  if (auth.reason == ReasonCode::ContinueAuthentication && ea->exchange) {
    auto final = ea->exchange->client_final(auth.props.authentication_data.value_or(""));
    const std::string_view why = !ea->doomed.empty() ? ea->doomed : ea->exchange->error();
    ea->exchange.reset();
    if (!final || !ea->doomed.empty()) {
      stats_.auth_refused.add();
      link->set_close_reason("re-authentication refused: SCRAM-SHA-256: " + std::string(why));
      return close_with(link, ReasonCode::NotAuthorized);
    }
    return send_auth(link, ReasonCode::Success, std::move(*final));
  }
  link->set_close_reason("protocol error: AUTH out of sequence");
  close_with(link, ReasonCode::ProtocolError);
}

}  // namespace harbor::broker
