#include <gtest/gtest.h>

#include "tools/payload.hpp"
#include "tools/sequence_tracker.hpp"

using namespace harbor::tools;

TEST(Payload, StampRoundTrip) {
  std::string p = make_payload(100);
  ASSERT_EQ(p.size(), 100u);
  Stamp s{0xDEADBEEF, 123456, 0x0102030405060708ULL};
  write_stamp(p, s);
  auto back = read_stamp(p);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, s);
  EXPECT_EQ(p.size(), 100u);
  EXPECT_EQ(p[16], 'h');  // filler untouched
}

TEST(Payload, MinimumSizeIsTheStamp) {
  EXPECT_EQ(make_payload(3).size(), kStampSize);
  EXPECT_FALSE(read_stamp(std::string(15, 'x')));
  std::string p = make_payload(16);
  write_stamp(p, Stamp{1, 2, 3});
  EXPECT_EQ(read_stamp(p)->seq, 2u);
}

TEST(Payload, LittleEndianLayout) {
  std::string p = make_payload(16);
  write_stamp(p, Stamp{1, 2, 3});
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[4], 2);
  EXPECT_EQ(p[8], 3);
}

TEST(SequenceTracker, CountsDuplicatesOrderAndGaps) {
  SequenceTracker t;
  for (uint32_t s : {0u, 1u, 2u, 5u, 3u, 3u, 7u}) t.on_message(9, s);
  std::map<uint32_t, StreamCounts> out;
  t.collect(out);
  const auto& c = out.at(9);
  EXPECT_EQ(c.unique, 6u);
  EXPECT_EQ(c.duplicates, 1u);
  EXPECT_EQ(c.out_of_order, 1u);  // 3 after 5
  EXPECT_EQ(c.highest_plus1, 8u);
  EXPECT_EQ(c.gaps(), 2u);  // 4 and 6
}

TEST(SequenceTracker, SeparatePublishersAndLargeSequences) {
  SequenceTracker t;
  t.on_message(1, 100000);
  t.on_message(2, 0);
  std::map<uint32_t, StreamCounts> out;
  t.collect(out);
  EXPECT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].gaps(), 100000u);
  EXPECT_EQ(out[2].gaps(), 0u);
}
