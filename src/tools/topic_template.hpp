// Placeholder expansion for bench topics and client ids (emqtt-bench style):
//   %i  client index (starting at --start-number), %c  client id,
//   %%  a literal '%'. Any other %x is kept as is.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace harbor::tools {

std::string expand_template(std::string_view pattern, uint64_t index, std::string_view client_id);

// "$share/<group>/<filter>" when group is non-empty, else the filter unchanged.
std::string shared_filter(std::string_view group, std::string_view filter);

}  // namespace harbor::tools
