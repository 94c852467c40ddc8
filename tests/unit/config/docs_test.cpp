// docs/configuration.md is generated from the schema; this keeps it from drifting.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/schema.hpp"

namespace harbor::config {
namespace {

TEST(Docs, ConfigurationReferenceMatchesSchema) {
  const std::string path = HARBOR_SOURCE_DIR "/docs/configuration.md";
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string rendered = render_markdown();
  if (buffer.str() != rendered) {
    // Leave the expected text next to the test binary so regenerating is a copy.
    std::ofstream("configuration.md.expected") << rendered;
  }
  EXPECT_EQ(buffer.str(), rendered)
      << path << " is out of date; copy configuration.md.expected from the test's working "
      << "directory over it";
}

}  // namespace
}  // namespace harbor::config
