// Thin RAII wrappers over the SQLite C API: a connection (Db) and a prepared statement
// (Statement). No policy here; the store decides what an error means.
//
// Threading: a Db and its Statements belong to one thread at a time (the connections are
// opened with SQLITE_OPEN_NOMUTEX). The store opens on the main thread, restores there, then
// hands the connection to the writer thread; nothing else touches it afterwards.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <sqlite3.h>
#include <tl/expected.hpp>

namespace harbor::store {

// True for errors that say "the storage could not take the write right now" (full disk,
// I/O error, lock contention, out of memory): the batch is kept and retried. Everything
// else (constraint, mismatch, misuse) is a property of one operation.
bool is_storage_error(int rc);

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Parameters are 1-based, as in SQLite.
  void bind(int index, int64_t value);
  void bind_text(int index, std::string_view value);
  void bind_blob(int index, std::string_view value);
  // Without a copy: the bytes must stay valid until the statement is reset.
  void bind_text_ref(int index, std::string_view value);
  void bind_blob_ref(int index, std::string_view value);
  void bind_null(int index);

  // One sqlite3_step: SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  // Steps until SQLITE_DONE, then resets; returns SQLITE_DONE or the error code.
  int run();
  // Resets and clears bindings so the statement is ready for the next use.
  void reset();

  int64_t column_int(int index) const;
  std::string column_text(int index) const;  // TEXT or BLOB as bytes
  bool column_is_null(int index) const;

  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(Db&& other) noexcept;
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Opens (and creates) `path`; `vfs` empty = the default VFS. Errors name the file.
  static tl::expected<Db, std::string> open(const std::string& path, const std::string& vfs);
  // A read-only connection to an existing database (a reader beside the writer, WAL mode).
  static tl::expected<Db, std::string> open_read_only(const std::string& path, const std::string& vfs);

  // Runs one or more statements without results; returns the SQLite result code.
  int exec(const std::string& sql);
  // Runs a statement returning one integer (e.g. PRAGMA user_version); error code on failure.
  tl::expected<int64_t, int> query_int(const std::string& sql);
  tl::expected<std::string, int> query_text(const std::string& sql);
  // Prepares with SQLITE_PREPARE_PERSISTENT (statements kept for the connection's life).
  tl::expected<Statement, int> prepare(const std::string& sql);

  std::string error_message() const;  // last error text on this connection
  int changes() const { return sqlite3_changes(db_); }
  bool in_transaction() const { return db_ != nullptr && sqlite3_get_autocommit(db_) == 0; }
  sqlite3* handle() const { return db_; }
  void close();

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace harbor::store
