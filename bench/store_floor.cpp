// What storing a QoS 1 message costs, without the network or the broker:
//
//   store    HarborMQ's store (store::Store: writer thread, checkpointer, reference counts)
//            takes N queue entries for one offline session, one message each, submitted in
//            groups of 64 like a shard does, and commits them;
//   sqlite   the least SQLite work the schema asks for: one message row and one queue row
//            per message (integer keys, no secondary index, 32-row INSERTs, 512 messages a
//            transaction, WAL, synchronous=NORMAL, SQLite's automatic checkpoint) on one thread;
//   1-row    the same with the message row only (as if the queue entry were folded into it);
//   segment  the same bytes as one blob row per transaction (a log, no row per message).
//
// Prints messages per second and process CPU microseconds per message for each. The
// "sqlite" figure is a floor for any design that keeps a row per message and a row per
// queue entry in SQLite; the other two show what layouts the issue rules out would save
// (docs/persistence.md, "Performance").
//
//   build/store_floor [messages=500000] [dir=/tmp]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <sqlite3.h>

#include "store/store.hpp"

namespace {

using harbor::broker::Message;
using harbor::broker::OpQueueAdd;
using harbor::broker::OpSessionUpsert;
using harbor::broker::PersistOp;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

struct Result {
  double wall_s = 0;
  double cpu_s = 0;
};

void report(const char* name, int messages, const Result& r) {
  std::printf("%-7s %9.0f msg/s  %6.2f us CPU/msg  (%d messages, %.3f s)\n", name,
              messages / r.wall_s, r.cpu_s * 1e6 / messages, messages, r.wall_s);
}

Result run_store(int messages, const std::string& dir) {
  harbor::store::StoreSettings settings;
  settings.directory = dir;
  settings.disk_cache_size = 0;
  auto opened = harbor::store::Store::open(settings);
  if (!opened) {
    std::fprintf(stderr, "%s\n", opened.error().c_str());
    std::exit(1);
  }
  auto& store = **opened;
  store.set_log([](int, std::string_view) {});
  if (!store.restore(0)) std::exit(1);
  store.start();
  OpSessionUpsert session;
  session.client_id = "floor-subscriber-0";
  session.version = 4;
  session.expiry_s = 0xFFFFFFFF;
  uint64_t last = store.submit(std::move(session));

  const std::string payload(100, 'x');
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < messages; i += 64) {
    std::vector<PersistOp> ops;
    for (int k = i; k < std::min(messages, i + 64); ++k) {
      auto m = std::make_shared<Message>();
      m->topic = "bench/persist";
      m->payload = payload;
      m->qos = 1;
      m->store_id = store.next_message_id();
      m->received_at_ms = 1'700'000'000'000;
      OpQueueAdd add;
      add.client_id = "floor-subscriber-0";
      add.seq = static_cast<uint64_t>(k + 1);
      add.message = std::move(m);
      add.qos = 1;
      ops.emplace_back(std::move(add));
    }
    last = store.submit_batch(std::move(ops));
  }
  while (store.durable_seq() < last) std::this_thread::sleep_for(std::chrono::microseconds(200));
  Result r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  store.stop();  // the checkpointer's share is in the CPU figure too
  r.cpu_s = cpu_seconds() - cpu0;
  return r;
}

void check(int rc, sqlite3* db) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE) {
    std::fprintf(stderr, "sqlite: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
}

// How the raw runs lay out one stored message.
enum class Layout {
  kTwoRows,  // a message row and a queue row (what the schema asks for)
  kOneRow,   // the message row only: what is left if the queue entry lived in it
  kSegment,  // one blob row per transaction holding all of its messages back to back
};

constexpr int kRows = 32;     // rows per multi-row INSERT
constexpr int kPerTxn = 16 * kRows;  // messages per transaction (512)

std::string multi_row_insert(const char* table) {
  std::string sql = std::string("INSERT INTO ") + table + " VALUES ";
  for (int r = 0; r < kRows; ++r) sql += r ? ",(?,?,?,?,?,?,?,?)" : "(?,?,?,?,?,?,?,?)";
  return sql;
}

Result run_sqlite(int messages, const std::string& dir, Layout layout) {
  std::string path = dir + "/floor-" + std::to_string(static_cast<int>(layout)) + ".db";
  sqlite3* db = nullptr;
  check(sqlite3_open_v2(path.c_str(), &db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr),
        db);
  check(sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                     "CREATE TABLE m(id INTEGER PRIMARY KEY, topic TEXT, payload BLOB, qos INT,"
                     " retain INT, props BLOB, expires INT, received INT);"
                     "CREATE TABLE q(session INT, seq INT, message INT, qos INT, retain INT,"
                     " sub_ids BLOB, state INT, packet_id INT, PRIMARY KEY(session, seq))"
                     " WITHOUT ROWID;"
                     "CREATE TABLE segment(id INTEGER PRIMARY KEY, body BLOB);",
                     nullptr, nullptr, nullptr),
        db);
  sqlite3_stmt* m = nullptr;
  sqlite3_stmt* q = nullptr;
  sqlite3_stmt* seg = nullptr;
  check(sqlite3_prepare_v2(db, multi_row_insert("m").c_str(), -1, &m, nullptr), db);
  check(sqlite3_prepare_v2(db, multi_row_insert("q").c_str(), -1, &q, nullptr), db);
  check(sqlite3_prepare_v2(db, "INSERT INTO segment VALUES (?, ?)", -1, &seg, nullptr), db);
  const std::string payload(100, 'x');
  const std::string topic = "bench/persist";
  std::string body;
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  int64_t id = 1;
  const int total = messages / kPerTxn * kPerTxn;
  for (int done = 0; done < total; done += kPerTxn) {
    check(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), db);
    if (layout == Layout::kSegment) {
      // Each message framed as it would have to be: lengths, topic, payload, fixed fields.
      body.clear();
      for (int i = 0; i < kPerTxn; ++i, ++id) {
        uint32_t lengths[2] = {static_cast<uint32_t>(topic.size()),
                               static_cast<uint32_t>(payload.size())};
        body.append(reinterpret_cast<const char*>(lengths), sizeof lengths);
        body += topic;
        body += payload;
        int64_t fixed[3] = {id, 0, 1'700'000'000'000};
        body.append(reinterpret_cast<const char*>(fixed), sizeof fixed);
      }
      sqlite3_bind_int64(seg, 1, id);
      sqlite3_bind_blob(seg, 2, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
      check(sqlite3_step(seg), db);
      sqlite3_reset(seg);
    } else {
      for (int i = 0; i < kPerTxn; i += kRows) {
        for (int r = 0; r < kRows; ++r, ++id) {
          int b = r * 8;
          sqlite3_bind_int64(m, b + 1, id);
          sqlite3_bind_text(m, b + 2, topic.data(), static_cast<int>(topic.size()), SQLITE_STATIC);
          sqlite3_bind_blob(m, b + 3, payload.data(), int(payload.size()), SQLITE_STATIC);
          sqlite3_bind_int(m, b + 4, 1);
          sqlite3_bind_int(m, b + 5, 0);
          sqlite3_bind_blob(m, b + 6, "", 0, SQLITE_STATIC);
          sqlite3_bind_int64(m, b + 7, 0);
          sqlite3_bind_int64(m, b + 8, 1'700'000'000'000);
          if (layout != Layout::kTwoRows) continue;
          sqlite3_bind_int64(q, b + 1, 1);
          sqlite3_bind_int64(q, b + 2, id);
          sqlite3_bind_int64(q, b + 3, id);
          sqlite3_bind_int(q, b + 4, 1);
          sqlite3_bind_int(q, b + 5, 0);
          sqlite3_bind_blob(q, b + 6, "", 0, SQLITE_STATIC);
          sqlite3_bind_int(q, b + 7, 0);
          sqlite3_bind_int(q, b + 8, 0);
        }
        check(sqlite3_step(m), db);
        sqlite3_reset(m);
        if (layout != Layout::kTwoRows) continue;
        check(sqlite3_step(q), db);
        sqlite3_reset(q);
      }
    }
    check(sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr), db);
  }
  Result r;
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = cpu_seconds() - cpu0;
  for (sqlite3_stmt* s : {m, q, seg}) sqlite3_finalize(s);
  sqlite3_close(db);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int messages = argc > 1 ? std::atoi(argv[1]) : 500000;
  std::string base = argc > 2 ? argv[2] : "/tmp";
  if (messages < 1000) messages = 1000;
  namespace fs = std::filesystem;
  fs::path dir = fs::path(base) / ("harbormq-store-floor-" + std::to_string(getpid()));
  fs::create_directories(dir / "store");
  fs::create_directories(dir / "sqlite");
  Result store = run_store(messages, (dir / "store").string());
  const std::string raw_dir = (dir / "sqlite").string();
  Result two = run_sqlite(messages, raw_dir, Layout::kTwoRows);
  Result one = run_sqlite(messages, raw_dir, Layout::kOneRow);
  Result segment = run_sqlite(messages, raw_dir, Layout::kSegment);
  fs::remove_all(dir);
  const int raw_messages = messages / kPerTxn * kPerTxn;
  report("store", messages, store);
  report("sqlite", raw_messages, two);
  report("1-row", raw_messages, one);
  report("segment", raw_messages, segment);
  return 0;
}
