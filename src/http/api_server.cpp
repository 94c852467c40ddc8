#include "http/api_server.hpp"

#include <httplib.h>

#include <chrono>

#include "http/broker_probe.hpp"
#include "http/resources.hpp"
#include "runtime/log.hpp"

namespace harbor::http {
namespace {

constexpr std::chrono::milliseconds kShardAnswerTimeout{2000};

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// Compares without stopping at the first difference (no timing hint about the password).
bool same(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

Query query_of(const httplib::Request& req) { return Query(req.params.begin(), req.params.end()); }

}  // namespace

ApiServer::ApiServer(HttpSettings settings, broker::BrokerContext& ctx,
                     std::vector<std::unique_ptr<runtime::Shard>>& shards)
    : settings_(std::move(settings)), ctx_(ctx), shards_(shards) {}

ApiServer::~ApiServer() { stop(); }

tl::expected<uint16_t, std::string> ApiServer::start() {
  server_ = std::make_unique<httplib::Server>();
  unsigned threads = settings_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server_->set_payload_max_length(settings_.max_body);
  routes();
  int port = settings_.port;
  if (port == 0) {
    port = server_->bind_to_any_port(settings_.ip_addr);
    if (port < 0) port = 0;
  } else if (!server_->bind_to_port(settings_.ip_addr, port)) {
    port = 0;
  }
  if (port == 0) {
    server_.reset();
    return tl::unexpected("cannot listen on " + settings_.ip_addr + ":" +
                          std::to_string(settings_.port));
  }
  started_steady_ms_ = steady_ms();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() does nothing before the accept loop runs: wait for it (bounded), so a
  // stop right after start cannot leave the thread listening and the join waiting forever.
  for (int i = 0; i < 2000 && !server_->is_running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  runtime::log_info("http_server: management API on http://" + settings_.ip_addr + ":" +
                    std::to_string(port) + "/api/v4" +
                    (settings_.username.empty() && settings_.password.empty()
                         ? " (no authentication)"
                         : " (Basic authentication)"));
  return static_cast<uint16_t>(port);
}

void ApiServer::stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

void ApiServer::routes() {
  auto& s = *server_;
  const bool auth = !settings_.username.empty() || !settings_.password.empty();
  const std::string expected = "Basic " + base64(settings_.username + ":" + settings_.password);
  // Every request is authenticated first, unknown routes included (NanoMQ's order).
  s.set_pre_routing_handler([auth, expected](const httplib::Request& req, httplib::Response& res) {
    if (!auth) return httplib::Server::HandlerResponse::Unhandled;
    const std::string given = req.get_header_value("Authorization");
    if (same(given, expected)) return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Basic realm=\"harbormq\"");
    send_json(
        res, 401,
        error_body(given.rfind("Basic ", 0) == 0 && given.size() > 6 ? kWrongUsernameOrPassword
                                                                     : kEmptyUsernameOrPassword));
    return httplib::Server::HandlerResponse::Handled;
  });
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404)
      send_json(res, 404, error_body(kUnknownMistake, "no such route"));
    else
      send_json(res, res.status, error_body(kUnknownMistake));
  });

  auto process = [this] {
    return read_process(settings_.version, steady_ms() - started_steady_ms_);
  };
  s.Get("/api/v4/?", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, endpoints_body());
  });
  s.Get("/api/v4/brokers/?", [process](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, brokers_body(process()));
  });
  s.Get("/api/v4/nodes/?", [this, process](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, nodes_body(process(), read_counters(ctx_)));
  });
  s.Get("/api/v4/metrics/?", [this, process](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, metrics_body(process(), read_counters(ctx_)));
  });
  s.Get("/api/v4/clients/?", [this](const httplib::Request& req, httplib::Response& res) {
    auto all = ask_clients(shards_, kShardAnswerTimeout);
    if (!all) {
      send_json(res, 500, error_body(kUnknownMistake, "a shard did not answer in time"));
      return;
    }
    auto body = clients_body(std::move(*all), query_of(req));
    if (!body)
      send_json(res, 400, error_body(kRequestParamError, body.error()));
    else
      send_json(res, 200, *body);
  });
  auto prometheus = [this, process](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus_text(process(), read_counters(ctx_)),
                    "text/plain; version=0.0.4; charset=utf-8");
  };
  s.Get("/api/v4/prometheus/?", prometheus);
  s.Get("/metrics", prometheus);
}

}  // namespace harbor::http
