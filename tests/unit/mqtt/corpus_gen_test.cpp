// Seed-corpus generator for tests/fuzz (disabled: run once by hand and check in the files):
//   build-mqtt/tests/unit/unit_mqtt --gtest_also_run_disabled_tests
//       --gtest_filter='*GenerateFuzzCorpus*'
// Decoder seeds are one byte of fuzzer configuration (see fuzz_decoder.cpp) followed by
// valid packets of every type and version.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mqtt/codec.hpp"
#include "mqtt/samples.hpp"

namespace harbor::mqtt {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

uint8_t config_byte(Version v, uint8_t chunk) {
  const uint8_t bits = v == Version::v5 ? 1 : v == Version::v31 ? 2 : 0;
  return static_cast<uint8_t>(bits | (chunk << 2));
}

TEST(FuzzCorpus, DISABLED_GenerateFuzzCorpus) {
  const fs::path root = fs::path(HARBOR_SOURCE_DIR) / "tests/fuzz/corpus";
  const fs::path decoder = root / "decoder";
  const fs::path topic = root / "topic";
  fs::create_directories(decoder);
  fs::create_directories(topic);

  for (Version v : {Version::v31, Version::v311, Version::v5}) {
    std::string session(1, static_cast<char>(config_byte(v, 7)));
    for (const auto& sample : testing::sample_packets(v)) {
      if (sample.name == "publish_20k") continue;  // keep seeds small
      std::string seed(1, static_cast<char>(config_byte(v, 0)));
      encode(sample.packet, v, seed);
      write_file(decoder / (testing::name_of(v) + "_" + sample.name), seed);
      // A client session: CONNECT first, then what a client sends.
      if (sample.name.starts_with("connect") || sample.name.starts_with("publish") ||
          sample.name.starts_with("subscribe") || sample.name.starts_with("unsubscribe") ||
          sample.name.starts_with("pingreq") || sample.name.starts_with("puback") ||
          sample.name.starts_with("disconnect"))
        // Without the server-to-client extras a session would stop at (subscription ids).
        if (sample.name != "connect_full" && sample.name != "publish_qos1_props")
          encode(sample.packet, v, session);
    }
    write_file(decoder / (testing::name_of(v) + "_session"), session);
  }

  const std::pair<const char*, std::string_view> topics[] = {
      {"plain", std::string_view("a/b/c\0a/b/c", 11)},
      {"plus", std::string_view("a/+/c\0a/x/c", 11)},
      {"hash", std::string_view("sport/#\0sport", 13)},
      {"sys", std::string_view("#\0$SYS/uptime", 13)},
      {"shared", std::string_view("$share/g/a/#\0a/b", 16)},
      {"bad_filter", std::string_view("a/#/b\0a/x/b", 11)},
      {"utf8", std::string_view("caf\xC3\xA9/+\0caf\xC3\xA9/x", 16)},
      {"empty_levels", std::string_view("+/+\0/finance", 12)},
  };
  for (const auto& [name, bytes] : topics) write_file(topic / name, bytes);
}

}  // namespace
}  // namespace harbor::mqtt
