// RefTable against std::unordered_map as the oracle: inserts, updates, erases (backward
// shift), growth and shrinking, with ids both consecutive (as the broker hands them out)
// and scattered.
#include <random>
#include <unordered_map>

#include <gtest/gtest.h>

#include "store/ref_table.hpp"

namespace harbor::store::test {
namespace {

void check_same(RefTable& table, const std::unordered_map<int64_t, uint32_t>& oracle, int64_t max_id) {
  ASSERT_EQ(table.size(), oracle.size());
  for (int64_t id = 1; id <= max_id; ++id) {
    const RefTable::Ref* r = table.find(id);
    auto it = oracle.find(id);
    if (it == oracle.end()) {
      ASSERT_EQ(r, nullptr) << id;
    } else {
      ASSERT_NE(r, nullptr) << id;
      ASSERT_EQ(static_cast<uint32_t>(r->delta), it->second) << id;
    }
  }
}

TEST(RefTable, MatchesAMapUnderRandomOperations) {
  std::mt19937_64 rng(42);
  for (int64_t range : {int64_t{300}, int64_t{5000}, int64_t{1} << 40}) {
    RefTable table;
    std::unordered_map<int64_t, uint32_t> oracle;
    std::vector<int64_t> ids;
    for (int i = 0; i < 60000; ++i) {
      int op = static_cast<int>(rng() % 3);
      if (op < 2 || ids.empty()) {
        int64_t id = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(std::min<int64_t>(range, 5000)));
        if (range > 5000) id = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(range));
        uint32_t count = static_cast<uint32_t>(rng() % 7);
        if (oracle.find(id) == oracle.end()) ids.push_back(id);
        oracle[id] = count;
        table.set(id, RefTable::Ref{static_cast<int32_t>(count), nullptr});
      } else {
        size_t k = rng() % ids.size();
        int64_t id = ids[k];
        ids[k] = ids.back();
        ids.pop_back();
        oracle.erase(id);
        table.erase(id);
      }
    }
    ASSERT_EQ(table.size(), oracle.size());
    for (const auto& [id, count] : oracle) {
      const RefTable::Ref* r = table.find(id);
      ASSERT_NE(r, nullptr) << id;
      EXPECT_EQ(r->delta, static_cast<int32_t>(count));
    }
    if (range <= 5000) check_same(table, oracle, 5000);
  }
}

TEST(RefTable, ConsecutiveIdsGrowAndShrink) {
  RefTable table;
  std::unordered_map<int64_t, uint32_t> oracle;
  const int64_t n = 100000;
  for (int64_t id = 1; id <= n; ++id) {
    table.set(id, RefTable::Ref{1, nullptr});
    oracle[id] = 1;
  }
  EXPECT_EQ(table.size(), static_cast<size_t>(n));
  EXPECT_GE(table.capacity(), 2 * static_cast<size_t>(n));
  // Drain in order, as acknowledgements arrive, keeping every 1000th.
  for (int64_t id = 1; id <= n; ++id) {
    if (id % 1000 == 0) continue;
    table.erase(id);
    oracle.erase(id);
  }
  check_same(table, oracle, n);
  EXPECT_LE(table.capacity(), 2048u) << "memory given back after the drain";
  table.erase(n + 5);  // absent: no effect
  EXPECT_EQ(table.size(), oracle.size());
}

TEST(RefTable, ResetEmptiesAndKeepsASmallArray) {
  RefTable table;
  for (int64_t id = 1; id <= 1000; ++id) table.set(id, RefTable::Ref{-1, nullptr});
  const size_t capacity = table.capacity();
  table.reset();
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.capacity(), capacity) << "a batch-sized array is kept for the next batch";
  for (int64_t id = 1; id <= 1000; ++id) ASSERT_EQ(table.find(id), nullptr) << id;
  table.set(7, RefTable::Ref{2, nullptr});
  ASSERT_NE(table.find(7), nullptr);
  EXPECT_EQ(table.find(7)->delta, 2);
  // A table grown far past a batch gives its array back.
  for (int64_t id = 1; id <= int64_t{RefTable::kKeepSlots}; ++id) table.set(id, RefTable::Ref{1, nullptr});
  table.reset();
  EXPECT_EQ(table.capacity(), 0u);
  EXPECT_EQ(table.find(7), nullptr);
}

}  // namespace
}  // namespace harbor::store::test
