// GET /api/v4: the routes this server answers, in NanoMQ's endpoint-list shape.
#include "http/resources.hpp"

namespace harbor::http {

nlohmann::json error_body(int code, const std::string& message) {
  nlohmann::json body = {{"code", code}};
  if (!message.empty()) body["message"] = message;
  return body;
}

nlohmann::json endpoints_body() {
  struct Endpoint {
    const char* path;
    const char* name;
    const char* descr;
  };
  static constexpr Endpoint kEndpoints[] = {
      {"/brokers/", "list_brokers", "A list of brokers in the cluster"},
      {"/nodes/", "list_nodes", "A list of nodes in the cluster"},
      {"/clients/", "list_clients", "A list of clients on current node"},
      {"/metrics/", "list_metrics", "Statistics of the broker process"},
      {"/prometheus/", "prometheus", "Counters and gauges in Prometheus text format"},
  };
  nlohmann::json data = nlohmann::json::array();
  for (const auto& e : kEndpoints) {
    data.push_back({{"path", e.path}, {"name", e.name}, {"method", "GET"}, {"descr", e.descr}});
  }
  return {{"code", kSucceed}, {"data", std::move(data)}};
}

}  // namespace harbor::http
