// broker::SessionDirectory: one shard holds a client id; reservations count sessions and
// CONNECTs on their way to one; the entry goes with the last.
#include "broker/session_directory.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace harbor::broker {
namespace {

TEST(SessionDirectory, FirstClaimHoldsTheKeyOthersAreSentThere) {
  SessionDirectory d;
  const uint64_t k = SessionDirectory::key_of("sensor-1");
  EXPECT_EQ(d.claim(k, 1), 1u);
  EXPECT_EQ(d.reservations(k), 1u);
  EXPECT_EQ(d.claim(k, 0), 1u);  // another shard: told where, nothing counted
  EXPECT_EQ(d.claim(k, 3), 1u);
  EXPECT_EQ(d.reservations(k), 1u);
  EXPECT_EQ(d.claim(k, 1), 1u);  // the holder again: counted
  EXPECT_EQ(d.reservations(k), 2u);
  EXPECT_EQ(d.keys(), 1u);
}

TEST(SessionDirectory, TheEntryGoesWithTheLastReservationThenAnyShardMayClaim) {
  SessionDirectory d;
  const uint64_t k = SessionDirectory::key_of("sensor-1");
  ASSERT_EQ(d.claim(k, 0), 0u);
  ASSERT_EQ(d.claim(k, 0), 0u);
  d.release(k, 0);
  EXPECT_EQ(d.claim(k, 1), 0u);  // still held by 0
  d.release(k, 0);
  EXPECT_EQ(d.keys(), 0u);
  EXPECT_EQ(d.reservations(k), 0u);
  EXPECT_EQ(d.claim(k, 1), 1u);
}

TEST(SessionDirectory, DifferentIdsAreIndependent) {
  SessionDirectory d;
  const uint64_t a = SessionDirectory::key_of("a"), b = SessionDirectory::key_of("b");
  ASSERT_NE(a, b);
  EXPECT_EQ(d.claim(a, 0), 0u);
  EXPECT_EQ(d.claim(b, 1), 1u);
  d.release(a, 0);
  EXPECT_EQ(d.claim(b, 0), 1u);
  EXPECT_EQ(d.keys(), 1u);
}

// CONNECTs of one id racing on several shards: exactly one shard wins each round, and every
// loser is pointed at the winner.
TEST(SessionDirectory, ConcurrentClaimsAgreeOnOneHolder) {
  SessionDirectory d;
  constexpr unsigned kThreads = 4;
  constexpr int kRounds = 300;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t k = SessionDirectory::key_of("id-" + std::to_string(round));
    std::atomic<int> go{0};
    std::vector<unsigned> answer(kThreads);
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        go.fetch_add(1);
        while (go.load() < static_cast<int>(kThreads)) std::this_thread::yield();
        answer[t] = d.claim(k, t);
      });
    for (auto& th : threads) th.join();
    const unsigned holder = answer[0];
    ASSERT_LT(holder, kThreads);
    for (unsigned t = 0; t < kThreads; ++t) ASSERT_EQ(answer[t], holder) << "round " << round;
    ASSERT_EQ(d.reservations(k), 1u);
    d.release(k, holder);
  }
  EXPECT_EQ(d.keys(), 0u);
}

}  // namespace
}  // namespace harbor::broker
