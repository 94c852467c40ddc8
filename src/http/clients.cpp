// GET /api/v4/clients: NanoMQ's client objects, filtered and paged.
#include <algorithm>
#include <charconv>
#include <functional>

#include "http/resources.hpp"

namespace harbor::http {
namespace {

tl::expected<uint64_t, std::string> positive(const std::string& name, const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0)
    return tl::unexpected(name + ": expected a whole number from 1, got \"" + text + "\"");
  return v;
}

nlohmann::json client_json(const broker::ClientSummary& c) {
  return {
      {"client_id", c.client_id},     {"username", c.username},
      {"keepalive", c.keepalive_s},   {"conn_state", c.connected ? "connected" : "disconnected"},
      {"clean_start", c.clean_start}, {"proto_name", "MQTT"},
      {"proto_ver", c.proto_ver},     {"connected_at", c.connected_at_ms}};
}

}  // namespace

tl::expected<nlohmann::json, std::string> clients_body(std::vector<broker::ClientSummary> all,
                                                       const Query& query) {
  uint64_t page = 1;
  uint64_t limit = 10000;
  std::vector<std::function<bool(const broker::ClientSummary&)>> keep;
  for (const auto& [key, value] : query) {
    if (key == "clientid" || key == "client_id") {
      keep.push_back([v = value](const auto& c) { return c.client_id == v; });
    } else if (key == "username") {
      keep.push_back([v = value](const auto& c) { return c.username == v; });
    } else if (key == "conn_state") {
      if (value != "connected" && value != "disconnected")
        return tl::unexpected("conn_state: expected connected or disconnected, got \"" + value +
                              "\"");
      bool want = value == "connected";
      keep.push_back([want](const auto& c) { return c.connected == want; });
    } else if (key == "clean_start") {
      if (value != "true" && value != "false")
        return tl::unexpected("clean_start: expected true or false, got \"" + value + "\"");
      bool want = value == "true";
      keep.push_back([want](const auto& c) { return c.clean_start == want; });
    } else if (key == "proto_name") {
      bool mqtt = value == "MQTT";
      keep.push_back([mqtt](const auto&) { return mqtt; });
    } else if (key == "proto_ver") {
      if (value != "3" && value != "4" && value != "5")
        return tl::unexpected("proto_ver: expected 3, 4 or 5, got \"" + value + "\"");
      int want = value[0] - '0';
      keep.push_back([want](const auto& c) { return c.proto_ver == want; });
    } else if (key == "_page") {
      auto v = positive(key, value);
      if (!v) return tl::unexpected(v.error());
      page = *v;
    } else if (key == "_limit") {
      auto v = positive(key, value);
      if (!v) return tl::unexpected(v.error());
      limit = *v;
    } else {
      return tl::unexpected("unknown parameter \"" + key + "\"");
    }
  }
  // Bridges are ours, not clients: they are shown by the bridge routes.
  std::erase_if(all, [&](const broker::ClientSummary& c) {
    return c.bridge || !std::all_of(keep.begin(), keep.end(), [&](const auto& f) { return f(c); });
  });
  // A stable order, so that pages do not overlap.
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.client_id < b.client_id; });
  nlohmann::json data = nlohmann::json::array();
  uint64_t first = (page - 1) * limit;
  for (uint64_t i = first; i < all.size() && i < first + limit; ++i)
    data.push_back(client_json(all[i]));
  return nlohmann::json{{"code", kSucceed},
                        {"data", std::move(data)},
                        {"meta", {{"page", page}, {"limit", limit}, {"count", all.size()}}}};
}

}  // namespace harbor::http
