#include "broker/access_control.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <functional>

#include "broker/password_hash.hpp"
#include "mqtt/topic.hpp"

namespace harbor::broker {
namespace {

bool parse_address(std::string_view text, bool& v6, std::array<uint8_t, 16>& bytes) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  bytes.fill(0);
  if (inet_pton(AF_INET, buf, bytes.data()) == 1) {
    v6 = false;
    return true;
  }
  if (inet_pton(AF_INET6, buf, bytes.data()) == 1) {
    v6 = true;
    return true;
  }
  return false;
}

bool has_wildcard_or_separator(std::string_view s) {
  return s.find_first_of("+#/") != std::string_view::npos;
}

// Fills %u %c ${username} ${clientid} in; false when the topic needs a value the client does
// not have, or one that would change its levels (a user name "#" must not make "u/%u" "u/#").
bool fill_placeholders(std::string_view topic, const std::optional<std::string>& username,
                       std::string_view client_id, std::string& out) {
  out.clear();
  for (size_t i = 0; i < topic.size();) {
    const std::string_view rest = topic.substr(i);
    const std::string* user = username ? &*username : nullptr;
    std::string_view value;
    size_t len = 0;
    bool is_user = false;
    if (rest.starts_with("%u")) {
      len = 2, is_user = true;
    } else if (rest.starts_with("${username}")) {
      len = 11, is_user = true;
    } else if (rest.starts_with("%c")) {
      len = 2, value = client_id;
    } else if (rest.starts_with("${clientid}")) {
      len = 11, value = client_id;
    }
    if (len == 0) {
      out.push_back(topic[i++]);
      continue;
    }
    if (is_user) {
      if (user == nullptr) return false;
      value = *user;
    }
    if (value.empty() || has_wildcard_or_separator(value)) return false;
    out.append(value);
    i += len;
  }
  return true;
}

bool has_placeholder(std::string_view topic) {
  return topic.find("%u") != std::string_view::npos || topic.find("%c") != std::string_view::npos ||
         topic.find("${username}") != std::string_view::npos ||
         topic.find("${clientid}") != std::string_view::npos;
}

bool who_matches(const AclWho& w, const std::optional<std::string>& username,
                 std::string_view client_id, std::string_view address) {
  if (w.username && *w.username != "#" && (!username || *username != *w.username)) return false;
  if (w.client_id && *w.client_id != "#" && client_id != *w.client_id) return false;
  if (w.ipaddr && !w.ipaddr->contains(address)) return false;
  return true;
}

bool rule_applies(const AclRule& r, const std::optional<std::string>& username,
                  std::string_view client_id, std::string_view address) {
  if (r.who.empty()) return true;
  for (const auto& w : r.who) {
    const bool m = who_matches(w, username, client_id, address);
    if (r.combine == AclRule::Combine::Any && m) return true;
    if (r.combine == AclRule::Combine::All && !m) return false;
  }
  return r.combine == AclRule::Combine::All;
}

}  // namespace

std::optional<IpRange> IpRange::parse(std::string_view text) {
  IpRange r;
  std::string_view addr = text;
  int prefix = -1;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view bits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
    if (bits.empty() || ec != std::errc() || p != bits.data() + bits.size()) return std::nullopt;
  }
  if (!parse_address(addr, r.v6, r.bytes)) return std::nullopt;
  const int max_bits = r.v6 ? 128 : 32;
  if (prefix == -1) prefix = max_bits;
  if (prefix < 0 || prefix > max_bits) return std::nullopt;
  r.prefix = static_cast<uint8_t>(prefix);
  return r;
}

bool IpRange::contains(std::string_view address) const {
  bool is_v6 = false;
  std::array<uint8_t, 16> b{};
  if (!parse_address(address, is_v6, b)) return false;
  if (is_v6 && !v6) {
    // An IPv4 client on a dual-stack socket: ::ffff:a.b.c.d.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(b.data(), kMapped, 12) != 0) return false;
    std::memmove(b.data(), b.data() + 12, 4);
    is_v6 = false;
  }
  if (is_v6 != v6) return false;
  const unsigned full = prefix / 8;
  if (std::memcmp(b.data(), bytes.data(), full) != 0) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (b[full] & mask) == (bytes[full] & mask);
}

AccessControl::AccessControl(AccessSettings settings) : settings_(std::move(settings)) {}

ConnectVerdict AccessControl::check_connect(const std::optional<std::string>& username,
                                            const std::optional<std::string>& password) const {
  if (username && settings_.check_users) {
    auto it = settings_.passwords.find(*username);
    if (it == settings_.passwords.end()) return ConnectVerdict::BadCredentials;
    if (!password || !verify_password(it->second, *password)) return ConnectVerdict::BadCredentials;
    return ConnectVerdict::Accept;
  }
  return settings_.allow_anonymous ? ConnectVerdict::Accept : ConnectVerdict::NotAuthorized;
}

ClientAcl::ClientAcl(std::shared_ptr<const AccessControl> source,
                     std::optional<std::string> username, std::string client_id,
                     std::string address)
    : username_(std::move(username)),
      client_id_(std::move(client_id)),
      address_(std::move(address)) {
  rebuild(source);
}

void ClientAcl::rebuild(const std::shared_ptr<const AccessControl>& current) {
  source_ = current;
  applied_.clear();
  cache_.clear();
  http_answers_.clear();
  const auto& rules = source_->settings().rules;
  std::string filled;
  for (size_t i = 0; i < rules.size() && i <= UINT16_MAX; ++i) {
    const AclRule& r = rules[i];
    if (!rule_applies(r, username_, client_id_, address_)) continue;
    Applied a;
    a.rule = static_cast<uint16_t>(i);
    a.all_topics = r.topics.empty();
    for (const auto& t : r.topics) {
      if (!has_placeholder(t)) {
        a.topics.push_back(t);
      } else if (fill_placeholders(t, username_, client_id_, filled)) {
        a.topics.push_back(filled);
      }
    }
    applied_.push_back(std::move(a));
  }
}

bool ClientAcl::decide(uint8_t action, std::string_view name) const {
  const auto& rules = source_->settings().rules;
  const bool subscribe = action == kAclSubscribe;
  for (const auto& a : applied_) {
    const AclRule& r = rules[a.rule];
    if ((r.actions & action) == 0) continue;
    bool hit = a.all_topics;
    for (size_t i = 0; !hit && i < a.topics.size(); ++i) {
      const std::string& t = a.topics[i];
      if (!subscribe)
        hit = mqtt::topic_matches(t, name);
      else
        hit = r.allow ? mqtt::filter_covers(t, name) : mqtt::filters_overlap(t, name);
    }
    if (hit) return r.allow;
  }
  return source_->settings().no_match_allow;
}

bool ClientAcl::may_publish(const std::shared_ptr<const AccessControl>& current,
                            std::string_view topic) {
  if (current != source_) rebuild(current);
  const uint32_t size = source_->settings().cache_size;
  if (size == 0) return decide(kAclPublish, topic);
  if (cache_.empty()) cache_.resize(size);
  const uint64_t h = std::hash<std::string_view>{}(topic);
  CacheSlot& slot = cache_[h % cache_.size()];
  if (slot.used && slot.hash == h && slot.topic == topic) return slot.allow;
  const bool allow = decide(kAclPublish, topic);
  slot.used = true;
  slot.hash = h;
  slot.topic.assign(topic);  // reuses the slot's capacity
  slot.allow = allow;
  return allow;
}

bool ClientAcl::may_subscribe(const std::shared_ptr<const AccessControl>& current,
                              std::string_view filter) {
  if (current != source_) rebuild(current);
  return decide(kAclSubscribe, filter);
}

std::optional<bool> ClientAcl::http_decision(const std::shared_ptr<const AccessControl>& current,
                                             uint8_t action, std::string_view topic,
                                             int64_t now_ms) {
  if (current != source_) rebuild(current);
  const int64_t ttl = source_->settings().http_acl_ttl_ms;
  for (const auto& a : http_answers_) {
    if (a.action == action && a.topic == topic && now_ms - a.at_ms < ttl) return a.allow;
  }
  return std::nullopt;
}

void ClientAcl::remember_http(uint8_t action, std::string_view topic, bool allow, int64_t now_ms) {
  const int64_t ttl = source_->settings().http_acl_ttl_ms;
  if (ttl <= 0) return;
  std::erase_if(http_answers_, [&](const HttpAnswer& a) {
    return (a.action == action && a.topic == topic) || now_ms - a.at_ms >= ttl;
  });
  const size_t most = std::max<size_t>(1, source_->settings().cache_size);
  if (http_answers_.size() >= most)
    http_answers_.erase(
        http_answers_.begin(),
        http_answers_.begin() + static_cast<ptrdiff_t>(http_answers_.size() - most + 1));
  http_answers_.push_back(HttpAnswer{action, allow, now_ms, std::string(topic)});
}

}  // namespace harbor::broker
