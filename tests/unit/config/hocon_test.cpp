// The HOCON reader on its own: syntax, merging, includes, substitutions, error positions.
#include "config/hocon.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace harbor::config::hocon {
namespace {

namespace fs = std::filesystem;

Value parse_ok(std::string_view text) {
  std::vector<std::string> warnings;
  auto v = parse(text, "t.conf", ParseOptions{}, warnings);
  EXPECT_TRUE(v.has_value()) << (v ? "" : v.error().to_string());
  if (!v) return Value{};
  auto r = resolve(*v);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return *v;
}

std::string parse_error(std::string_view text) {
  std::vector<std::string> warnings;
  auto v = parse(text, "t.conf", ParseOptions{}, warnings);
  if (!v) return v.error().to_string();
  auto r = resolve(*v);
  if (!r) return r.error().to_string();
  return "(no error)";
}

std::string text_at(const Value& root, std::string_view path) {
  const Value* v = root.find_path(path);
  if (v == nullptr) return "(missing)";
  if (v->kind != Value::Kind::Scalar) return "(not a scalar)";
  return v->text;
}

// A scratch directory per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("harbor_hocon_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(Hocon, ObjectsSeparatorsAndDottedKeys) {
  Value root = parse_ok(
      "a = 1\n"
      "b : two\n"
      "c { d = 3 }\n"
      "listeners.tcp { bind = \"0.0.0.0:1883\" }\n"
      "x.y.z = deep\n");
  EXPECT_EQ(text_at(root, "a"), "1");
  EXPECT_EQ(text_at(root, "b"), "two");
  EXPECT_EQ(text_at(root, "c.d"), "3");
  EXPECT_EQ(text_at(root, "listeners.tcp.bind"), "0.0.0.0:1883");
  EXPECT_EQ(text_at(root, "x.y.z"), "deep");
}

TEST(Hocon, RootBracesAndCommasAndJson) {
  Value root = parse_ok("{\"a\": 1, \"b\": {\"c\": [1, 2]}, d = true}");
  EXPECT_EQ(text_at(root, "a"), "1");
  ASSERT_NE(root.find_path("b.c"), nullptr);
  EXPECT_EQ(root.find_path("b.c")->items.size(), 2u);
  EXPECT_EQ(text_at(root, "d"), "true");
}

TEST(Hocon, QuotedKeyKeepsDots) {
  Value root = parse_ok("\"a.b\" = 1\n");
  ASSERT_NE(root.find("a.b"), nullptr);
  EXPECT_EQ(root.find("a.b")->text, "1");
}

TEST(Hocon, Arrays) {
  Value root = parse_ok(
      "to = [file, console]\n"
      "multi = [\n  one\n  \"two\",\n  { k = v }\n]\n"
      "empty = []\n");
  const Value* to = root.find("to");
  ASSERT_NE(to, nullptr);
  ASSERT_EQ(to->items.size(), 2u);
  EXPECT_EQ(to->items[0].text, "file");
  EXPECT_EQ(to->items[1].text, "console");
  const Value* multi = root.find("multi");
  ASSERT_EQ(multi->items.size(), 3u);
  EXPECT_EQ(multi->items[1].text, "two");
  EXPECT_TRUE(multi->items[2].is_object());
  EXPECT_TRUE(root.find("empty")->items.empty());
}

TEST(Hocon, StringsAndEscapes) {
  Value root = parse_ok(
      "a = \"tab\\there \\\"q\\\" \\\\ \\u00e9\"\n"
      "b = unquoted words here   # trailing comment\n"
      "c = \"x\" y\n"
      "d = \"\"\"raw \\n \"quoted\" text\"\"\"\n"
      "e = http://not-a-comment // but this is\n");
  EXPECT_EQ(text_at(root, "a"), "tab\there \"q\" \\ \xC3\xA9");
  EXPECT_EQ(text_at(root, "b"), "unquoted words here");
  EXPECT_EQ(text_at(root, "c"), "x y");
  EXPECT_EQ(text_at(root, "d"), "raw \\n \"quoted\" text");
  EXPECT_EQ(text_at(root, "e"), "http:");
}

TEST(Hocon, Comments) {
  Value root = parse_ok(
      "# hash\n"
      "// slashes\n"
      "a = 1 // after\n"
      "b { # inside\n"
      "  c = 2\n"
      "}\n");
  EXPECT_EQ(text_at(root, "a"), "1");
  EXPECT_EQ(text_at(root, "b.c"), "2");
}

TEST(Hocon, RepeatedKeysMergeObjectsAndReplaceValues) {
  Value root = parse_ok(
      "mqtt { a = 1, b = 2 }\n"
      "mqtt { b = 3 }\n"
      "mqtt.c = 4\n"
      "x = 1\n"
      "x = 2\n"
      "y = { z = 1 }\n"
      "y = 5\n");
  EXPECT_EQ(text_at(root, "mqtt.a"), "1");
  EXPECT_EQ(text_at(root, "mqtt.b"), "3");
  EXPECT_EQ(text_at(root, "mqtt.c"), "4");
  EXPECT_EQ(text_at(root, "x"), "2");
  EXPECT_EQ(text_at(root, "y"), "5");
  // The later value carries the later line, so errors point at what won.
  EXPECT_EQ(root.find("x")->origin.line, 5);
}

TEST(Hocon, LinesAreTracked) {
  Value root = parse_ok("\n\na = 1\nb {\n  c = [\n 1\n ]\n  d = 2\n}\n");
  EXPECT_EQ(root.find("a")->origin.line, 3);
  EXPECT_EQ(root.find_path("b.d")->origin.line, 8);
  EXPECT_EQ(root.find_path("b.d")->origin.file, "t.conf");
}

TEST(Hocon, Substitutions) {
  Value root = parse_ok(
      "base { dir = \"/var/lib\" }\n"
      "path = ${base.dir}\n"
      "joined = ${base.dir}/harbor\n"
      "copy = ${base}\n"
      "later = ${defined.below}\n"
      "defined.below = 7\n"
      "maybe = ${?HARBOR_TEST_SURELY_UNSET_VARIABLE}\n"
      "maybe_joined = x${?HARBOR_TEST_SURELY_UNSET_VARIABLE}y\n");
  EXPECT_EQ(text_at(root, "path"), "/var/lib");
  EXPECT_EQ(text_at(root, "joined"), "/var/lib/harbor");
  EXPECT_EQ(text_at(root, "copy.dir"), "/var/lib");
  EXPECT_EQ(text_at(root, "later"), "7");
  EXPECT_EQ(root.find("maybe"), nullptr);  // optional and missing: the key disappears
  EXPECT_EQ(text_at(root, "maybe_joined"), "xy");
}

TEST(Hocon, SubstitutionFallsBackToEnvironment) {
  ::setenv("HARBOR_TEST_HOCON_ENV", "from-env", 1);
  Value root = parse_ok("a = ${?HARBOR_TEST_HOCON_ENV}\nb = ${HARBOR_TEST_HOCON_ENV}\n");
  ::unsetenv("HARBOR_TEST_HOCON_ENV");
  EXPECT_EQ(text_at(root, "a"), "from-env");
  EXPECT_EQ(text_at(root, "b"), "from-env");
}

TEST(Hocon, SubstitutionErrors) {
  EXPECT_EQ(parse_error("a = 1\nb = ${no.such.key}\n"),
            "t.conf:2: b: substitution ${no.such.key} names nothing in the file or "
            "the environment");
  EXPECT_NE(parse_error("a = ${b}\nb = ${a}\n").find("cycle"), std::string::npos);
  EXPECT_NE(parse_error("a = ${a}\n").find("cycle"), std::string::npos);
  EXPECT_EQ(parse_error("o { x = 1 }\ns = a${o}\n"),
            "t.conf:2: s: ${o} is not a string and cannot be concatenated");
  EXPECT_EQ(parse_error("a {\n  b = ${a.c}\n  c = ${a.b}\n}\n"),
            "t.conf:2: a.b: substitution cycle");
}

TEST(Hocon, SyntaxErrorsNameFileLineAndKey) {
  EXPECT_EQ(parse_error("mqtt {\n  a = \"open\n}\n"), "t.conf:2: mqtt.a: unterminated string");
  EXPECT_EQ(parse_error("mqtt {\n  a = 1\n"), "t.conf:3: mqtt: missing '}'");
  EXPECT_EQ(parse_error("a = [1, 2\n"), "t.conf:2: a: missing ']'");
  EXPECT_EQ(parse_error("a 1\n"), "t.conf:1: a: expected '=', ':' or '{' after the key");
  EXPECT_EQ(parse_error("a =\n"), "t.conf:1: a: missing value");
  // Two settings on one line without a separator are not one concatenated string.
  EXPECT_EQ(parse_error("s { path = \"/d\" size = 0 }\n"),
            "t.conf:1: s.path: unexpected '=' in the value (a missing newline or ',' before "
            "the next key?)");
  EXPECT_EQ(parse_error("s { path = \"/d\", size = 0 }\n"), "(no error)");
  EXPECT_EQ(parse_error("a = \"x\\q\"\n"), "t.conf:1: a: unknown escape '\\q'");
  EXPECT_EQ(parse_error("= 1\n"), "t.conf:1: expected a key, found '='");
  EXPECT_EQ(parse_error("}\n"), "t.conf:1: unexpected '}'");
}

TEST(Hocon, ExponentialSubstitutionIsBounded) {
  std::string text = "k0 = \"0123456789abcdef\"\n";
  for (int i = 1; i < 40; ++i) {
    text += "k" + std::to_string(i) + " = ${k" + std::to_string(i - 1) + "}${k" +
            std::to_string(i - 1) + "}\n";
  }
  EXPECT_NE(parse_error(text).find("expand beyond"), std::string::npos);
}

TEST(Hocon, ByteOrderMarkIsSkipped) {
  Value root = parse_ok(
      "\xEF\xBB\xBF"
      "a = 1\n");
  EXPECT_EQ(text_at(root, "a"), "1");
}

TEST(Hocon, DeepNestingIsAnErrorNotACrash) {
  std::string text = "a = " + std::string(10000, '[') + std::string(10000, ']');
  EXPECT_NE(parse_error(text).find("nested too deeply"), std::string::npos);
}

TEST(Hocon, IncludeRelativeToIncludingFile) {
  TempDir dir;
  dir.write("conf.d/extra.conf", "mqtt { b = 2 }\nincluded_line = 3\n");
  dir.write("conf.d/users.conf", "\"admin\": \"public\"\n\"client\": \"secret\"\n");
  std::string main = dir.write("main.conf",
                               "mqtt { a = 1 }\n"
                               "include \"conf.d/extra.conf\"\n"
                               "auth { password = {include \"conf.d/users.conf\"} }\n"
                               "include required(\"conf.d/extra.conf\")\n");
  std::vector<std::string> warnings;
  auto root = parse_file(main, 0, warnings);
  ASSERT_TRUE(root) << root.error().to_string();
  EXPECT_EQ(text_at(*root, "mqtt.a"), "1");
  EXPECT_EQ(text_at(*root, "mqtt.b"), "2");
  EXPECT_EQ(text_at(*root, "auth.password.admin"), "public");
  EXPECT_EQ(text_at(*root, "auth.password.client"), "secret");
  // Values from an included file keep that file's name and line.
  EXPECT_EQ(root->find("included_line")->origin.file, (dir.path() / "conf.d/extra.conf").string());
  EXPECT_EQ(root->find("included_line")->origin.line, 2);
  EXPECT_TRUE(warnings.empty());
}

TEST(Hocon, MissingIncludeWarnsRequiredFails) {
  TempDir dir;
  std::string optional = dir.write("a.conf", "x = 1\ninclude \"nope.conf\"\n");
  std::vector<std::string> warnings;
  auto root = parse_file(optional, 0, warnings);
  ASSERT_TRUE(root);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], optional + ":2: include \"nope.conf\": file not found, ignored");

  std::string required = dir.write("b.conf", "include required(\"nope.conf\")\n");
  auto failed = parse_file(required, 0, warnings);
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().to_string().find("included file not found"), std::string::npos);
}

TEST(Hocon, IncludeCycleIsAnError) {
  TempDir dir;
  std::string a = dir.write("a.conf", "include \"b.conf\"\n");
  dir.write("b.conf", "include \"a.conf\"\n");
  std::vector<std::string> warnings;
  auto root = parse_file(a, 0, warnings);
  ASSERT_FALSE(root);
  EXPECT_NE(root.error().message.find("nested too deeply"), std::string::npos);
}

TEST(Hocon, NanoMqAuxiliaryFilesParse) {
  std::vector<std::string> warnings;
  auto pwd = parse_file(HARBOR_SHARED_DIR "/compat/nanomq/nanomq_pwd.conf", 0, warnings);
  ASSERT_TRUE(pwd) << pwd.error().to_string();
  EXPECT_EQ(text_at(*pwd, "admin"), "public");
  EXPECT_EQ(text_at(*pwd, "client"), "public");

  auto acl = parse_file(HARBOR_SHARED_DIR "/compat/nanomq/nanomq_acl.conf", 0, warnings);
  ASSERT_TRUE(acl) << acl.error().to_string();
  const Value* rules = acl->find("rules");
  ASSERT_NE(rules, nullptr);
  ASSERT_EQ(rules->items.size(), 2u);
  EXPECT_EQ(text_at(rules->items[0], "username"), "dashboard");
  EXPECT_EQ(rules->items[0].find("topics")->items[0].text, "$SYS/#");
  EXPECT_EQ(text_at(rules->items[1], "permit"), "allow");
}

TEST(Hocon, ParseValueForOverrides) {
  auto v = parse_value("[a, b]", "<x>");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->items.size(), 2u);
  EXPECT_FALSE(parse_value("a, b", "<x>"));
}

}  // namespace
}  // namespace harbor::config::hocon
