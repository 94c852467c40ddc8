#include "app/http_auth_client.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <chrono>
#include <utility>

namespace harbor::app {
namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// NanoMQ's placeholders: %u user, %c client id, %a address, %r protocol level, %P password;
// for acl_req %A access (1 subscribe, 2 publish), %t topic, %m mount point (empty: we have
// none); %p the listener's port, %C / %d a TLS client's verified certificate's CN / subject
// (empty without one), %% a '%'. Anything else is kept as written.
std::string expand(const std::string& tmpl, const broker::HttpAuthRequest& r) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '%' || i + 1 == tmpl.size()) {
      out.push_back(tmpl[i]);
      continue;
    }
    switch (tmpl[++i]) {
      case 'u':
        out += r.username.value_or("");
        break;
      case 'c':
        out += r.client_id;
        break;
      case 'a':
        out += r.address;
        break;
      case 'r':
        out += std::to_string(r.protocol);
        break;
      case 'P':
        out += r.password.value_or("");
        break;
      case 'A':
        if (r.kind == broker::HttpAuthKind::Acl) out += std::to_string(r.access);
        break;
      case 't':
        out += r.topic;
        break;
      case 'p':
        if (r.port != 0) out += std::to_string(r.port);
        break;
      case 'C':
        out += r.cert_cn;
        break;
      case 'd':
        out += r.cert_subject;
        break;
      case 'm':
        break;
      case '%':
        out.push_back('%');
        break;
      default:
        out.push_back('%');
        out.push_back(tmpl[i]);
    }
  }
  return out;
}

std::string form_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

std::string json_string(std::string_view s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));  // UTF-8 passes as it is
    }
  }
  return out + "\"";
}

std::string sha256(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

size_t discard_body(char*, size_t size, size_t n, void*) { return size * n; }

broker::HttpAuthAnswer unavailable(std::string why) {
  broker::HttpAuthAnswer a;
  a.verdict = broker::HttpAuthVerdict::Unavailable;
  a.detail = std::move(why);
  return a;
}

}  // namespace

struct HttpAuthClient::Job {
  broker::HttpAuthRequest request;
  config::HttpRequestSettings spec;   // auth_req, then super_req
  config::HttpRequestSettings super;  // !present: no superuser question
  std::chrono::milliseconds timeout{0};
  std::chrono::milliseconds connect_timeout{0};
  std::chrono::milliseconds cache_ttl{0};
  uint64_t generation = 0;
  bool asking_super = false;
  broker::HttpAuthAnswer answer;  // of auth_req, while super_req runs
  std::string url;
  std::string body;
  std::string cache_key;
  curl_slist* headers = nullptr;
  CURL* easy = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  ~Job() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (headers != nullptr) curl_slist_free_all(headers);
  }

  // Builds the URL, body and headers of `spec` for `request`.
  void prepare() {
    if (headers != nullptr) curl_slist_free_all(headers);
    headers = nullptr;
    bool json = false;
    bool content_type = false;
    for (const auto& [name, value] : spec.headers) {
      if (name == "content-type") {
        content_type = true;
        json = value.find("json") != std::string::npos;
      }
      headers = curl_slist_append(headers, (name + ": " + value).c_str());
    }
    if (!content_type && spec.post)
      headers = curl_slist_append(headers, "content-type: application/x-www-form-urlencoded");
    std::string params;
    for (const auto& [name, tmpl] : spec.params) {
      const std::string v = expand(tmpl, request);
      if (json && spec.post) {
        params += (params.empty() ? "{" : ",") + json_string(name) + ":" + json_string(v);
      } else {
        params += (params.empty() ? "" : "&") + form_encode(name) + "=" + form_encode(v);
      }
    }
    if (json && spec.post) params += params.empty() ? "{}" : "}";
    url = spec.url;
    body.clear();
    if (spec.post) {
      body = std::move(params);
    } else if (!params.empty()) {
      url += (url.find('?') == std::string::npos ? "?" : "&") + params;
    }
    // The auth_req / acl_req request's (a kind of its own: the same text asked as both is two
    // questions).
    if (!asking_super)
      cache_key =
          sha256(std::string(request.kind == broker::HttpAuthKind::Acl ? "acl\n" : "auth\n") + url +
                 '\n' + body);
  }
};

HttpAuthClient::HttpAuthClient(config::HttpAuthSettings settings, Deliver deliver)
    : settings_(std::move(settings)), deliver_(std::move(deliver)) {
  static std::once_flag curl_init;
  std::call_once(curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpAuthClient::~HttpAuthClient() { stop(); }

void HttpAuthClient::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
  if (thread_.joinable()) thread_.join();
}

void HttpAuthClient::reconfigure(config::HttpAuthSettings settings) {
  std::lock_guard lock(mu_);
  settings_ = std::move(settings);
  ++generation_;
}

void HttpAuthClient::ask(broker::HttpAuthRequest request) {
  std::unique_lock lock(mu_);
  if (stopping_ || waiting_.size() >= kMaxWaiting) {
    const bool full = !stopping_;
    lock.unlock();
    answer(request, unavailable(full ? "too many requests waiting for the HTTP auth server"
                                     : "shutting down"));
    return;
  }
  waiting_.push_back(std::move(request));
  if (!started_) {
    started_ = true;
    thread_ = std::thread([this] { run(); });
  } else if (multi_ != nullptr) {
    curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
}

void HttpAuthClient::answer(const broker::HttpAuthRequest& r, broker::HttpAuthAnswer a) {
  a.kind = r.kind;
  deliver_(r.shard, r.link_id, std::move(a));
}

void HttpAuthClient::start_job(std::unique_ptr<Job> job, void* multi) {
  job->prepare();
  if (!job->asking_super && job->cache_ttl.count() > 0) {
    if (auto it = cache_.find(job->cache_key); it != cache_.end()) {
      if (it->second.generation == job->generation && it->second.expires_ms > steady_ms()) {
        answer(job->request, it->second.answer);
        return;
      }
      cache_.erase(it);
    }
  }
  job->easy = curl_easy_init();
  CURL* e = job->easy;
  if (e == nullptr) {
    answer(job->request, unavailable("cannot make an HTTP request"));
    return;
  }
  curl_easy_setopt(e, CURLOPT_URL, job->url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  // https: the server's certificate is verified (libcurl's default: chain and host name)
  // against cacertfile, or the system's CAs when none is given.
  if (!job->spec.cacertfile.empty())
    curl_easy_setopt(e, CURLOPT_CAINFO, job->spec.cacertfile.c_str());
  if (!job->spec.certfile.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, job->spec.certfile.c_str());
    curl_easy_setopt(e, CURLOPT_SSLKEY, job->spec.keyfile.c_str());
  }
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(job->timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(job->connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, job->headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, job->error);
  curl_easy_setopt(e, CURLOPT_PRIVATE, job.get());
  if (job->spec.post) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(job->body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->body.c_str());
  }
  if (curl_multi_add_handle(static_cast<CURLM*>(multi), e) != CURLM_OK) {
    answer(job->request, unavailable("cannot start an HTTP request"));
    return;
  }
  in_flight_.insert(job.release());  // found again through CURLOPT_PRIVATE
}

void HttpAuthClient::finish_job(Job* raw, long status, int curl_code, const char* error) {
  std::unique_ptr<Job> job(raw);
  in_flight_.erase(raw);
  broker::HttpAuthAnswer a;
  if (curl_code != CURLE_OK) {
    a.verdict = broker::HttpAuthVerdict::Unavailable;
    a.detail = std::string(curl_easy_strerror(static_cast<CURLcode>(curl_code))) +
               (error != nullptr && *error ? std::string(": ") + error : std::string());
  } else if (status == 200) {
    a.verdict = broker::HttpAuthVerdict::Allow;
    a.detail = "HTTP 200";
  } else if (status >= 400 && status < 500) {
    a.verdict = broker::HttpAuthVerdict::Deny;
    a.detail = "HTTP " + std::to_string(status);
  } else {
    a.verdict = broker::HttpAuthVerdict::Unavailable;
    a.detail = "HTTP " + std::to_string(status);
  }
  if (job->asking_super) {
    // Any answer but 200 (or none) only means: not a superuser.
    job->answer.superuser = a.verdict == broker::HttpAuthVerdict::Allow;
    a = std::move(job->answer);
  }
  if (!job->asking_super && a.verdict == broker::HttpAuthVerdict::Allow && job->super.present) {
    job->answer = std::move(a);
    job->asking_super = true;
    job->spec = job->super;
    curl_easy_cleanup(job->easy);
    job->easy = nullptr;
    job->error[0] = '\0';
    start_job(std::move(job), multi_);
    return;
  }
  if (job->cache_ttl.count() > 0 && a.verdict != broker::HttpAuthVerdict::Unavailable) {
    if (cache_.size() >= kMaxCached) {
      const int64_t now = steady_ms();
      std::erase_if(cache_, [now](const auto& kv) { return kv.second.expires_ms <= now; });
      if (cache_.size() >= kMaxCached) cache_.clear();
    }
    cache_[job->cache_key] = Cached{a, steady_ms() + job->cache_ttl.count(), job->generation};
  }
  answer(job->request, std::move(a));
}

void HttpAuthClient::run() {
  CURLM* multi = curl_multi_init();
  {
    std::lock_guard lock(mu_);
    multi_ = multi;
  }
  for (;;) {
    std::deque<broker::HttpAuthRequest> take;
    config::HttpAuthSettings settings;
    uint64_t generation = 0;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      const size_t room =
          settings_.pool_size > in_flight_.size() ? settings_.pool_size - in_flight_.size() : 0;
      while (!waiting_.empty() && take.size() < room) {
        take.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
      if (!take.empty()) settings = settings_;
      generation = generation_;
    }
    for (auto& r : take) {
      auto job = std::make_unique<Job>();
      job->request = std::move(r);
      const bool acl = job->request.kind == broker::HttpAuthKind::Acl;
      if (acl && !settings.acl_req.present) {  // a reload took acl_req away meanwhile
        answer(job->request, unavailable("auth.http_auth.acl_req is not configured"));
        continue;
      }
      job->spec = acl ? settings.acl_req : settings.auth_req;
      if (!acl) job->super = settings.super_req;
      job->timeout = settings.timeout;
      job->connect_timeout = settings.connect_timeout;
      job->cache_ttl = settings.cache_ttl;
      job->generation = generation;
      start_job(std::move(job), multi);
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* e = msg->easy_handle;
      const CURLcode code = msg->data.result;
      Job* job = nullptr;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&job));
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      curl_multi_remove_handle(multi, e);
      finish_job(job, status, code, job->error);
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  // Unfinished requests: their shards are stopping too; nothing is delivered.
  for (Job* job : in_flight_) {
    curl_multi_remove_handle(multi, job->easy);
    delete job;
  }
  in_flight_.clear();
  std::lock_guard lock(mu_);
  multi_ = nullptr;
  curl_multi_cleanup(multi);
}

}  // namespace harbor::app
