// How the HTTP thread learns about the broker without reading shard data (DESIGN.md §3):
// counters from BrokerContext's thread-safe atomics, clients by asking every shard.
// Any thread except a shard's (a shard asking itself would wait for its own loop).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "http/snapshot.hpp"
#include "runtime/shard.hpp"

namespace harbor::http {

Counters read_counters(const broker::BrokerContext& ctx);

// Posts a copy request to each shard's loop and waits up to `timeout` for all answers;
// nullopt when one shard did not answer in time (it is busy or stopping).
std::optional<std::vector<broker::ClientSummary>> ask_clients(
    std::vector<std::unique_ptr<runtime::Shard>>& shards, std::chrono::milliseconds timeout);

// CPU and memory of this process; `uptime_ms` since the server started.
ProcessInfo read_process(std::string version, int64_t uptime_ms);

}  // namespace harbor::http
