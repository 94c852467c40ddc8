// SubscriptionTree: wildcard rules of section 4.7, shared subscriptions of section 4.8.2,
// replace/unsubscribe/takeover bookkeeping, a randomized comparison with a brute-force
// matcher and a concurrent readers-vs-writer test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "broker/subscription_tree.hpp"

namespace harbor::broker {
namespace {

std::vector<SubscriptionMatch> match_all(const SubscriptionTree& tree, std::string_view topic,
                                         unsigned slot = 0) {
  std::vector<SubscriptionMatch> out;
  tree.match(topic, slot, out);
  return out;
}

bool matches_one(std::string_view filter, std::string_view topic) {
  SubscriptionTree tree(1);
  tree.subscribe(filter, SubscriberRef{1, 0}, SubscriptionOptions{});
  const auto out = match_all(tree, topic);
  EXPECT_LE(out.size(), 1u);
  return out.size() == 1;
}

struct WildcardCase {
  const char* filter;
  const char* topic;
  bool matches;
  const char* clause;
};

// Section 4.7.1 examples and the normative statements they illustrate.
const WildcardCase kWildcardCases[] = {
    // Exact levels; topics are case sensitive (§4.7.3).
    {"a/b", "a/b", true, "4.7"},
    {"a/b", "a/c", false, "4.7"},
    {"a/b", "a", false, "4.7"},
    {"a", "a/b", false, "4.7"},
    {"ACCOUNTS", "Accounts", false, "4.7.3"},
    // '#': any number of levels, including the parent [MQTT-4.7.1-2].
    {"sport/tennis/player1/#", "sport/tennis/player1", true, "MQTT-4.7.1-2"},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true, "MQTT-4.7.1-2"},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true, "MQTT-4.7.1-2"},
    {"sport/tennis/player1/#", "sport/tennis/player2", false, "MQTT-4.7.1-2"},
    {"sport/#", "sport", true, "MQTT-4.7.1-2"},
    {"sport/#", "sports", false, "MQTT-4.7.1-2"},
    {"#", "a", true, "MQTT-4.7.1-2"},
    {"#", "a/b/c", true, "MQTT-4.7.1-2"},
    {"#", "/", true, "MQTT-4.7.1-2"},
    {"#", "/a", true, "MQTT-4.7.1-2"},
    {"a/b/#", "a", false, "MQTT-4.7.1-2"},
    // '+': exactly one level, which may be empty [MQTT-4.7.1-3].
    {"sport/tennis/+", "sport/tennis/player1", true, "MQTT-4.7.1-3"},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false, "MQTT-4.7.1-3"},
    {"sport/tennis/+", "sport/tennis", false, "MQTT-4.7.1-3"},
    {"sport/+", "sport", false, "MQTT-4.7.1-3"},
    {"sport/+", "sport/", true, "MQTT-4.7.1-3"},
    {"+", "a", true, "MQTT-4.7.1-3"},
    {"+", "a/b", false, "MQTT-4.7.1-3"},
    {"+", "/a", false, "MQTT-4.7.1-3"},
    {"+/+", "/a", true, "MQTT-4.7.1-3"},
    {"/+", "/a", true, "MQTT-4.7.1-3"},
    {"+/tennis/#", "sport/tennis/player1/ranking", true, "MQTT-4.7.1-3"},
    {"+/+/+", "a/b", false, "MQTT-4.7.1-3"},
    {"+/#", "a", true, "MQTT-4.7.1-2"},
    // Empty levels are levels (§4.7.1.1 note on "/finance").
    {"a//b", "a//b", true, "4.7.1"},
    {"a/+/b", "a//b", true, "4.7.1"},
    {"a/b", "a//b", false, "4.7.1"},
    {"/a", "/a", true, "4.7.1"},
    {"/a", "a", false, "4.7.1"},
    {"a", "/a", false, "4.7.1"},
    {"a/", "a/", true, "4.7.1"},
    {"a", "a/", false, "4.7.1"},
    {"a/#", "a/", true, "MQTT-4.7.1-2"},
    {"a/+", "a/", true, "MQTT-4.7.1-3"},
    // '$' topics and first-level wildcards [MQTT-4.7.2-1].
    {"#", "$SYS/broker/uptime", false, "MQTT-4.7.2-1"},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false, "MQTT-4.7.2-1"},
    {"+", "$SYS", false, "MQTT-4.7.2-1"},
    {"$SYS/#", "$SYS/broker/uptime", true, "MQTT-4.7.2-1"},
    {"$SYS/#", "$SYS", true, "MQTT-4.7.2-1"},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1"},
    {"$SYS/+/Clients", "$SYS/monitor/Clients", true, "MQTT-4.7.2-1"},
    {"a/#", "a/$b", true, "MQTT-4.7.2-1"},
    {"a/+", "a/$b", true, "MQTT-4.7.2-1"},
};

TEST(SubscriptionTreeWildcards, SpecTable) {
  for (const WildcardCase& c : kWildcardCases) {
    SCOPED_TRACE(std::string("[") + c.clause + "] filter '" + c.filter + "' topic '" + c.topic +
                 "'");
    EXPECT_EQ(matches_one(c.filter, c.topic), c.matches);
  }
}

TEST(SubscriptionTreeWildcards, SharedFiltersFollowTheSameRules) {
  for (const WildcardCase& c : kWildcardCases) {
    SCOPED_TRACE(std::string("[") + c.clause + "] filter '$share/g/" + c.filter + "' topic '" +
                 c.topic + "'");
    SubscriptionTree tree(1);
    tree.subscribe(std::string("$share/g/") + c.filter, SubscriberRef{1, 0}, {});
    const auto out = match_all(tree, c.topic);
    ASSERT_LE(out.size(), 1u);
    EXPECT_EQ(out.size() == 1, c.matches);
    if (!out.empty()) {
      EXPECT_TRUE(out[0].shared);
    }
  }
}

TEST(SubscriptionTree, OneEntryPerMatchingFilterOfASession) {
  // Overlapping subscriptions are all reported; the broker merges them [MQTT-3.3.4-2].
  SubscriptionTree tree(2);
  EXPECT_TRUE(tree.subscribe("a/+", {7, 1}, {.qos = 1, .subscription_id = 11}));
  EXPECT_TRUE(tree.subscribe("a/#", {7, 1}, {.qos = 2, .subscription_id = 12}));
  EXPECT_TRUE(tree.subscribe("a/b", {8, 0}, {.qos = 0}));
  auto out = match_all(tree, "a/b", 1);
  ASSERT_EQ(out.size(), 3u);
  std::multiset<std::pair<SessionId, uint32_t>> got;
  for (const auto& m : out) {
    EXPECT_FALSE(m.shared);
    got.emplace(m.who.session, m.options.subscription_id);
  }
  EXPECT_EQ(got, (std::multiset<std::pair<SessionId, uint32_t>>{{7, 11}, {7, 12}, {8, 0}}));
  EXPECT_EQ(tree.size(), 3u);
}

TEST(SubscriptionTree, MatchAppendsWithoutClearing) {
  SubscriptionTree tree(1);
  tree.subscribe("x", {1, 0}, {});
  std::vector<SubscriptionMatch> out(2);
  tree.match("x", 0, out);
  EXPECT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].who.session, 1u);
}

TEST(SubscriptionTree, ResubscribeReplacesOptions) {
  // [MQTT-3.8.4-3]: a SUBSCRIBE for an existing (session, filter) replaces the subscription.
  SubscriptionTree tree(1);
  EXPECT_TRUE(tree.subscribe("a/b", {1, 0}, {.qos = 0, .subscription_id = 1}));
  EXPECT_FALSE(tree.subscribe("a/b", {1, 0},
                              {.qos = 2,
                               .no_local = true,
                               .retain_as_published = true,
                               .retain_handling = 2,
                               .subscription_id = 9}));
  EXPECT_EQ(tree.size(), 1u);
  const auto out = match_all(tree, "a/b");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].options.qos, 2);
  EXPECT_TRUE(out[0].options.no_local);
  EXPECT_TRUE(out[0].options.retain_as_published);
  EXPECT_EQ(out[0].options.retain_handling, 2);
  EXPECT_EQ(out[0].options.subscription_id, 9u);

  // Same for a shared subscription: same session, group and filter.
  EXPECT_TRUE(tree.subscribe("$share/g/a/b", {1, 0}, {.qos = 0}));
  EXPECT_FALSE(tree.subscribe("$share/g/a/b", {1, 0}, {.qos = 1}));
  // A different group with the same filter is a different subscription.
  EXPECT_TRUE(tree.subscribe("$share/h/a/b", {1, 0}, {.qos = 1}));
  EXPECT_EQ(tree.size(), 3u);
}

TEST(SubscriptionTree, ResubscribeManySessionsOnOneFilter) {
  // Exercises the session index of large subscriber sets.
  SubscriptionTree tree(1);
  for (SessionId s = 1; s <= 200; ++s) EXPECT_TRUE(tree.subscribe("big", {s, 0}, {.qos = 0}));
  for (SessionId s = 1; s <= 200; s += 2) EXPECT_FALSE(tree.subscribe("big", {s, 0}, {.qos = 1}));
  for (SessionId s = 2; s <= 200; s += 4) EXPECT_TRUE(tree.unsubscribe("big", s));
  EXPECT_EQ(tree.size(), 150u);
  std::map<SessionId, int> qos;
  for (const auto& m : match_all(tree, "big")) qos[m.who.session] = m.options.qos;
  ASSERT_EQ(qos.size(), 150u);
  for (SessionId s = 1; s <= 200; ++s) {
    if (s % 4 == 2) {
      EXPECT_EQ(qos.count(s), 0u) << s;
    } else {
      EXPECT_EQ(qos.at(s), s % 2 == 1 ? 1 : 0) << s;
    }
  }
  for (SessionId s = 1; s <= 200; ++s) tree.unsubscribe("big", s);
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(SubscriptionTree, UnsubscribeReportsExistenceAndPrunes) {
  SubscriptionTree tree(1);
  EXPECT_EQ(tree.node_count(), 1u);  // the root
  tree.subscribe("a/b/c", {1, 0}, {});
  tree.subscribe("a/+/#", {1, 0}, {});
  tree.subscribe("a/b", {2, 0}, {});
  tree.subscribe("$share/g/a/b/c", {3, 0}, {});
  EXPECT_EQ(tree.node_count(), 6u);                     // root, a, b, c, +, #
  EXPECT_FALSE(tree.unsubscribe("a/b/c", 2));           // other session
  EXPECT_FALSE(tree.unsubscribe("a/b/c/d", 1));         // no such filter
  EXPECT_FALSE(tree.unsubscribe("$share/h/a/b/c", 3));  // other group
  EXPECT_TRUE(tree.unsubscribe("a/b/c", 1));
  EXPECT_FALSE(tree.unsubscribe("a/b/c", 1));
  EXPECT_EQ(tree.node_count(), 6u);  // c still holds the shared group
  EXPECT_TRUE(tree.unsubscribe("$share/g/a/b/c", 3));
  EXPECT_EQ(tree.node_count(), 5u);  // c pruned, b kept (session 2)
  EXPECT_TRUE(tree.unsubscribe("a/+/#", 1));
  EXPECT_EQ(tree.node_count(), 3u);  // root, a, b
  EXPECT_TRUE(tree.unsubscribe("a/b", 2));
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_EQ(tree.size(), 0u);
  EXPECT_TRUE(match_all(tree, "a/b/c").empty());
}

TEST(SubscriptionTreeShared, RoundRobinAcrossMembers) {
  SubscriptionTree tree(1);
  for (SessionId s = 1; s <= 3; ++s) {
    EXPECT_TRUE(tree.subscribe("$share/workers/jobs/+", {s, static_cast<uint16_t>(s)}, {}));
  }
  std::map<SessionId, int> hits;
  for (int i = 0; i < 30; ++i) {
    const auto out = match_all(tree, "jobs/1");
    ASSERT_EQ(out.size(), 1u);  // exactly one member of the group per message
    EXPECT_TRUE(out[0].shared);
    EXPECT_EQ(out[0].who.shard, out[0].who.session);
    ++hits[out[0].who.session];
  }
  EXPECT_EQ(hits, (std::map<SessionId, int>{{1, 10}, {2, 10}, {3, 10}}));
}

// group_of: the filter text names the group match() picks from while it has members; a
// group that empties and is formed again gets a new id.
TEST(SubscriptionTreeShared, GroupOfNamesTheGroupOfAFilter) {
  SubscriptionTree tree(1);
  EXPECT_EQ(tree.group_of("$share/g/a/+", 0), 0u);  // no such group yet
  tree.subscribe("$share/g/a/+", {1, 0}, {});
  tree.subscribe("$share/h/a/+", {2, 0}, {});
  tree.subscribe("$queue/a/+", {3, 0}, {});
  tree.subscribe("a/+", {4, 0}, {});
  const SharedGroupId g = tree.group_of("$share/g/a/+", 0);
  const SharedGroupId h = tree.group_of("$share/h/a/+", 0);
  const SharedGroupId q = tree.group_of("$queue/a/+", 0);
  EXPECT_NE(g, 0u);
  EXPECT_NE(h, 0u);
  EXPECT_NE(q, 0u);
  EXPECT_NE(g, h);
  EXPECT_NE(g, q);
  EXPECT_EQ(tree.group_of("a/+", 0), 0u);            // plain
  EXPECT_EQ(tree.group_of("$share/g/a/b", 0), 0u);   // another filter of the same name
  EXPECT_EQ(tree.group_of("$share/x/a/+", 0), 0u);   // another name on the same filter
  std::map<SessionId, SharedGroupId> picked;
  for (const auto& m : match_all(tree, "a/1"))
    if (m.shared) picked[m.who.session] = m.group;
  EXPECT_EQ(picked, (std::map<SessionId, SharedGroupId>{{1, g}, {2, h}, {3, q}}));
  tree.unsubscribe("$share/g/a/+", 1);
  EXPECT_EQ(tree.group_of("$share/g/a/+", 0), 0u);  // gone with its last member
  tree.subscribe("$share/g/a/+", {5, 0}, {});
  const SharedGroupId again = tree.group_of("$share/g/a/+", 0);
  EXPECT_NE(again, 0u);
  EXPECT_NE(again, g);  // ids are not reused
}

TEST(SubscriptionTreeShared, OneEntryPerGroupAndFilter) {
  SubscriptionTree tree(1);
  tree.subscribe("$share/g1/s/+", {1, 0}, {});
  tree.subscribe("$share/g1/s/+", {2, 0}, {});
  tree.subscribe("$share/g2/s/+", {3, 0}, {});
  tree.subscribe("$share/g2/s/+", {4, 0}, {});
  tree.subscribe("$share/g2/s/+", {5, 0}, {});
  tree.subscribe("$share/g1/s/#", {6, 0}, {});  // same group name, other filter: other group
  tree.subscribe("s/x", {7, 0}, {});            // plain subscriber
  std::map<SessionId, int> hits;
  for (int i = 0; i < 6; ++i) {
    const auto out = match_all(tree, "s/x");
    ASSERT_EQ(out.size(), 4u);
    int from_g1 = 0, from_g2 = 0, from_g1_hash = 0, plain = 0;
    for (const auto& m : out) {
      ++hits[m.who.session];
      if (!m.shared) {
        EXPECT_EQ(m.who.session, 7u);
        ++plain;
      } else if (m.who.session <= 2) {
        ++from_g1;
      } else if (m.who.session <= 5) {
        ++from_g2;
      } else {
        ++from_g1_hash;
      }
    }
    EXPECT_EQ(from_g1, 1);
    EXPECT_EQ(from_g2, 1);
    EXPECT_EQ(from_g1_hash, 1);
    EXPECT_EQ(plain, 1);
  }
  EXPECT_EQ(hits,
            (std::map<SessionId, int>{{1, 3}, {2, 3}, {3, 2}, {4, 2}, {5, 2}, {6, 6}, {7, 6}}));
}

TEST(SubscriptionTreeShared, MemberLeavingKeepsTheGroupServed) {
  SubscriptionTree tree(1);
  tree.subscribe("$share/g/t", {1, 0}, {});
  tree.subscribe("$share/g/t", {2, 0}, {});
  EXPECT_TRUE(tree.unsubscribe("$share/g/t", 1));
  for (int i = 0; i < 4; ++i) {
    const auto out = match_all(tree, "t");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].who.session, 2u);
  }
  EXPECT_TRUE(tree.unsubscribe("$share/g/t", 2));
  EXPECT_TRUE(match_all(tree, "t").empty());
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(SubscriptionTreeShared, MalformedShareIsAPlainFilter) {
  // "$share/g" has no filter part, so it is not a shared subscription (the codec rejects it
  // [MQTT-4.8.2-2]; the tree only must not misparse it).
  SubscriptionTree tree(1);
  tree.subscribe("$share/g", {1, 0}, {});
  const auto out = match_all(tree, "$share/g");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].shared);
}

TEST(SubscriptionTree, MoveSessionUpdatesEveryListedEntry) {
  SubscriptionTree tree(4);
  tree.subscribe("a/b", {5, 1}, {.qos = 1});
  tree.subscribe("x/#", {5, 1}, {.qos = 2});
  tree.subscribe("$share/g/c", {5, 1}, {});
  tree.subscribe("kept", {5, 1}, {});
  tree.subscribe("a/b", {6, 1}, {});
  tree.move_session(5, 3, {"a/b", "x/#", "$share/g/c", "not/subscribed"});
  for (const char* topic : {"a/b", "x/y", "c"}) {
    for (const auto& m : match_all(tree, topic, 2)) {
      EXPECT_EQ(m.who.shard, m.who.session == 5 ? 3 : 1) << topic;
    }
  }
  const auto kept = match_all(tree, "kept");
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept[0].who.shard, 1);  // not listed: untouched
  const auto a = match_all(tree, "a/b");
  for (const auto& m : a) {
    if (m.who.session == 5) {
      EXPECT_EQ(m.options.qos, 1);  // options preserved
    }
  }
  EXPECT_EQ(tree.size(), 5u);
}

TEST(SubscriptionTree, ReaderSlotOutOfRangeStillWorks) {
  SubscriptionTree tree(2);
  tree.subscribe("t", {1, 0}, {});
  EXPECT_EQ(match_all(tree, "t", 7).size(), 1u);
  SubscriptionTree zero(0);
  zero.subscribe("t", {1, 0}, {});
  EXPECT_EQ(match_all(zero, "t", 3).size(), 1u);
}

// ---- Randomized comparison with a brute-force matcher --------------------------------

std::vector<std::string> split_levels(const std::string& s) {
  std::vector<std::string> levels;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    if (slash == std::string::npos) {
      levels.push_back(s.substr(start));
      return levels;
    }
    levels.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

// Straight from section 4.7, level by level.
bool reference_matches(const std::string& filter, const std::string& topic) {
  const auto f = split_levels(filter);
  const auto t = split_levels(topic);
  if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // covers the parent level too
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

TEST(SubscriptionTreeRandom, AgreesWithBruteForce) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> words = {"a", "b", "c", "", "$s"};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto random_topic = [&] {
    std::string t;
    const size_t depth = 1 + pick(4);
    for (size_t i = 0; i < depth; ++i) {
      if (i) t += '/';
      t += words[pick(words.size())];
    }
    return t;
  };
  auto random_filter = [&] {
    std::string f;
    const size_t depth = 1 + pick(4);
    for (size_t i = 0; i < depth; ++i) {
      if (i) f += '/';
      const size_t r = pick(10);
      if (r < 2) {
        f += '+';
      } else if (r == 2 && i + 1 == depth) {
        f += '#';
      } else {
        f += words[pick(words.size())];
      }
    }
    if (pick(5) == 0) f = std::string(pick(2) ? "$share/g1/" : "$share/g2/") + f;
    return f;
  };

  // Reference state: (session, full filter) -> subscription id. Ids are unique per key so
  // that every reported match names the subscription it came from.
  std::map<std::pair<SessionId, std::string>, uint32_t> subs;
  std::map<uint32_t, std::pair<SessionId, std::string>> by_id;
  uint32_t next_id = 1;
  SubscriptionTree tree(3);

  for (int round = 0; round < 2000; ++round) {
    const SessionId session = 1 + pick(12);
    const std::string filter = random_filter();
    const auto key = std::make_pair(session, filter);
    if (pick(3) != 0) {
      const uint32_t id = next_id++;
      const bool is_new = subs.count(key) == 0;
      if (!is_new) by_id.erase(subs[key]);
      subs[key] = id;
      by_id[id] = key;
      ASSERT_EQ(tree.subscribe(filter, {session, 0}, {.subscription_id = id}), is_new);
    } else {
      const bool existed = subs.count(key) != 0;
      if (existed) {
        by_id.erase(subs[key]);
        subs.erase(key);
      }
      ASSERT_EQ(tree.unsubscribe(filter, session), existed);
    }
    ASSERT_EQ(tree.size(), subs.size());

    const std::string topic = random_topic();
    SCOPED_TRACE("topic '" + topic + "' round " + std::to_string(round));
    // Expected: plain subscriptions by id; shared ones by (group, filter).
    std::multiset<uint32_t> want_plain;
    std::multiset<std::string> want_groups;
    for (const auto& [k, id] : subs) {
      const std::string& full = k.second;
      if (full.rfind("$share/", 0) == 0) {
        const size_t slash = full.find('/', 7);
        if (reference_matches(full.substr(slash + 1), topic)) want_groups.insert(full);
      } else if (reference_matches(full, topic)) {
        want_plain.insert(id);
      }
    }
    std::set<std::string> unique_groups(want_groups.begin(), want_groups.end());
    std::multiset<uint32_t> got_plain;
    std::multiset<std::string> got_groups;
    for (const auto& m : match_all(tree, topic, static_cast<unsigned>(round % 3))) {
      ASSERT_TRUE(by_id.count(m.options.subscription_id));
      const auto& [s, full] = by_id.at(m.options.subscription_id);
      ASSERT_EQ(s, m.who.session);
      if (m.shared) {
        got_groups.insert(full);
      } else {
        got_plain.insert(m.options.subscription_id);
      }
    }
    ASSERT_EQ(got_plain, want_plain);
    // One entry per (group, filter) that has a matching member.
    ASSERT_EQ(got_groups.size(), unique_groups.size());
    ASSERT_EQ(std::set<std::string>(got_groups.begin(), got_groups.end()), unique_groups);
  }
}

// ---- Concurrency ----------------------------------------------------------------------

TEST(SubscriptionTreeConcurrent, ReadersSeeStableSubscriptionsWhileWriterChurns) {
  constexpr unsigned kReaders = 3;
  SubscriptionTree tree(kReaders);
  tree.subscribe("s/#", {1, 0}, {.subscription_id = 1});
  tree.subscribe("$share/g/s/+/x", {2, 0}, {.subscription_id = 2});

  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::atomic<long> matches{0};
  std::vector<std::thread> readers;
  for (unsigned r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::vector<SubscriptionMatch> out;
      long local = 0;
      while (!done.load(std::memory_order_acquire) || local < 1000) {
        out.clear();
        tree.match("s/" + std::to_string(local % 7) + "/x", r, out);
        int stable = 0, shared = 0;
        for (const auto& m : out) {
          if (m.who.session == 1) ++stable;
          if (m.shared) ++shared;
        }
        if (stable != 1 || shared != 1) failures.fetch_add(1);
        ++local;
      }
      matches.fetch_add(local);
    });
  }
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      const SessionId s = 100 + static_cast<SessionId>(i % 17);
      const std::string f = "s/" + std::to_string(i % 7) + (i % 2 ? "/x" : "/#");
      tree.subscribe(f, {s, 1}, {});
      tree.subscribe("$share/g/s/+/x", {s, 1}, {});
      if (i % 3 == 0) tree.move_session(s, 2, {f});
      tree.unsubscribe(f, s);
      tree.unsubscribe("$share/g/s/+/x", s);
    }
    done.store(true, std::memory_order_release);
  });
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GE(matches.load(), 3000);
  EXPECT_EQ(tree.size(), 2u);
  EXPECT_EQ(tree.node_count(), 5u);  // root, s, # and s/+, s/+/x: the churn was pruned
}


// ---- shared selection strategies (mqtt.shared_subscription_strategy) and $queue ----

std::vector<SubscriptionMatch> match_with(const SubscriptionTree& tree, std::string_view topic,
                                          SharedStrategy strategy,
                                          std::string_view publisher = {}, unsigned slot = 0) {
  std::vector<SubscriptionMatch> out;
  tree.match(topic, slot, out, SharedSelection{strategy, publisher});
  return out;
}

// Which member of the one group matching `topic` got it; fails unless exactly one did.
SessionId picked(const SubscriptionTree& tree, std::string_view topic, SharedStrategy strategy,
                 std::string_view publisher = {}, unsigned slot = 0) {
  const auto out = match_with(tree, topic, strategy, publisher, slot);
  EXPECT_EQ(out.size(), 1u);
  if (out.size() != 1) return 0;
  EXPECT_TRUE(out[0].shared);
  EXPECT_NE(out[0].group, 0u);
  return out[0].who.session;
}

void add_three_workers(SubscriptionTree& tree) {
  for (SessionId s = 1; s <= 3; ++s) tree.subscribe("$share/w/jobs/#", {s, 0}, {});
}

TEST(SubscriptionTreeStrategy, RoundRobinAlternatesPerReaderSlot) {
  SubscriptionTree tree(2);
  for (SessionId s = 1; s <= 2; ++s) tree.subscribe("$share/w/jobs/#", {s, 0}, {});
  // Each slot (shard) takes the members in turn on its own cursor, starting elsewhere.
  std::vector<SessionId> slot0, slot1;
  for (int i = 0; i < 4; ++i) {
    slot0.push_back(picked(tree, "jobs/a", SharedStrategy::RoundRobin, {}, 0));
    slot1.push_back(picked(tree, "jobs/a", SharedStrategy::RoundRobin, {}, 1));
  }
  EXPECT_EQ(slot0, (std::vector<SessionId>{1, 2, 1, 2}));
  EXPECT_EQ(slot1, (std::vector<SessionId>{2, 1, 2, 1}));
}

TEST(SubscriptionTreeStrategy, RandomPicksOneMemberEachTimeAndUsesSeveral) {
  SubscriptionTree tree(1);
  add_three_workers(tree);
  std::map<SessionId, int> hits;
  for (int i = 0; i < 300; ++i) ++hits[picked(tree, "jobs/a", SharedStrategy::Random)];
  EXPECT_EQ(hits.size(), 3u);  // a member missed 300 times: (2/3)^300
  EXPECT_EQ(hits.count(0), 0u);
}

TEST(SubscriptionTreeStrategy, StickyStaysUntilTheMemberLeaves) {
  SubscriptionTree tree(2);
  for (SessionId s = 1; s <= 3; ++s) tree.subscribe("$share/w/jobs/#", {s, 0}, {});
  const SessionId first = picked(tree, "jobs/a", SharedStrategy::Sticky);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(picked(tree, "jobs/b", SharedStrategy::Sticky, {}, i % 2), first)
        << "every shard stays on the chosen member";
  }
  tree.subscribe("$share/w/jobs/#", {4, 0}, {});  // a new member does not take over
  EXPECT_EQ(picked(tree, "jobs/a", SharedStrategy::Sticky), first);
  EXPECT_TRUE(tree.unsubscribe("$share/w/jobs/#", first));
  const SessionId second = picked(tree, "jobs/a", SharedStrategy::Sticky);
  EXPECT_NE(second, first);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(picked(tree, "jobs/a", SharedStrategy::Sticky), second);
}

TEST(SubscriptionTreeStrategy, HashClientIdKeepsEachPublisherOnOneMember) {
  SubscriptionTree tree(1);
  add_three_workers(tree);
  std::set<SessionId> used;
  for (int p = 0; p < 20; ++p) {
    const std::string publisher = "publisher-" + std::to_string(p);
    const SessionId member = picked(tree, "jobs/a", SharedStrategy::HashClientId, publisher);
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(picked(tree, "jobs/" + std::to_string(i), SharedStrategy::HashClientId, publisher),
                member);
    }
    used.insert(member);
  }
  EXPECT_GT(used.size(), 1u) << "20 publishers spread over the members";
  // No publisher (a message the broker made): round robin.
  std::set<SessionId> anonymous;
  for (int i = 0; i < 3; ++i) anonymous.insert(picked(tree, "jobs/a", SharedStrategy::HashClientId));
  EXPECT_EQ(anonymous.size(), 3u);
}

TEST(SubscriptionTreeStrategy, HashTopicKeepsEachTopicOnOneMember) {
  SubscriptionTree tree(1);
  add_three_workers(tree);
  std::set<SessionId> used;
  for (int t = 0; t < 20; ++t) {
    const std::string topic = "jobs/" + std::to_string(t);
    const SessionId member = picked(tree, topic, SharedStrategy::HashTopic, "any");
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(picked(tree, topic, SharedStrategy::HashTopic, "p" + std::to_string(i)), member);
    }
    used.insert(member);
  }
  EXPECT_GT(used.size(), 1u) << "20 topics spread over the members";
}

TEST(SubscriptionTreeStrategy, QueueIsOneGroupSharedWithShareDollarQueue) {
  SubscriptionTree tree(1);
  EXPECT_TRUE(tree.subscribe("$queue/jobs/+", {1, 0}, {}));
  EXPECT_TRUE(tree.subscribe("$queue/jobs/+", {2, 0}, {}));
  EXPECT_TRUE(tree.subscribe("$share/$queue/jobs/+", {3, 0}, {}));  // the same group
  EXPECT_TRUE(tree.subscribe("$share/other/jobs/+", {4, 0}, {}));
  std::map<SessionId, int> hits;
  for (int i = 0; i < 9; ++i) {
    const auto out = match_all(tree, "jobs/x");
    ASSERT_EQ(out.size(), 2u);  // one of the $queue group, the other group's one member
    for (const auto& m : out) {
      EXPECT_TRUE(m.shared);
      ++hits[m.who.session];
    }
  }
  EXPECT_EQ(hits, (std::map<SessionId, int>{{1, 3}, {2, 3}, {3, 3}, {4, 9}}));
  EXPECT_TRUE(match_all(tree, "$queue/jobs/x").empty()) << "the prefix is not part of the topic";
  EXPECT_TRUE(tree.unsubscribe("$queue/jobs/+", 1));
  EXPECT_FALSE(tree.unsubscribe("$queue/jobs/+", 1));
  EXPECT_TRUE(tree.unsubscribe("$queue/jobs/+", 3));  // "$share/$queue/..." is the same group
  EXPECT_EQ(tree.size(), 2u);
}

TEST(SubscriptionTreeStrategy, PickOtherMemberForRedelivery) {
  SubscriptionTree tree(1);
  tree.subscribe("$share/w/jobs/#", {1, 0}, {.qos = 1});
  tree.subscribe("$share/w/jobs/#", {2, 3}, {.qos = 2, .subscription_id = 7});
  const auto out = match_all(tree, "jobs/a");
  ASSERT_EQ(out.size(), 1u);
  const SharedGroupId group = out[0].group;
  for (int i = 0; i < 4; ++i) {
    const auto other = tree.pick_other_member(group, 1, 0);
    ASSERT_TRUE(other);
    EXPECT_EQ(other->who.session, 2u);
    EXPECT_EQ(other->who.shard, 3u);
    EXPECT_EQ(other->options.subscription_id, 7u);
    EXPECT_EQ(other->group, group);
  }
  EXPECT_TRUE(tree.unsubscribe("$share/w/jobs/#", 2));
  EXPECT_FALSE(tree.pick_other_member(group, 1, 0)) << "nobody else in the group";
  EXPECT_TRUE(tree.unsubscribe("$share/w/jobs/#", 1));
  EXPECT_FALSE(tree.pick_other_member(group, 0, 0)) << "the group is gone";
  // A new group on the same filter is another group: ids are not reused.
  tree.subscribe("$share/w/jobs/#", {5, 0}, {});
  const auto again = match_all(tree, "jobs/a");
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(again[0].group, group);
  EXPECT_FALSE(tree.pick_other_member(group, 0, 0));
}

}  // namespace
}  // namespace harbor::broker
