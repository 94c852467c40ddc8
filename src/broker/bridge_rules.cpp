#include "broker/bridge_rules.hpp"

#include "mqtt/topic.hpp"

namespace harbor::broker {

const BridgeForwardRule* BridgeRules::rule_for(std::string_view topic) const {
  for (const auto& r : forwards)
    if (mqtt::topic_matches(r.filter, topic)) return &r;
  return nullptr;
}

void BridgeRules::remote_topic(const BridgeForwardRule& rule, std::string_view topic,
                               std::string& out) {
  out.clear();
  out.append(rule.prefix);
  out.append(rule.remote_topic.empty() ? topic : std::string_view(rule.remote_topic));
  out.append(rule.suffix);
}

SubscriptionOptions BridgeRules::options(const BridgeForwardRule& rule) {
  SubscriptionOptions o;
  o.qos = rule.qos;
  o.no_local = true;
  o.retain_as_published = true;
  o.retain_handling = 2;
  return o;
}

}  // namespace harbor::broker
