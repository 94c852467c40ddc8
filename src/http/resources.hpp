// The /api/v4 resources as pure functions of snapshots: JSON bodies in NanoMQ's shapes and the
// Prometheus text. No I/O, no threads, no clock (times come in the snapshots); unit-tested.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tl/expected.hpp>
#include <vector>

#include "http/snapshot.hpp"

namespace harbor::http {

// NanoMQ's result codes (the "code" of every JSON body).
enum ResultCode : int {
  kSucceed = 0,
  kUnknownMistake = 102,
  kWrongUsernameOrPassword = 103,
  kEmptyUsernameOrPassword = 104,
  kRequestParamError = 108,
};

// {"code": code}, plus "message" when given (ours: says what was wrong).
nlohmann::json error_body(int code, const std::string& message = {});

// GET /api/v4: the endpoint list, NanoMQ's path/name/method/descr.
nlohmann::json endpoints_body();

// "15 Hours, 1 minutes, 38 seconds" (NanoMQ's spelling).
std::string uptime_text(int64_t uptime_ms);
// "YYYY-MM-DD HH:MM:SS", local time.
std::string datetime_text(int64_t unix_ms);

nlohmann::json brokers_body(const ProcessInfo& p);
nlohmann::json nodes_body(const ProcessInfo& p, const Counters& c);
nlohmann::json metrics_body(const ProcessInfo& p, const Counters& c);

// GET /api/v4/clients: NanoMQ's filters (clientid or client_id, username, conn_state,
// clean_start, proto_name, proto_ver) and our paging (_page from 1, _limit), from the query
// parameters. A bad value is an error naming the parameter (answered 400, code 108).
using Query = std::multimap<std::string, std::string>;
tl::expected<nlohmann::json, std::string> clients_body(std::vector<broker::ClientSummary> all,
                                                       const Query& query);

// GET /api/v4/prometheus and /metrics: text exposition format 0.0.4.
std::string prometheus_text(const ProcessInfo& p, const Counters& c);

}  // namespace harbor::http
