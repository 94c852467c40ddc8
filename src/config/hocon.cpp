#include "config/hocon.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

namespace harbor::config::hocon {
namespace {

// Deep enough for any real configuration, shallow enough that hostile input (the fuzzer)
// cannot exhaust the stack through recursion.
constexpr int kMaxNesting = 64;
constexpr int kMaxIncludeDepth = 8;
constexpr int kMaxSubstitutionDepth = 32;
// Includes are configuration files; refusing anything bigger keeps a stray include of a
// large binary from stalling startup.
constexpr std::uintmax_t kMaxIncludeBytes = 1u << 20;
// Substitutions copy values, so `b = ${a}${a}`, `c = ${b}${b}`, ... doubles at every step;
// this caps the total a document may expand to (bytes of text plus one per node).
constexpr size_t kMaxExpansion = 16u << 20;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

// Characters that end an unquoted key.
bool ends_key(char c) {
  return is_space(c) || c == '\n' || c == '=' || c == ':' || c == '{' || c == '}' || c == '[' ||
         c == ']' || c == ',' || c == '"' || c == '#' || c == '.' || c == '$' || c == '+';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string join(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& key : path) {
    if (!out.empty()) out += '.';
    out += key;
  }
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, std::string file, ParseOptions options,
         std::vector<std::string>& warnings)
      : text_(text), file_(std::move(file)), options_(std::move(options)), warnings_(warnings) {}

  tl::expected<Value, ConfigError> parse_document() {
    Value root = make(Value::Kind::Object);
    if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // a UTF-8 byte order mark
    skip_blank(true);
    if (peek() == '{') {
      ++pos_;
      if (!parse_fields(root, '}', 1)) return tl::unexpected(error_);
      ++pos_;  // the closing brace
      skip_blank(true);
      if (!at_end()) return fail("unexpected text after the closing brace");
    } else if (!parse_fields(root, '\0', 0)) {
      return tl::unexpected(error_);
    }
    return root;
  }

  tl::expected<Value, ConfigError> parse_single_value() {
    skip_blank(false);
    Value value;
    if (!parse_any(value, 0)) return tl::unexpected(error_);
    skip_blank(true);
    if (!at_end()) return fail("unexpected text after the value");
    return value;
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }
  bool at_comment() const { return peek() == '#' || (peek() == '/' && peek(1) == '/'); }

  Value make(Value::Kind kind) const {
    Value v;
    v.kind = kind;
    v.origin = Origin{file_, line_};
    return v;
  }

  tl::unexpected<ConfigError> fail(std::string message) {
    error_ = ConfigError{file_, line_, join(key_stack_), std::move(message)};
    return tl::unexpected(error_);
  }
  bool set_error(std::string message) {
    fail(std::move(message));
    return false;
  }

  // Skips spaces and comments, and newlines too when `newlines` is set.
  // Returns true when at least one newline was skipped.
  bool skip_blank(bool newlines) {
    bool saw_newline = false;
    while (!at_end()) {
      char c = peek();
      if (is_space(c)) {
        ++pos_;
      } else if (c == '\n' && newlines) {
        ++pos_;
        ++line_;
        saw_newline = true;
      } else if (at_comment()) {
        while (!at_end() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
    return saw_newline;
  }

  // Fields of an object until `close` ('}' or '\0' for the document end). Leaves pos_ on
  // the closing brace.
  bool parse_fields(Value& object, char close, int depth) {
    if (depth > kMaxNesting) return set_error("objects nested too deeply");
    for (;;) {
      skip_blank(true);
      while (peek() == ',') {
        ++pos_;
        skip_blank(true);
      }
      if (at_end()) {
        if (close == '\0') return true;
        return set_error("missing '}'");
      }
      if (peek() == close) return true;
      if (peek() == '}' || peek() == ']')
        return set_error(std::string("unexpected '") + peek() + "'");
      if (is_include()) {
        if (!parse_include(object)) return false;
      } else if (!parse_field(object, depth)) {
        return false;
      }
      // A field ends at a newline, a comma, or the closing brace.
      bool newline = skip_blank(false);
      if (peek() == '\n') {
        newline = true;
      }
      if (!newline && !at_end() && peek() != ',' && peek() != close && peek() != '\n') {
        return set_error("expected a newline or ',' after the value");
      }
    }
  }

  bool is_include() const {
    if (text_.compare(pos_, 7, "include") != 0) return false;
    char after = peek(7);
    return is_space(after) || after == '"';
  }

  bool parse_include(Value& object) {
    pos_ += 7;
    skip_blank(false);
    bool required = false;
    int closing_parens = 0;
    // include required("f") / include file("f"): the forms HOCON defines besides the bare one.
    for (;;) {
      if (text_.compare(pos_, 9, "required(") == 0) {
        required = true;
        pos_ += 9;
        ++closing_parens;
      } else if (text_.compare(pos_, 5, "file(") == 0) {
        pos_ += 5;
        ++closing_parens;
      } else {
        break;
      }
      skip_blank(false);
    }
    if (peek() != '"') return set_error("include needs a quoted file name");
    std::string name;
    if (!parse_quoted(name)) return false;
    for (; closing_parens > 0; --closing_parens) {
      skip_blank(false);
      if (peek() != ')') return set_error("missing ')' after the include file name");
      ++pos_;
    }
    std::filesystem::path path(name);
    if (path.is_relative() && !options_.base_dir.empty()) {
      path = std::filesystem::path(options_.base_dir) / path;
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      if (required) return set_error("included file not found: " + path.string());
      // HOCON makes a plain include optional. NanoMQ's example points at /etc paths that
      // rarely exist, so a warning keeps its users informed without refusing to start.
      warnings_.push_back(file_ + ":" + std::to_string(line_) + ": include \"" + name +
                          "\": file not found, ignored");
      return true;
    }
    if (options_.include_depth + 1 > kMaxIncludeDepth) {
      return set_error("includes nested too deeply (a cycle?): " + path.string());
    }
    auto included = parse_file(path.string(), options_.include_depth + 1, warnings_);
    if (!included) {
      error_ = included.error();
      return false;
    }
    merge_into(object, std::move(*included));
    return true;
  }

  bool parse_field(Value& object, int depth) {
    std::vector<std::string> path;
    if (!parse_key(path)) return false;
    size_t pushed = path.size();
    for (const auto& key : path) key_stack_.push_back(key);
    skip_blank(false);
    Value value;
    if (peek() == '{') {
      if (!parse_any(value, depth + 1)) return false;
    } else if (peek() == '=' || peek() == ':') {
      ++pos_;
      skip_blank(false);
      if (!parse_any(value, depth + 1)) return false;
    } else if (peek() == '+' && peek(1) == '=') {
      return set_error("'+=' is not supported");
    } else {
      return set_error("expected '=', ':' or '{' after the key");
    }
    key_stack_.resize(key_stack_.size() - pushed);
    set_path(object, path, std::move(value));
    return true;
  }

  bool parse_key(std::vector<std::string>& path) {
    for (;;) {
      std::string segment;
      if (peek() == '"') {
        if (!parse_quoted(segment)) return false;
      } else {
        size_t start = pos_;
        while (!at_end() && !ends_key(peek()) && !(peek() == '/' && peek(1) == '/')) ++pos_;
        segment.assign(text_.substr(start, pos_ - start));
        if (segment.empty()) {
          if (at_end()) return set_error("expected a key");
          return set_error(std::string("expected a key, found '") + peek() + "'");
        }
      }
      path.push_back(std::move(segment));
      if (peek() != '.') return true;
      ++pos_;
    }
  }

  bool parse_any(Value& out, int depth) {
    if (depth > kMaxNesting) return set_error("values nested too deeply");
    char c = peek();
    if (c == '{') {
      out = make(Value::Kind::Object);
      ++pos_;
      if (!parse_fields(out, '}', depth + 1)) return false;
      ++pos_;
      return true;
    }
    if (c == '[') return parse_array(out, depth);
    return parse_scalar(out);
  }

  bool parse_array(Value& out, int depth) {
    out = make(Value::Kind::Array);
    ++pos_;
    for (;;) {
      skip_blank(true);
      while (peek() == ',') {
        ++pos_;
        skip_blank(true);
      }
      if (at_end()) return set_error("missing ']'");
      if (peek() == ']') {
        ++pos_;
        return true;
      }
      Value item;
      if (!parse_any(item, depth + 1)) return false;
      out.items.push_back(std::move(item));
      bool newline = skip_blank(false);
      if (!newline && peek() != ',' && peek() != ']' && peek() != '\n' && !at_end()) {
        return set_error("expected ',' or ']' in the array");
      }
    }
  }

  // A value that is not an object or array: a concatenation of quoted strings, unquoted
  // text and substitutions on one line ("a b" is the string "a b").
  bool parse_scalar(Value& out) {
    out = make(Value::Kind::Scalar);
    std::vector<Piece> pieces;
    std::string pending_space;
    for (;;) {
      char c = peek();
      if (at_end() || c == '\n' || c == ',' || c == '}' || c == ']' || at_comment()) break;
      if (is_space(c)) {
        pending_space += c;
        ++pos_;
        continue;
      }
      if (c == '{' || c == '[') return set_error("objects and arrays cannot be concatenated");
      if (!pieces.empty() && !pending_space.empty()) {
        pieces.push_back(Piece{Piece::Kind::Text, pending_space, false, false});
      }
      pending_space.clear();
      if (c == '"') {
        Piece piece{Piece::Kind::Text, {}, false, true};
        if (!parse_quoted(piece.text)) return false;
        pieces.push_back(std::move(piece));
      } else if (c == '$' && peek(1) == '{') {
        pos_ += 2;
        Piece piece{Piece::Kind::Substitution, {}, false, false};
        if (peek() == '?') {
          piece.optional = true;
          ++pos_;
        }
        size_t start = pos_;
        while (!at_end() && peek() != '}' && peek() != '\n') ++pos_;
        if (peek() != '}') return set_error("missing '}' after the substitution");
        piece.text.assign(text_.substr(start, pos_ - start));
        ++pos_;
        while (!piece.text.empty() && is_space(piece.text.back())) piece.text.pop_back();
        while (!piece.text.empty() && is_space(piece.text.front())) piece.text.erase(0, 1);
        if (piece.text.empty()) return set_error("empty substitution");
        pieces.push_back(std::move(piece));
      } else {
        size_t start = pos_;
        while (!at_end()) {
          char d = peek();
          if (is_space(d) || d == '\n' || d == ',' || d == '}' || d == ']' || d == '"' ||
              d == '{' || d == '[' || at_comment() || (d == '$' && peek(1) == '{')) {
            break;
          }
          // '=' cannot be part of an unquoted value: "a = 1 b = 2" on one line is two
          // settings with the separator missing, not the string "1 b = 2".
          if (d == '=') {
            return set_error("unexpected '=' in the value (a missing newline or ',' before "
                             "the next key?)");
          }
          ++pos_;
        }
        pieces.push_back(
            Piece{Piece::Kind::Text, std::string(text_.substr(start, pos_ - start)), false, false});
      }
    }
    if (pieces.empty()) return set_error("missing value");
    bool has_substitution = false;
    for (const auto& piece : pieces) {
      if (piece.kind == Piece::Kind::Substitution) has_substitution = true;
    }
    if (has_substitution) {
      out.kind = Value::Kind::Unresolved;
      out.pieces = std::move(pieces);
      return true;
    }
    for (const auto& piece : pieces) {
      out.text += piece.text;
      out.quoted = out.quoted || piece.quoted;
    }
    return true;
  }

  bool parse_quoted(std::string& out) {
    if (text_.compare(pos_, 3, "\"\"\"") == 0) {
      // Triple-quoted: raw text, newlines allowed, no escapes.
      pos_ += 3;
      size_t end = text_.find("\"\"\"", pos_);
      if (end == std::string_view::npos) return set_error("unterminated \"\"\" string");
      out.assign(text_.substr(pos_, end - pos_));
      for (char c : out) {
        if (c == '\n') ++line_;
      }
      pos_ = end + 3;
      return true;
    }
    ++pos_;
    for (;;) {
      if (at_end() || peek() == '\n') return set_error("unterminated string");
      char c = text_[pos_++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) return set_error("unterminated string");
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = 0;
          for (int i = 0; i < 4; ++i) {
            char h = peek();
            uint32_t digit;
            if (h >= '0' && h <= '9') {
              digit = static_cast<uint32_t>(h - '0');
            } else if (h >= 'a' && h <= 'f') {
              digit = static_cast<uint32_t>(h - 'a' + 10);
            } else if (h >= 'A' && h <= 'F') {
              digit = static_cast<uint32_t>(h - 'A' + 10);
            } else {
              return set_error("\\u needs four hex digits");
            }
            cp = cp * 16 + digit;
            ++pos_;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          return set_error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::string_view text_;
  std::string file_;
  ParseOptions options_;
  std::vector<std::string>& warnings_;
  size_t pos_ = 0;
  int line_ = 1;
  std::vector<std::string> key_stack_;  // names the key in syntax errors
  ConfigError error_;
};

// What a substitution refers to, resolving it first when it is itself a substitution.
size_t size_of(const Value& v) {
  size_t total = 1 + v.text.size();
  for (const auto& field : v.fields) total += field.key.size() + size_of(field.value);
  for (const auto& item : v.items) total += size_of(item);
  return total;
}

struct Resolver {
  Value& root;
  int depth = 0;
  size_t expanded = 0;

  tl::expected<void, ConfigError> charge(size_t bytes, const Origin& origin) {
    expanded += bytes;
    if (expanded > kMaxExpansion) {
      return tl::unexpected(
          ConfigError{origin.file, origin.line, "", "substitutions expand beyond 16 MB"});
    }
    return {};
  }

  // `path` is the key being resolved; errors name it.
  tl::expected<void, ConfigError> resolve_tree(Value& value, const std::string& path) {
    if (value.kind == Value::Kind::Unresolved) {
      // The copy of an object target may hold substitutions of its own: fall through.
      if (auto r = resolve_one(value, path); !r) return r;
    }
    if (value.kind == Value::Kind::Object) {
      for (auto& field : value.fields) {
        std::string child = path.empty() ? field.key : path + "." + field.key;
        if (auto r = resolve_tree(field.value, child); !r) return r;
      }
      std::erase_if(value.fields,
                    [](const Field& f) { return f.value.kind == Value::Kind::Absent; });
    } else if (value.kind == Value::Kind::Array) {
      for (auto& item : value.items) {
        if (auto r = resolve_tree(item, path); !r) return r;
      }
      std::erase_if(value.items, [](const Value& v) { return v.kind == Value::Kind::Absent; });
    }
    return {};
  }

  tl::expected<void, ConfigError> resolve_one(Value& value, const std::string& path) {
    // resolve_pieces() takes the pieces out first, so an Unresolved value without pieces is
    // one whose resolution is under way further up: the substitution refers to itself.
    if (value.pieces.empty()) {
      return tl::unexpected(
          ConfigError{value.origin.file, value.origin.line, path, "substitution cycle"});
    }
    if (++depth > kMaxSubstitutionDepth) {
      --depth;
      return tl::unexpected(ConfigError{value.origin.file, value.origin.line, path,
                                        "substitution cycle or chain too long"});
    }
    auto result = resolve_pieces(value, path);
    --depth;
    return result;
  }

  tl::expected<void, ConfigError> resolve_pieces(Value& value, const std::string& path) {
    Origin origin = value.origin;
    std::vector<Piece> pieces = std::move(value.pieces);
    value.pieces.clear();
    // A lone substitution takes the target's whole value (object, array or scalar).
    if (pieces.size() == 1) {
      auto target = lookup(pieces[0], origin, path);
      if (!target) return tl::unexpected(target.error());
      if (!*target) {
        value = Value{};
        value.kind = Value::Kind::Absent;
      } else {
        if (auto r = charge(size_of(**target), origin); !r) return r;
        value = **target;
      }
      value.origin = origin;
      return {};
    }
    std::string text;
    bool quoted = false;
    for (const auto& piece : pieces) {
      if (piece.kind == Piece::Kind::Text) {
        text += piece.text;
        quoted = quoted || piece.quoted;
        continue;
      }
      auto target = lookup(piece, origin, path);
      if (!target) return tl::unexpected(target.error());
      if (!*target) continue;  // optional and missing: contributes nothing
      if ((*target)->kind != Value::Kind::Scalar) {
        return tl::unexpected(
            ConfigError{origin.file, origin.line, path,
                        "${" + piece.text + "} is not a string and cannot be concatenated"});
      }
      if (auto r = charge((*target)->text.size(), origin); !r) return r;
      text += (*target)->text;
      quoted = quoted || (*target)->quoted;
    }
    value = Value{};
    value.kind = Value::Kind::Scalar;
    value.text = std::move(text);
    value.quoted = quoted;
    value.origin = origin;
    return {};
  }

  // An empty optional: an optional substitution found nothing.
  tl::expected<std::optional<Value>, ConfigError> lookup(const Piece& piece, const Origin& origin,
                                                         const std::string& path) {
    Value* target = &root;
    for (const auto& key : split_path(piece.text)) {
      if (target == nullptr || !target->is_object()) {
        target = nullptr;
        break;
      }
      target = target->find(key);
    }
    if (target != nullptr && target->kind == Value::Kind::Unresolved) {
      if (auto r = resolve_one(*target, piece.text); !r) return tl::unexpected(r.error());
    }
    if (target != nullptr && target->kind != Value::Kind::Absent) {
      return std::optional<Value>(*target);
    }
    if (const char* env = std::getenv(piece.text.c_str())) {
      Value v;
      v.kind = Value::Kind::Scalar;
      v.text = env;
      v.quoted = true;
      v.origin = origin;
      return std::optional<Value>(std::move(v));
    }
    if (piece.optional) return std::optional<Value>();
    return tl::unexpected(ConfigError{
        origin.file, origin.line, path,
        "substitution ${" + piece.text + "} names nothing in the file or the environment"});
  }
};

}  // namespace

const Value* Value::find(std::string_view key) const {
  for (const auto& field : fields) {
    if (field.key == key) return &field.value;
  }
  return nullptr;
}

Value* Value::find(std::string_view key) {
  for (auto& field : fields) {
    if (field.key == key) return &field.value;
  }
  return nullptr;
}

const Value* Value::find_path(std::string_view dotted) const {
  const Value* at = this;
  for (const auto& key : split_path(dotted)) {
    if (!at->is_object()) return nullptr;
    at = at->find(key);
    if (at == nullptr) return nullptr;
  }
  return at;
}

std::vector<std::string> split_path(std::string_view dotted) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t dot = dotted.find('.', start);
    out.emplace_back(dotted.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

void merge_into(Value& into, Value from) {
  for (auto& field : from.fields) {
    set_path(into, {field.key}, std::move(field.value));
  }
}

void set_path(Value& root, const std::vector<std::string>& path, Value value) {
  Value* at = &root;
  for (size_t i = 0; i < path.size(); ++i) {
    Value* existing = at->find(path[i]);
    bool last = i + 1 == path.size();
    if (last) {
      if (existing != nullptr && existing->is_object() && value.is_object()) {
        merge_into(*existing, std::move(value));
      } else if (existing != nullptr) {
        *existing = std::move(value);
      } else {
        at->fields.push_back(Field{path[i], std::move(value)});
      }
      return;
    }
    if (existing == nullptr || !existing->is_object()) {
      Value object;
      object.kind = Value::Kind::Object;
      object.origin = value.origin;
      if (existing != nullptr) {
        *existing = std::move(object);
      } else {
        at->fields.push_back(Field{path[i], std::move(object)});
        existing = &at->fields.back().value;
      }
    }
    at = existing;
  }
}

tl::expected<Value, ConfigError> parse(std::string_view text, const std::string& file,
                                       const ParseOptions& options,
                                       std::vector<std::string>& warnings) {
  return Parser(text, file, options, warnings).parse_document();
}

tl::expected<Value, ConfigError> parse_value(std::string_view text, const std::string& file) {
  std::vector<std::string> ignored;
  return Parser(text, file, ParseOptions{}, ignored).parse_single_value();
}

tl::expected<Value, ConfigError> parse_file(const std::string& path, int include_depth,
                                            std::vector<std::string>& warnings) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return tl::unexpected(ConfigError{path, 0, "", "cannot open the file (missing or not a file)"});
  }
  if (include_depth > 0 && std::filesystem::file_size(path, ec) > kMaxIncludeBytes) {
    return tl::unexpected(ConfigError{path, 0, "", "included file is too large"});
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return tl::unexpected(ConfigError{path, 0, "", "cannot read the file"});
  std::string content;
  if (include_depth > 0) {
    // file_size() says 0 for /proc-style files; count what is actually read instead.
    content.resize(kMaxIncludeBytes + 1);
    in.read(content.data(), static_cast<std::streamsize>(content.size()));
    content.resize(static_cast<size_t>(in.gcount()));
    if (content.size() > kMaxIncludeBytes) {
      return tl::unexpected(ConfigError{path, 0, "", "included file is too large"});
    }
  } else {
    std::ostringstream buffer;
    buffer << in.rdbuf();
    content = buffer.str();
  }
  ParseOptions options;
  options.base_dir = std::filesystem::path(path).parent_path().string();
  options.include_depth = include_depth;
  return parse(content, path, options, warnings);
}

tl::expected<void, ConfigError> resolve(Value& root) {
  return Resolver{root}.resolve_tree(root, "");
}

}  // namespace harbor::config::hocon
