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
      ASSERT_EQ(r->count, it->second) << id;
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
        table.set(id, RefTable::Ref{count, true});
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
      EXPECT_EQ(r->count, count);
    }
    if (range <= 5000) check_same(table, oracle, 5000);
  }
}

TEST(RefTable, ConsecutiveIdsGrowAndShrink) {
  RefTable table;
  std::unordered_map<int64_t, uint32_t> oracle;
  const int64_t n = 100000;
  for (int64_t id = 1; id <= n; ++id) {
    table.set(id, RefTable::Ref{1, false});
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

}  // namespace
}  // namespace harbor::store::test
