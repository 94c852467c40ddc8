// The -D table: every property a tool can send, on the packets the spec allows, with
// mosquitto_pub/sub 2.0.11's messages for the rest.
#include <gtest/gtest.h>

#include "tools/property_options.hpp"

using namespace harbor::tools;
using harbor::mqtt::Properties;

namespace {
tl::expected<PacketProperties, std::string> parse(std::vector<std::vector<std::string>> all) {
  PacketProperties p;
  for (const auto& words : all) {
    if (auto r = add_property_argument(words, p); !r) return tl::unexpected(r.error());
  }
  return p;
}
}  // namespace

TEST(PropertyOptions, EveryPropertyTheToolsSend) {
  auto p = parse({
      {"connect", "session-expiry-interval", "60"},
      {"connect", "receive-maximum", "10"},
      {"connect", "maximum-packet-size", "4096"},
      {"connect", "topic-alias-maximum", "5"},
      {"connect", "request-problem-information", "0"},
      {"connect", "request-response-information", "1"},
      {"connect", "authentication-method", "m"},
      {"connect", "authentication-data", "d"},
      {"connect", "user-property", "ck", "cv"},
      {"publish", "message-expiry-interval", "10"},
      {"publish", "content-type", "text/plain"},
      {"publish", "response-topic", "r/t"},
      {"publish", "correlation-data", "x"},
      {"publish", "payload-format-indicator", "1"},
      {"publish", "topic-alias", "1"},
      {"publish", "user-property", "a", "b"},
      {"subscribe", "subscription-identifier", "5"},
      {"subscribe", "user-property", "sa", "sb"},
      {"unsubscribe", "user-property", "ua", "ub"},
      {"disconnect", "session-expiry-interval", "0"},
      {"disconnect", "reason-string", "bye"},
      {"disconnect", "user-property", "da", "db"},
      {"will", "will-delay-interval", "3"},
      {"will", "content-type", "w"},
  });
  ASSERT_TRUE(p) << p.error();
  EXPECT_TRUE(p->any);
  EXPECT_EQ(p->connect.session_expiry_interval, 60u);
  EXPECT_EQ(p->connect.receive_maximum, 10);
  EXPECT_EQ(p->connect.maximum_packet_size, 4096u);
  EXPECT_EQ(p->connect.topic_alias_maximum, 5);
  EXPECT_EQ(p->connect.request_problem_information, 0);
  EXPECT_EQ(p->connect.request_response_information, 1);
  EXPECT_EQ(p->connect.authentication_method, "m");
  EXPECT_EQ(p->connect.authentication_data, "d");
  EXPECT_EQ(p->connect.user_properties, (harbor::mqtt::UserProperties{{"ck", "cv"}}));
  EXPECT_EQ(p->publish.message_expiry_interval, 10u);
  EXPECT_EQ(p->publish.content_type, "text/plain");
  EXPECT_EQ(p->publish.response_topic, "r/t");
  EXPECT_EQ(p->publish.correlation_data, "x");
  EXPECT_EQ(p->publish.payload_format_indicator, 1);
  EXPECT_EQ(p->publish.topic_alias, 1);
  EXPECT_EQ(p->publish.user_properties, (harbor::mqtt::UserProperties{{"a", "b"}}));
  EXPECT_EQ(p->subscribe.subscription_identifiers, std::vector<uint32_t>{5});
  EXPECT_EQ(p->subscribe.user_properties, (harbor::mqtt::UserProperties{{"sa", "sb"}}));
  EXPECT_EQ(p->unsubscribe.user_properties, (harbor::mqtt::UserProperties{{"ua", "ub"}}));
  EXPECT_EQ(p->disconnect.session_expiry_interval, 0u);
  EXPECT_EQ(p->disconnect.reason_string, "bye");
  EXPECT_EQ(p->will.will_delay_interval, 3u);
  EXPECT_EQ(p->will.content_type, "w");
}

TEST(PropertyOptions, NamesAreCaseInsensitiveAndUserPropertiesRepeat) {
  auto p = parse({{"PUBLISH", "User-Property", "k", "1"}, {"Publish", "user-property", "k", "2"}});
  ASSERT_TRUE(p) << p.error();
  EXPECT_EQ(p->publish.user_properties, (harbor::mqtt::UserProperties{{"k", "1"}, {"k", "2"}}));
}

// The messages are mosquitto_sub 2.0.11's (checked against the binary), so habits and
// scripts that grep for them carry over.
TEST(PropertyOptions, UsageErrors) {
  struct Case {
    std::vector<std::vector<std::string>> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{{"connect"}}, "--property argument given but not enough arguments specified."},
      {{{"connect", "receive-maximum"}}, "--property argument given but not enough arguments specified."},
      {{{"connect", "user-property", "k"}}, "--property argument given but not enough arguments specified."},
      {{{"connect", "receive-maximum", "1", "2"}}, "--property argument given with too many arguments: '2'."},
      {{{"suback", "user-property", "a", "b"}}, "Invalid command given in --property argument."},
      {{{"connect", "colour", "red"}}, "Invalid property name given in --property argument."},
      {{{"connect", "content-type", "x"}}, "content-type property not allowed for connect in --property argument."},
      {{{"subscribe", "content-type", "3"}}, "content-type property not allowed for subscribe in --property argument."},
      {{{"unsubscribe", "reason-string", "3"}},
       "reason-string property not allowed for unsubscribe in --property argument."},
      {{{"publish", "subscription-identifier", "3"}},
       "subscription-identifier property not supported for publish in --property argument."},
      {{{"auth", "user-property", "a", "b"}}, "user-property property not supported for auth in --property argument."},
      {{{"puback", "reason-string", "x"}}, "reason-string property not supported for puback in --property argument."},
      {{{"connack", "receive-maximum", "5"}}, "receive-maximum property not supported for connack in --property argument."},
      {{{"connect", "receive-maximum", "70000"}}, "Property value (70000) out of range for property receive-maximum."},
      {{{"connect", "request-problem-information", "300"}},
       "Property value (300) out of range for property request-problem-information."},
      {{{"connect", "session-expiry-interval", "-1"}},
       "Property value (-1) out of range for property session-expiry-interval."},
      {{{"connect", "session-expiry-interval", "4294967296"}},
       "Property value (4294967296) out of range for property session-expiry-interval."},
      {{{"connect", "receive-maximum", "abc"}}, "Property value (abc) is not a number for property receive-maximum."},
      {{{"connect", "receive-maximum", "0"}}, "Error in CONNECT properties: receive-maximum must not be 0."},
      {{{"connect", "maximum-packet-size", "0"}}, "Error in CONNECT properties: maximum-packet-size must not be 0."},
      {{{"publish", "topic-alias", "0"}}, "Error in PUBLISH properties: topic-alias must not be 0."},
      {{{"publish", "payload-format-indicator", "2"}},
       "Error in PUBLISH properties: payload-format-indicator must be 0 or 1."},
      {{{"subscribe", "subscription-identifier", "268435456"}},
       "Property value (268435456) out of range for property subscription-identifier."},
      {{{"subscribe", "subscription-identifier", "0"}},
       "Error in SUBSCRIBE properties: subscription-identifier must not be 0."},
      {{{"connect", "receive-maximum", "5"}, {"connect", "receive-maximum", "6"}},
       "Error in CONNECT properties: receive-maximum given more than once."},
      {{{"subscribe", "subscription-identifier", "1"}, {"subscribe", "subscription-identifier", "2"}},
       "Error in SUBSCRIBE properties: subscription-identifier given more than once."},
      {{{"publish", "response-topic", "a/#"}},
       "Property value for response-topic must be a topic name without wildcards."},
      {{{"publish", "content-type", "\xff"}}, "Property value for content-type is not valid UTF-8."},
  };
  for (const auto& c : cases) {
    auto p = parse(c.args);
    ASSERT_FALSE(p) << c.error;
    EXPECT_EQ(p.error(), c.error);
  }
}

TEST(PropertyOptions, MergeKeepsOwnOptionsAndRefusesClashes) {
  Properties from;
  from.content_type = "a";
  from.user_properties = {{"own", "1"}};
  Properties into;
  into.user_properties = {{"d", "2"}};
  into.message_expiry_interval = 5;
  ASSERT_TRUE(merge_properties(from, into, "PUBLISH"));
  EXPECT_EQ(into.content_type, "a");
  EXPECT_EQ(into.message_expiry_interval, 5u);
  EXPECT_EQ(into.user_properties, (harbor::mqtt::UserProperties{{"own", "1"}, {"d", "2"}}));

  Properties again;
  again.content_type = "b";
  auto r = merge_properties(again, into, "PUBLISH");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), "Error in PUBLISH properties: content-type given both by -D and by its own option.");
}
