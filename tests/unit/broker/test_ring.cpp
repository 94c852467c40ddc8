// Ring: the FIFO behind a session's inflight window and queue.
#include "broker/ring.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace harbor::broker {
namespace {

std::vector<int> items(const Ring<int>& r) { return {r.begin(), r.end()}; }

TEST(Ring, KeepsOrderAcrossWrapAroundAndGrowth) {
  Ring<int> r;
  EXPECT_TRUE(r.empty());
  for (int i = 0; i < 3; ++i) r.push_back(i);
  r.pop_front();
  r.pop_front();  // head moves: the next pushes wrap around the 4-slot array
  for (int i = 3; i < 6; ++i) r.push_back(i);
  EXPECT_EQ(items(r), (std::vector<int>{2, 3, 4, 5}));
  for (int i = 6; i < 20; ++i) r.push_back(i);  // grows while wrapped
  std::vector<int> want;
  for (int i = 2; i < 20; ++i) want.push_back(i);
  EXPECT_EQ(items(r), want);
  EXPECT_EQ(r.front(), 2);
  EXPECT_EQ(r.back(), 19);
  EXPECT_EQ(r.size(), 18u);
}

TEST(Ring, EraseInTheMiddleKeepsTheOthersInOrder) {
  Ring<int> r;
  for (int i = 0; i < 6; ++i) r.push_back(i);
  auto it = std::find(r.begin(), r.end(), 3);
  it = r.erase(it);
  EXPECT_EQ(*it, 4) << "erase returns the next element";
  EXPECT_EQ(items(r), (std::vector<int>{0, 1, 2, 4, 5}));
  for (auto i = r.begin(); i != r.end();) i = r.erase(i);
  EXPECT_TRUE(r.empty());
}

TEST(Ring, PoppedEntriesReleaseWhatTheyHold) {
  Ring<std::shared_ptr<std::string>> r;
  auto msg = std::make_shared<std::string>("m");
  r.push_back(msg);
  r.push_back(msg);
  EXPECT_EQ(msg.use_count(), 3);
  r.pop_front();
  EXPECT_EQ(msg.use_count(), 2) << "not kept until the slot is overwritten";
  r.erase(r.begin());
  EXPECT_EQ(msg.use_count(), 1);
}

TEST(Ring, ReleaseIfEmptyOnlyWhenEmpty) {
  Ring<int> r;
  r.push_back(1);
  r.release_if_empty();
  EXPECT_EQ(items(r), std::vector<int>{1});
  r.pop_front();
  r.release_if_empty();
  EXPECT_TRUE(r.empty());
  r.push_back(7);  // allocates again
  EXPECT_EQ(items(r), std::vector<int>{7});
}

}  // namespace
}  // namespace harbor::broker
