#include "store/sqlite_db.hpp"

#include <mutex>
#include <utility>

namespace harbor::store {

bool is_storage_error(int rc) {
  switch (rc & 0xFF) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PROTOCOL:
    case SQLITE_INTERRUPT:
    case SQLITE_ABORT:
      return true;
    default:
      return false;
  }
}

// ---- Statement ----

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::bind(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }

void Statement::bind_text(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.data(), value.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

namespace {
// A zero-length blob must still be a blob, not NULL: pass a non-null pointer.
const char kEmptyBlob = 0;
}  // namespace

void Statement::bind_blob(int index, std::string_view value) {
  sqlite3_bind_blob64(stmt_, index, value.empty() ? &kEmptyBlob : value.data(), value.size(),
                      SQLITE_TRANSIENT);
}

void Statement::bind_text_ref(int index, std::string_view value) {
  sqlite3_bind_text64(stmt_, index, value.empty() ? &kEmptyBlob : value.data(), value.size(),
                      SQLITE_STATIC, SQLITE_UTF8);
}

void Statement::bind_blob_ref(int index, std::string_view value) {
  sqlite3_bind_blob64(stmt_, index, value.empty() ? &kEmptyBlob : value.data(), value.size(),
                      SQLITE_STATIC);
}

void Statement::bind_null(int index) { sqlite3_bind_null(stmt_, index); }

int Statement::step() { return sqlite3_step(stmt_); }

int Statement::run() {
  int rc;
  do {
    rc = sqlite3_step(stmt_);
  } while (rc == SQLITE_ROW);
  reset();
  return rc;
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::column_int(int index) const { return sqlite3_column_int64(stmt_, index); }

std::string Statement::column_text(int index) const {
  const void* data = sqlite3_column_blob(stmt_, index);
  int size = sqlite3_column_bytes(stmt_, index);
  if (data == nullptr || size <= 0) return {};
  return std::string(static_cast<const char*>(data), static_cast<size_t>(size));
}

bool Statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

// ---- Db ----

Db::Db(Db&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Db::~Db() { close(); }

void Db::close() {
  if (db_ != nullptr) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

namespace {

// Before SQLite's first use: no memory statistics, so sqlite3_malloc takes no global mutex
// (the writer, the checkpointer and each shard's queue reader allocate at once). Too late
// once SQLite is initialized (a test registered a VFS first): then it stays as it was.
void configure_sqlite_once() {
  static std::once_flag once;
  std::call_once(once, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
}

}  // namespace

tl::expected<Db, std::string> Db::open(const std::string& path, const std::string& vfs) {
  configure_sqlite_once();
  Db db;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string text = db.db_ != nullptr ? sqlite3_errmsg(db.db_) : sqlite3_errstr(rc);
    return tl::unexpected(path + ": cannot open database: " + text);
  }
  sqlite3_extended_result_codes(db.db_, 1);
  return db;
}

tl::expected<Db, std::string> Db::open_read_only(const std::string& path, const std::string& vfs) {
  configure_sqlite_once();
  Db db;
  int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string text = db.db_ != nullptr ? sqlite3_errmsg(db.db_) : sqlite3_errstr(rc);
    return tl::unexpected(path + ": cannot open database for reading: " + text);
  }
  sqlite3_extended_result_codes(db.db_, 1);
  sqlite3_busy_timeout(db.db_, 5000);
  return db;
}

int Db::exec(const std::string& sql) {
  return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

tl::expected<int64_t, int> Db::query_int(const std::string& sql) {
  auto stmt = prepare(sql);
  if (!stmt) return tl::unexpected(stmt.error());
  int rc = stmt->step();
  if (rc == SQLITE_ROW) {
    int64_t value = stmt->column_int(0);
    stmt->reset();
    return value;
  }
  if (rc == SQLITE_DONE) return 0;
  return tl::unexpected(rc);
}

tl::expected<std::string, int> Db::query_text(const std::string& sql) {
  auto stmt = prepare(sql);
  if (!stmt) return tl::unexpected(stmt.error());
  int rc = stmt->step();
  if (rc == SQLITE_ROW) {
    std::string value = stmt->column_text(0);
    stmt->reset();
    return value;
  }
  if (rc == SQLITE_DONE) return std::string();
  return tl::unexpected(rc);
}

tl::expected<Statement, int> Db::prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return tl::unexpected(rc);
  }
  return Statement(db_, stmt);
}

std::string Db::error_message() const {
  return db_ != nullptr ? std::string(sqlite3_errmsg(db_)) : std::string("no connection");
}

}  // namespace harbor::store
