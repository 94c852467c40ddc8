#include <gtest/gtest.h>

#include "tools/topic_template.hpp"

using namespace harbor::tools;

TEST(TopicTemplate, ExpandsPlaceholders) {
  EXPECT_EQ(expand_template("bench/%i", 7, "c"), "bench/7");
  EXPECT_EQ(expand_template("t/%c/x", 1, "client-1"), "t/client-1/x");
  EXPECT_EQ(expand_template("%i-%i", 12, ""), "12-12");
  EXPECT_EQ(expand_template("100%%", 0, ""), "100%");
  EXPECT_EQ(expand_template("a/%x/%", 3, ""), "a/%x/%");
  EXPECT_EQ(expand_template("plain", 3, "c"), "plain");
}

TEST(TopicTemplate, SharedFilter) {
  EXPECT_EQ(shared_filter("", "a/#"), "a/#");
  EXPECT_EQ(shared_filter("g1", "a/#"), "$share/g1/a/#");
}
