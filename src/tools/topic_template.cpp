#include "tools/topic_template.hpp"

namespace harbor::tools {

std::string expand_template(std::string_view pattern, uint64_t index, std::string_view client_id) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c != '%' || i + 1 == pattern.size()) {
      out.push_back(c);
      continue;
    }
    char next = pattern[i + 1];
    if (next == 'i') {
      out += std::to_string(index);
      ++i;
    } else if (next == 'c') {
      out += client_id;
      ++i;
    } else if (next == '%') {
      out.push_back('%');
      ++i;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string shared_filter(std::string_view group, std::string_view filter) {
  if (group.empty()) return std::string(filter);
  std::string out = "$share/";
  out += group;
  out += '/';
  out += filter;
  return out;
}

}  // namespace harbor::tools
