// RetainedStore: set/replace/delete (section 3.3.1.3), wildcard matching of stored topics
// (section 4.7), expiry (section 3.3.2.3.3), a randomized comparison with a brute-force
// matcher and a concurrent smoke test.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker/retained_store.hpp"

namespace harbor::broker {
namespace {

MessagePtr make(std::string topic, std::string payload, int64_t expires_at_ms = 0) {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->retain = true;
  m->expires_at_ms = expires_at_ms;
  return m;
}

std::set<std::string> topics_of(const std::vector<MessagePtr>& messages) {
  std::set<std::string> topics;
  for (const auto& m : messages) {
    EXPECT_TRUE(topics.insert(m->topic).second) << "duplicate " << m->topic;
  }
  return topics;
}

std::set<std::string> match(const RetainedStore& store, std::string_view filter, int64_t now = 0) {
  std::vector<MessagePtr> out;
  store.match(filter, 0, now, out);
  return topics_of(out);
}

TEST(RetainedStore, SetReplaceAndDeleteByEmptyPayload) {
  RetainedStore store(2);
  EXPECT_EQ(store.set(make("a/b", "1")), nullptr);
  EXPECT_EQ(store.size(), 1u);
  MessagePtr second = make("a/b", "2");
  MessagePtr replaced = store.set(second);
  ASSERT_NE(replaced, nullptr);
  EXPECT_EQ(replaced->payload, "1");  // returned so the caller can release its store row
  EXPECT_EQ(store.size(), 1u);
  std::vector<MessagePtr> out;
  store.match("a/b", 1, 0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], second);  // same object: fan out by reference

  // An empty payload removes the retained message and is not retained [MQTT-3.3.1-10],
  // [MQTT-3.3.1-11].
  MessagePtr removed = store.set(make("a/b", ""));
  ASSERT_NE(removed, nullptr);
  EXPECT_EQ(removed->payload, "2");
  EXPECT_EQ(store.size(), 0u);
  EXPECT_TRUE(match(store, "a/b").empty());
  EXPECT_EQ(store.set(make("a/b", "")), nullptr);  // deleting nothing
  EXPECT_EQ(store.size(), 0u);
  EXPECT_EQ(store.node_count(), 1u);  // pruned back to the root
  EXPECT_EQ(store.set(nullptr), nullptr);
}

TEST(RetainedStore, EraseAndPrune) {
  RetainedStore store(1);
  store.set(make("a/b/c", "x"));
  store.set(make("a", "y"));
  EXPECT_EQ(store.node_count(), 4u);
  EXPECT_EQ(store.erase("a/b"), nullptr);  // intermediate node without a message
  EXPECT_EQ(store.erase("a/b/c/d"), nullptr);
  ASSERT_NE(store.erase("a/b/c"), nullptr);
  EXPECT_EQ(store.node_count(), 2u);  // b and c pruned, a keeps its message
  EXPECT_EQ(store.erase("a/b/c"), nullptr);
  ASSERT_NE(store.erase("a"), nullptr);
  EXPECT_EQ(store.node_count(), 1u);
  EXPECT_EQ(store.size(), 0u);
}

struct FilterCase {
  const char* filter;
  std::set<std::string> topics;
  const char* clause;
};

TEST(RetainedStore, WildcardMatchTable) {
  RetainedStore store(1);
  const std::vector<std::string> stored = {
      "sport",
      "sport/tennis",
      "sport/tennis/player1",
      "sport/tennis/player1/ranking",
      "sport/tennis/player2",
      "sport/golf",
      "/finance",
      "a//b",
      "a/",
      "$SYS/broker/uptime",
      "$SYS",
      "a/$x",
  };
  for (const auto& t : stored) store.set(make(t, "p"));
  ASSERT_EQ(store.size(), stored.size());

  const FilterCase cases[] = {
      {"sport/tennis/player1", {"sport/tennis/player1"}, "4.7"},
      {"sport/tennis/player3", {}, "4.7"},
      {"sport/tennis/player1/#",
       {"sport/tennis/player1", "sport/tennis/player1/ranking"},
       "MQTT-4.7.1-2"},
      {"sport/#",
       {"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
        "sport/tennis/player2", "sport/golf"},
       "MQTT-4.7.1-2"},
      {"#",
       {"sport", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
        "sport/tennis/player2", "sport/golf", "/finance", "a//b", "a/", "a/$x"},
       "MQTT-4.7.2-1"},
      {"sport/tennis/+", {"sport/tennis/player1", "sport/tennis/player2"}, "MQTT-4.7.1-3"},
      {"sport/+", {"sport/tennis", "sport/golf"}, "MQTT-4.7.1-3"},
      {"+", {"sport"}, "MQTT-4.7.2-1"},
      {"+/+", {"sport/tennis", "sport/golf", "/finance", "a/", "a/$x"}, "MQTT-4.7.1-3"},
      {"/+", {"/finance"}, "4.7.1"},
      {"+/tennis/#",
       {"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
        "sport/tennis/player2"},
       "MQTT-4.7.1-2"},
      {"a/+/b", {"a//b"}, "4.7.1"},
      {"a//b", {"a//b"}, "4.7.1"},
      {"a/+", {"a/", "a/$x"}, "MQTT-4.7.2-1"},
      {"a/#", {"a/", "a//b", "a/$x"}, "MQTT-4.7.1-2"},
      {"+/monitor/Clients", {}, "MQTT-4.7.2-1"},
      {"$SYS/#", {"$SYS", "$SYS/broker/uptime"}, "MQTT-4.7.2-1"},
      {"$SYS/+/uptime", {"$SYS/broker/uptime"}, "MQTT-4.7.2-1"},
      {"+/broker/uptime", {}, "MQTT-4.7.2-1"},
  };
  for (const FilterCase& c : cases) {
    SCOPED_TRACE(std::string("[") + c.clause + "] filter '" + c.filter + "'");
    EXPECT_EQ(match(store, c.filter), c.topics);
  }
}

TEST(RetainedStore, ExpiredMessagesAreSkippedAndSwept) {
  RetainedStore store(1);
  store.set(make("t/forever", "p", 0));
  store.set(make("t/soon", "p", 1000));
  store.set(make("t/later", "p", 5000));
  // Expired once expires_at_ms <= now [MQTT-3.3.2-5].
  EXPECT_EQ(match(store, "t/#", 999), (std::set<std::string>{"t/forever", "t/soon", "t/later"}));
  EXPECT_EQ(match(store, "t/#", 1000), (std::set<std::string>{"t/forever", "t/later"}));
  EXPECT_EQ(match(store, "t/soon", 1000), (std::set<std::string>{}));
  EXPECT_EQ(match(store, "t/+", 6000), (std::set<std::string>{"t/forever"}));
  EXPECT_EQ(store.size(), 3u);  // skipped, not dropped: the caller owns the store rows

  const auto gone = store.take_expired(1000);
  EXPECT_EQ(topics_of(gone), (std::set<std::string>{"t/soon"}));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.take_expired(1000).empty());
  EXPECT_EQ(topics_of(store.take_expired(10'000)), (std::set<std::string>{"t/later"}));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.node_count(), 3u);  // root, t, forever
}

TEST(RetainedStore, AllIsASnapshot) {
  RetainedStore store(1);
  store.set(make("$SYS/x", "p"));
  store.set(make("a", "p"));
  store.set(make("a/b", "p"));
  const auto snapshot = store.all();
  store.erase("a");
  EXPECT_EQ(topics_of(snapshot), (std::set<std::string>{"$SYS/x", "a", "a/b"}));
  EXPECT_EQ(topics_of(store.all()), (std::set<std::string>{"$SYS/x", "a/b"}));
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

bool reference_matches(const std::string& filter, const std::string& topic) {
  const auto f = split_levels(filter);
  const auto t = split_levels(topic);
  if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  size_t i = 0;
  for (; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return i == t.size();
}

TEST(RetainedStoreRandom, AgreesWithBruteForce) {
  std::mt19937 rng(424242);
  const std::vector<std::string> words = {"a", "b", "", "$s"};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  auto build = [&](bool wildcards) {
    std::string s;
    const size_t depth = 1 + pick(4);
    for (size_t i = 0; i < depth; ++i) {
      if (i) s += '/';
      const size_t r = pick(8);
      if (wildcards && r < 2) {
        s += '+';
      } else if (wildcards && r == 2 && i + 1 == depth) {
        s += '#';
      } else {
        s += words[pick(words.size())];
      }
    }
    return s;
  };
  RetainedStore store(2);
  std::map<std::string, int64_t> reference;  // topic -> expires_at_ms
  for (int round = 0; round < 2000; ++round) {
    const std::string topic = build(false);
    if (pick(3) == 0) {
      const bool existed = reference.erase(topic) != 0;
      EXPECT_EQ(store.erase(topic) != nullptr, existed);
    } else {
      const int64_t expires = pick(4) == 0 ? static_cast<int64_t>(1 + pick(100)) : 0;
      const bool existed = reference.count(topic) != 0;
      reference[topic] = expires;
      EXPECT_EQ(store.set(make(topic, "p", expires)) != nullptr, existed);
    }
    ASSERT_EQ(store.size(), reference.size());
    const std::string filter = build(true);
    const int64_t now = static_cast<int64_t>(pick(100));
    std::set<std::string> want;
    for (const auto& [t, expires] : reference) {
      if ((expires == 0 || expires > now) && reference_matches(filter, t)) want.insert(t);
    }
    std::vector<MessagePtr> out;
    store.match(filter, static_cast<unsigned>(round % 2), now, out);
    ASSERT_EQ(topics_of(out), want) << "filter '" << filter << "' round " << round;
  }
}

// ---- Concurrency ----------------------------------------------------------------------

TEST(RetainedStoreConcurrent, ReadersWhileWriterChurns) {
  constexpr unsigned kReaders = 3;
  RetainedStore store(kReaders);
  store.set(make("s/stable", "p"));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> readers;
  for (unsigned r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      std::vector<MessagePtr> out;
      int local = 0;
      while (!done.load(std::memory_order_acquire) || local < 500) {
        out.clear();
        store.match(local % 2 ? "s/#" : "s/+", r, 0, out);
        int stable = 0;
        for (const auto& m : out) stable += m->topic == "s/stable";
        if (stable != 1) failures.fetch_add(1);
        ++local;
      }
    });
  }
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      const std::string topic = "s/" + std::to_string(i % 13);
      store.set(make(topic, "p", i % 2 ? 1 : 0));
      if (i % 3 == 0) store.set(make(topic, ""));
      if (i % 50 == 0) store.take_expired(10);
    }
    done.store(true, std::memory_order_release);
  });
  writer.join();
  for (auto& t : readers) t.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace harbor::broker
