// Memory of deep topics in the subscription tree and the retained store (issue 10: a
// 65,535-level topic used to cost 14-19 MB of nodes), and path-compressed chains being cut
// and merged again under churn, checked against a brute-force model.
//
// Memory is counted, not sampled: this binary's global operator new/delete keep a running
// total of live heap bytes (malloc_usable_size, so allocator rounding is included).
#include <gtest/gtest.h>
#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "broker/retained_store.hpp"
#include "broker/subscription_tree.hpp"

namespace {
std::atomic<long> g_live_bytes{0};
}  // namespace

void* operator new(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  g_live_bytes.fetch_add(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept {
  if (p == nullptr) return;
  g_live_bytes.fetch_sub(static_cast<long>(malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, size_t) noexcept { operator delete(p); }
void operator delete[](void* p, size_t) noexcept { operator delete(p); }

namespace harbor::broker {
namespace {

long live_bytes() { return g_live_bytes.load(std::memory_order_relaxed); }

std::string repeat_levels(size_t levels, std::string_view level) {
  std::string t;
  for (size_t i = 0; i < levels; ++i) {
    if (i) t += '/';
    t += level;
  }
  return t;
}

MessagePtr retained(std::string topic, std::string payload = "p") {
  auto m = std::make_shared<Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  return m;
}

// A chain of literal levels is one node holding the chain's text: the cost follows the
// topic's bytes, not its level count. Bound: the text plus 1 KiB of nodes and maps.
constexpr long kPerChainOverhead = 1024;
// What may stay allocated after everything is removed again: the walks' thread-local stacks
// (kept for reuse) and the results vectors still in scope. A node left behind is more.
constexpr long kReusedBuffers = 512;

TEST(TreeMemory, DeepFilterCostsItsTextNotItsLevels) {
  const std::string empty_levels(65534, '/');  // 65,535 empty levels, the deepest topic
  const std::string a_levels = repeat_levels(32768, "a");
  SubscriptionTree tree(2);
  const long before = live_bytes();
  tree.subscribe(empty_levels, {1, 0}, {});
  const long one = live_bytes() - before;
  EXPECT_LT(one, static_cast<long>(empty_levels.size()) + kPerChainOverhead);
  tree.subscribe(a_levels, {2, 0}, {});
  const long two = live_bytes() - before;
  EXPECT_LT(two - one, static_cast<long>(a_levels.size()) + kPerChainOverhead);
  EXPECT_EQ(tree.node_count(), 1u + 65535u + 32768u);  // levels, as before the compression
  std::vector<SubscriptionMatch> out;
  tree.match(empty_levels, 0, out);
  tree.match(a_levels, 0, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].who.session, 1u);
  EXPECT_EQ(out[1].who.session, 2u);
  out.clear();
  tree.match(empty_levels.substr(1), 0, out);  // one level short
  tree.match(a_levels + "/a", 0, out);           // one level more
  EXPECT_TRUE(out.empty());

  EXPECT_TRUE(tree.unsubscribe(empty_levels, 1));
  EXPECT_TRUE(tree.unsubscribe(a_levels, 2));
  EXPECT_LT(live_bytes() - before, kReusedBuffers);  // every node, map and entry set released
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(TreeMemory, WildcardLevelsAreOneSmallNodeEach) {
  // '+' levels cannot share a node; each is one 64-byte node (72 usable bytes in glibc).
  constexpr size_t kLevels = 32768;
  const std::string pluses = repeat_levels(kLevels, "+");
  SubscriptionTree tree(1);
  const long before = live_bytes();
  tree.subscribe(pluses, {1, 0}, {});
  EXPECT_LT(live_bytes() - before, static_cast<long>(kLevels) * 80 + kPerChainOverhead);
  std::vector<SubscriptionMatch> out;
  tree.match(repeat_levels(kLevels, "x"), 0, out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(tree.unsubscribe(pluses, 1));
  EXPECT_LT(live_bytes() - before, kReusedBuffers);
}

TEST(TreeMemory, DeepRetainedTopicCostsItsText) {
  const std::string empty_levels(65534, '/');
  const std::string a_levels = repeat_levels(32768, "a");
  RetainedStore store(2);
  MessagePtr deep = retained(empty_levels);
  MessagePtr deep_a = retained(a_levels);
  const long before = live_bytes();
  store.set(deep);
  store.set(deep_a);
  // The message (and its topic) is the caller's; the tree adds the chain text once more.
  EXPECT_LT(live_bytes() - before,
            static_cast<long>(empty_levels.size() + a_levels.size()) + 2 * kPerChainOverhead);
  EXPECT_EQ(store.node_count(), 1u + 65535u + 32768u);
  std::vector<MessagePtr> out;
  store.match("#", 0, 0, out);
  EXPECT_EQ(out.size(), 2u);
  out.clear();
  store.match("/+/#", 0, 0, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0]->topic, empty_levels);
  out.clear();
  store.match(a_levels, 0, 0, out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_NE(store.erase(empty_levels), nullptr);
  EXPECT_NE(store.erase(a_levels), nullptr);
  EXPECT_LT(live_bytes() - before, kReusedBuffers);
  EXPECT_EQ(store.node_count(), 1u);
}

TEST(TreeMemory, ChainsAreCutAndMergedBack) {
  SubscriptionTree tree(1);
  const long before = live_bytes();
  tree.subscribe("a/b/c/d", {1, 0}, {});
  tree.subscribe("a/b", {2, 0}, {});      // cuts the chain at b
  tree.subscribe("a/b/x/+", {3, 0}, {});  // a second branch below b, then a '+'
  EXPECT_EQ(tree.node_count(), 7u);       // root, a, b, c, d, x, +
  std::vector<SubscriptionMatch> out;
  tree.match("a/b", 0, out);
  tree.match("a/b/c/d", 0, out);
  tree.match("a/b/x/y", 0, out);
  tree.match("a/b/c", 0, out);  // an intermediate level of a chain: nobody
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].who.session, 2u);
  EXPECT_EQ(out[1].who.session, 1u);
  EXPECT_EQ(out[2].who.session, 3u);
  EXPECT_TRUE(tree.unsubscribe("a/b", 2));
  EXPECT_TRUE(tree.unsubscribe("a/b/x/+", 3));
  EXPECT_EQ(tree.node_count(), 5u);
  out.clear();
  tree.match("a/b/c/d", 0, out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_TRUE(tree.unsubscribe("a/b/c/d", 1));
  EXPECT_LT(live_bytes() - before, kReusedBuffers);

  RetainedStore store(1);
  const long store_before = live_bytes();
  MessagePtr m1 = retained("a/b/c/d"), m2 = retained("a/b"), m3 = retained("a/bc");
  store.set(m1);
  store.set(m2);
  store.set(m3);  // "bc" shares the text "b" with "b", not the level
  EXPECT_EQ(store.node_count(), 6u);  // root, a, b, c, d, bc
  std::vector<MessagePtr> got;
  store.match("a/+", 0, 0, got);
  EXPECT_EQ(got.size(), 2u);
  got.clear();
  store.match("a/b/+", 0, 0, got);  // c is an intermediate level: no message
  EXPECT_TRUE(got.empty());
  EXPECT_NE(store.erase("a/b"), nullptr);
  EXPECT_NE(store.erase("a/bc"), nullptr);
  EXPECT_EQ(store.node_count(), 5u);
  EXPECT_NE(store.erase("a/b/c/d"), nullptr);
  m1.reset(), m2.reset(), m3.reset();
  EXPECT_LT(live_bytes() - store_before, kReusedBuffers);
}

// ---- Churn on long, overlapping chains against a brute-force model ----------------------

std::vector<std::string> levels_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t slash = s.find('/', start);
    out.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

bool reference_matches(const std::string& filter, const std::string& topic) {
  const auto f = levels_of(filter);
  const auto t = levels_of(topic);
  if (topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;
    if (i >= t.size() || (f[i] != "+" && f[i] != t[i])) return false;
  }
  return f.size() == t.size();
}

// Tree levels the model needs: every distinct level prefix, plus the root.
size_t reference_nodes(const std::set<std::string>& paths) {
  std::set<std::string> prefixes;
  for (const std::string& p : paths) {
    for (size_t at = p.find('/'); at != std::string::npos; at = p.find('/', at + 1)) {
      prefixes.insert(p.substr(0, at));
    }
    prefixes.insert(p);
  }
  return prefixes.size() + 1;
}

struct Words {
  std::mt19937 rng{20250110};
  // "a" and "ab" share text but not a level; "" is an empty level.
  std::vector<std::string> words{"a", "ab", "", "b", "$x"};
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); }
  std::string path(bool wildcards) {
    const size_t depth = 1 + pick(9);
    std::string p;
    for (size_t i = 0; i < depth; ++i) {
      if (i) p += '/';
      const size_t r = pick(12);
      if (wildcards && r == 0) {
        p += '+';
      } else if (wildcards && r == 1 && i + 1 == depth) {
        p += '#';
      } else {
        // Mostly the same word, so that chains overlap for many levels before they part.
        p += r < 8 ? words[0] : words[pick(words.size())];
      }
    }
    return p;
  }
};

TEST(TreeChurn, SubscriptionTreeAgreesWithModel) {
  Words gen;
  SubscriptionTree tree(1);
  std::set<std::string> filters;  // one session: the filter set is the model
  const long before = live_bytes();
  for (int round = 0; round < 3000; ++round) {
    const std::string f = gen.path(true);
    if (gen.pick(3) != 0) {
      ASSERT_EQ(tree.subscribe(f, {1, 0}, {}), filters.insert(f).second) << f;
    } else {
      ASSERT_EQ(tree.unsubscribe(f, 1), filters.erase(f) == 1) << f;
    }
    if (round % 8 == 0) {
      ASSERT_EQ(tree.node_count(), reference_nodes(filters)) << "round " << round << " " << f;
    }
    const std::string topic = gen.path(false);
    size_t want = 0;
    for (const std::string& filter : filters) want += reference_matches(filter, topic) ? 1 : 0;
    std::vector<SubscriptionMatch> out;
    tree.match(topic, 0, out);
    ASSERT_EQ(out.size(), want) << "topic " << topic << " round " << round;
  }
  for (const std::string& f : filters) ASSERT_TRUE(tree.unsubscribe(f, 1));
  filters.clear();
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_LT(live_bytes() - before, kReusedBuffers);
}

TEST(TreeChurn, RetainedStoreAgreesWithModel) {
  Words gen;
  RetainedStore store(1);
  std::map<std::string, MessagePtr> topics;
  for (int round = 0; round < 3000; ++round) {
    const std::string t = gen.path(false);
    if (gen.pick(3) != 0) {
      MessagePtr m = retained(t, std::to_string(round));
      const bool replaced = store.set(m) != nullptr;
      ASSERT_EQ(replaced, topics.count(t) == 1) << t;
      topics[t] = m;
    } else {
      ASSERT_EQ(store.erase(t) != nullptr, topics.erase(t) == 1) << t;
    }
    if (round % 8 == 0) {
      std::set<std::string> keys;
      for (const auto& entry : topics) keys.insert(entry.first);
      ASSERT_EQ(store.node_count(), reference_nodes(keys)) << "round " << round << " " << t;
    }
    const std::string filter = gen.path(true);
    std::multiset<std::string> want;
    for (const auto& [topic, m] : topics) {
      if (reference_matches(filter, topic)) want.insert(m->payload);
    }
    std::vector<MessagePtr> out;
    store.match(filter, 0, 0, out);
    std::multiset<std::string> got;
    for (const MessagePtr& m : out) got.insert(m->payload);
    ASSERT_EQ(got, want) << "filter " << filter << " round " << round;
  }
}

}  // namespace
}  // namespace harbor::broker
