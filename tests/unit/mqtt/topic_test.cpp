// Topic names, filters, shared filters and matching (section 4.7, 4.8) as tables.
#include "mqtt/topic.hpp"

#include <gtest/gtest.h>

#include <string>

namespace harbor::mqtt {
namespace {

TEST(Utf8, WellFormedAndIllFormed) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xC2\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"));
  EXPECT_TRUE(valid_utf8("\xEF\xBF\xBF"));  // U+FFFF: a non-character, allowed [MQTT-1.5.4-3]
  EXPECT_FALSE(valid_utf8(std::string_view("\0", 1)));  // [MQTT-1.5.4-2]
  EXPECT_FALSE(valid_utf8("\xC0\x80"));                 // overlong U+0000
  EXPECT_FALSE(valid_utf8("\xE0\x80\xAF"));             // overlong '/'
  EXPECT_FALSE(valid_utf8("\xED\xA0\x80"));             // U+D800 [MQTT-1.5.4-1]
  EXPECT_FALSE(valid_utf8("\xED\xBF\xBF"));             // U+DFFF
  EXPECT_FALSE(valid_utf8("\xF4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\x80"));                     // lone continuation
  EXPECT_FALSE(valid_utf8("\xC3"));                     // truncated
  EXPECT_FALSE(valid_utf8("\xE2\x82"));
  EXPECT_FALSE(valid_utf8("\xC3\x28"));  // bad continuation
  EXPECT_FALSE(valid_utf8("\xFE"));
}

struct NameCase {
  const char* topic;
  bool valid;
};

TEST(TopicName, Table) {
  const NameCase cases[] = {
      {"a", true},           {"a/b/c", true}, {"/", true},    {"/a", true},
      {"a/", true},          {"a//b", true},  {" ", true},    {"$SYS/x", true},
      {"caf\xC3\xA9", true}, {"", false},  // [MQTT-4.7.3-1]
      {"a/+", false},                      // [MQTT-3.3.2-2]
      {"#", false},          {"a/#", false},  {"a+b", false}, {"\xC0\x80", false},
  };
  for (const auto& c : cases) EXPECT_EQ(valid_topic_name(c.topic), c.valid) << c.topic;
}

TEST(TopicFilter, Table) {
  const NameCase cases[] = {
      {"a", true},
      {"#", true},
      {"+", true},
      {"a/#", true},
      {"a/+/c", true},
      {"+/+", true},
      {"/+", true},
      {"+/", true},
      {"sport/tennis/player1/#", true},
      {"$SYS/#", true},
      {"a//b", true},
      {"", false},       // [MQTT-4.7.3-1]
      {"a/#/b", false},  // [MQTT-4.7.1-2] '#' last
      {"a#", false},     // [MQTT-4.7.1-2] '#' whole level
      {"#/", false},
      {"a+", false},  // [MQTT-4.7.1-3] '+' whole level
      {"+a/b", false},
      {"a/b+/c", false},
      {"++", false},
      {"\xED\xA0\x80", false},
      // Shared subscriptions [MQTT-4.8.2-1] [MQTT-4.8.2-2].
      {"$share/g/a/b", true},
      {"$share/g/#", true},
      {"$share/g/+/x", true},
      {"$share/g/", false},  // empty filter
      {"$share/g", false},   // no filter at all
      {"$share//a", false},  // empty share name
      {"$share/g+/a", false},
      {"$share/g#/a", false},
      {"$share/g/a#", false},
      {"$shared/g/a", true},  // not the $share prefix: a plain filter
  };
  for (const auto& c : cases) EXPECT_EQ(valid_topic_filter(c.topic), c.valid) << c.topic;
}

TEST(SharedFilter, Parse) {
  auto s = parse_shared_filter("$share/group/a/b/#");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->group, "group");
  EXPECT_EQ(s->filter, "a/b/#");
  EXPECT_FALSE(parse_shared_filter("a/b"));
  EXPECT_FALSE(parse_shared_filter("$SYS/x"));
  auto partial = parse_shared_filter("$share/g");
  ASSERT_TRUE(partial);
  EXPECT_EQ(partial->group, "g");
  EXPECT_EQ(partial->filter, "");
}

struct MatchCase {
  const char* filter;
  const char* topic;
  bool match;
};

// Examples of sections 4.7.1.2, 4.7.1.3 and 4.7.2.
TEST(TopicMatches, Table) {
  const MatchCase cases[] = {
      {"sport/tennis/player1/#", "sport/tennis/player1", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
      {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
      {"sport/#", "sport", true},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"sport/tennis/+", "sport/tennis/player1", true},
      {"sport/tennis/+", "sport/tennis/player1/ranking", false},
      {"sport/+", "sport", false},
      {"sport/+", "sport/", true},
      {"+/+", "/finance", true},
      {"/+", "/finance", true},
      {"+", "/finance", false},
      {"+/tennis/#", "sport/tennis/x", true},
      {"a/b", "a/b", true},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"a//b", "a//b", true},
      {"a/+/b", "a//b", true},
      // [MQTT-4.7.2-1] '$' topics are not matched by a leading wildcard.
      {"#", "$SYS/uptime", false},
      {"+/monitor/Clients", "$SYS/monitor/Clients", false},
      {"$SYS/#", "$SYS/monitor/Clients", true},
      {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
      {"a/#", "a/$x", true},
  };
  for (const auto& c : cases)
    EXPECT_EQ(topic_matches(c.filter, c.topic), c.match) << c.filter << " vs " << c.topic;
}

// mqtt.max_topic_levels: levels are the count of '/' plus one; empty levels count.
TEST(TopicLevels, CountsSlashesPlusOne) {
  EXPECT_FALSE(exceeds_topic_levels("", 1));  // one (empty) level
  EXPECT_FALSE(exceeds_topic_levels("a", 1));
  EXPECT_TRUE(exceeds_topic_levels("/", 1));  // "/" is two empty levels
  EXPECT_FALSE(exceeds_topic_levels("/", 2));
  EXPECT_TRUE(exceeds_topic_levels("a//", 2));  // three levels, two of them empty
  EXPECT_FALSE(exceeds_topic_levels("a//", 3));
  EXPECT_TRUE(exceeds_topic_levels("///", 3));
  EXPECT_FALSE(exceeds_topic_levels("///", 4));
  EXPECT_TRUE(exceeds_topic_levels("a", 0));  // every topic has at least one level
  EXPECT_TRUE(exceeds_topic_levels("", 0));
  // Wildcards and shared prefixes are plain levels to the count.
  EXPECT_FALSE(exceeds_topic_levels("a/+/#", 3));
  EXPECT_TRUE(exceeds_topic_levels("a/+/#", 2));
  EXPECT_TRUE(exceeds_topic_levels("$share/g/a", 2));
  EXPECT_FALSE(exceeds_topic_levels("$share/g/a", 3));
}

std::string levels_topic(size_t levels, std::string_view level) {
  std::string t;
  for (size_t i = 0; i < levels; ++i) {
    if (i) t += '/';
    t += level;
  }
  return t;
}

TEST(TopicLevels, ExactlyNIsAllowedNPlusOneIsNot) {
  for (uint32_t n : {1u, 2u, 127u, 128u, 129u, 1000u, 65535u}) {
    for (std::string_view level : {"", "x", "level"}) {
      EXPECT_FALSE(exceeds_topic_levels(levels_topic(n, level), n)) << n << " " << level;
      EXPECT_TRUE(exceeds_topic_levels(levels_topic(n + 1, level), n)) << n << " " << level;
      EXPECT_FALSE(exceeds_topic_levels(levels_topic(n + 1, level), n + 1));
    }
  }
}

TEST(TopicLevels, LargestTopicAgainstLargestLimit) {
  // 65,535 bytes of '/' is 65,536 empty levels: one more than the largest limit.
  std::string slashes(65535, '/');
  EXPECT_TRUE(exceeds_topic_levels(slashes, 65535));
  EXPECT_FALSE(exceeds_topic_levels(slashes, 65536));
  EXPECT_FALSE(exceeds_topic_levels(slashes, UINT32_MAX));
  EXPECT_FALSE(exceeds_topic_levels(std::string_view(slashes).substr(1), 65535));
}

TEST(FilterRelations, CoversIsSubsetOfMatchedTopics) {
  struct Case {
    const char* outer;
    const char* inner;
    bool covers;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"#", "a/b", true},
           {"a/#", "a", true},
           {"a/#", "a/+/c", true},
           {"a/#", "a/#", true},
           {"a/+", "a/b", true},
           {"a/+", "a/+", true},
           {"a/+", "a/#", false},
           {"a/+", "a", false},
           {"a/b", "a/+", false},
           {"a/b", "a/b", true},
           {"a/b", "a/b/c", false},
           {"+/+", "a/b", true},
           {"#", "$SYS/x", false},
           {"+/x", "$SYS/x", false},
           {"$SYS/#", "$SYS/x", true},
           {"#", "+/x", true},
           {"a/b/#", "a/#", false},
           {"+", "", true},
       }) {
    EXPECT_EQ(filter_covers(c.outer, c.inner), c.covers) << c.outer << " covers " << c.inner;
  }
}

TEST(FilterRelations, OverlapMeansACommonTopic) {
  struct Case {
    const char* a;
    const char* b;
    bool overlap;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"a/+", "+/b", true},
           {"a/b", "a/c", false},
           {"a/#", "a", true},
           {"a", "a/#", true},
           {"a/b", "a/b/c", false},
           {"#", "$SYS/x", false},
           {"$SYS/#", "#", false},
           {"+", "$SYS", false},
           {"$SYS/+", "$SYS/x", true},
           {"#", "+", true},
           {"a/+/c", "a/b/+", true},
           {"a/+", "a/b/c", false},
       }) {
    EXPECT_EQ(filters_overlap(c.a, c.b), c.overlap) << c.a << " ~ " << c.b;
    EXPECT_EQ(filters_overlap(c.b, c.a), c.overlap) << c.b << " ~ " << c.a;
  }
}

}  // namespace
}  // namespace harbor::mqtt
