// Authentication and authorisation from files (the `auth {}` section: NanoMQ's password and
// ACL files, Mosquitto's password file): who may connect, and per connection what it may
// publish and subscribe to. Built by app from the configuration, shared read-only by every
// shard (one immutable snapshot per load or reload); ClientAcl is one connection's view of
// it, owned by that connection's shard.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace harbor::broker {

// An address or network: "10.0.0.7", "10.0.0.0/8", "::1", "fd00::/8".
struct IpRange {
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  uint8_t prefix = 0;  // leading bits that must be equal
  // "a.b.c.d[/n]" or an IPv6 address [/n]; std::nullopt when it is neither.
  static std::optional<IpRange> parse(std::string_view text);
  bool contains(std::string_view address) const;  // a bare address, as IpRange::parse takes
};

// Who an ACL rule is for: every condition given must hold. "#" (username, client id)
// matches every client, with or without a user name.
struct AclWho {
  std::optional<std::string> username;
  std::optional<std::string> client_id;
  std::optional<IpRange> ipaddr;
};

enum AclAction : uint8_t { kAclPublish = 1, kAclSubscribe = 2, kAclPubSub = 3 };

struct AclRule {
  bool allow = true;
  uint8_t actions = kAclPubSub;
  enum class Combine : uint8_t { All, Any } combine = Combine::All;  // "and" / "or"
  std::vector<AclWho> who;                                           // empty: every client
  std::vector<std::string> topics;  // filters, placeholders %u %c ${username} ${clientid};
                                    // empty: every topic
};

struct AccessSettings {
  bool allow_anonymous = true;
  // User name → stored secret (plain, "$6$..." or "$7$..."; broker/password_hash.hpp).
  std::unordered_map<std::string, std::string> passwords;
  bool check_users = false;    // a password file was given (with no users, every name fails)
  std::vector<AclRule> rules;  // first match wins; none: everything is allowed
  bool no_match_allow = true;
  bool deny_disconnect = false;  // deny_action = disconnect
  uint32_t cache_size = 32;      // publish decisions remembered per connection
  // auth.http_auth: CONNECTs the password file does not accept are asked of the HTTP server.
  bool http_auth = false;
  // auth.http_auth.acl_req: each publish and subscribe is also asked of the HTTP server
  // (answers kept per connection for http_acl_ttl_ms, auth.cache.ttl; at most cache_size).
  bool http_acl = false;
  int64_t http_acl_ttl_ms = 60'000;
};

enum class ConnectVerdict : uint8_t { Accept, BadCredentials, NotAuthorized };

class AccessControl {
 public:
  explicit AccessControl(AccessSettings settings);

  const AccessSettings& settings() const { return settings_; }
  bool has_rules() const { return !settings_.rules.empty(); }

  // CONNECT: a user name is checked against the password file when one was given (unknown
  // user or wrong password: BadCredentials); a client without one, or with one and no
  // password file, is accepted when anonymous clients are.
  ConnectVerdict check_connect(const std::optional<std::string>& username,
                               const std::optional<std::string>& password) const;

 private:
  AccessSettings settings_;
};

// One connection's ACL: the rules that apply to its user name, client id and address,
// placeholders filled in, and a small cache of publish decisions (no allocation on a hit).
// Rebuilt from the current snapshot when a reload replaced it.
class ClientAcl {
 public:
  ClientAcl(std::shared_ptr<const AccessControl> source, std::optional<std::string> username,
            std::string client_id, std::string address);

  // `current`: the snapshot the shard runs with now; a different one rebuilds the view.
  bool may_publish(const std::shared_ptr<const AccessControl>& current, std::string_view topic);
  // A filter (shared filters: pass the filter inside "$share/g/"). An allow rule grants it
  // when its filter covers every topic the requested one matches; a deny rule refuses it
  // when the two can match a common topic.
  bool may_subscribe(const std::shared_ptr<const AccessControl>& current, std::string_view filter);
  bool deny_disconnects() const { return source_->settings().deny_disconnect; }

  // auth.http_auth.acl_req: the HTTP server's answer for (action, topic) if one is known and
  // not older than the snapshot's http_acl_ttl_ms. `action`: kAclPublish or kAclSubscribe.
  // A reload's new snapshot (`current`) forgets every answer.
  std::optional<bool> http_decision(const std::shared_ptr<const AccessControl>& current,
                                    uint8_t action, std::string_view topic, int64_t now_ms);
  // Keeps an answer; beyond the snapshot's cache_size (at least 1) the oldest goes.
  void remember_http(uint8_t action, std::string_view topic, bool allow, int64_t now_ms);
  const std::optional<std::string>& username() const { return username_; }
  const std::string& client_id() const { return client_id_; }
  const std::string& address() const { return address_; }

 private:
  struct Applied {
    uint16_t rule = 0;                // index into the snapshot's rules
    std::vector<std::string> topics;  // filled-in topics; empty and !all: matches nothing
    bool all_topics = false;
  };
  struct CacheSlot {
    uint64_t hash = 0;
    std::string topic;
    bool used = false;
    bool allow = false;
  };

  void rebuild(const std::shared_ptr<const AccessControl>& current);
  bool decide(uint8_t action, std::string_view topic_or_filter) const;

  std::shared_ptr<const AccessControl> source_;
  std::optional<std::string> username_;
  std::string client_id_;
  std::string address_;
  std::vector<Applied> applied_;
  std::vector<CacheSlot> cache_;  // direct-mapped; sized on first use
  struct HttpAnswer {
    uint8_t action = 0;
    bool allow = false;
    int64_t at_ms = 0;  // steady ms it came
    std::string topic;
  };
  std::vector<HttpAnswer> http_answers_;  // oldest first; only with acl_req
};

}  // namespace harbor::broker
