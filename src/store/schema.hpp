// The database schema and its forward migrations, versioned by PRAGMA user_version.
// Called once from Store::open on the opening thread, before the writer starts.
#pragma once

#include <string>

#include <tl/expected.hpp>

#include "store/sqlite_db.hpp"

namespace harbor::store {

// The schema version this build writes. Version 0 means "empty file".
inline constexpr int kSchemaVersion = 4;

// Creates the schema in an empty database or migrates an older one forward, in one
// transaction. A newer version (written by a later HarborMQ) is refused: the error names
// `path` and says what to do.
tl::expected<void, std::string> migrate_schema(Db& db, const std::string& path);

}  // namespace harbor::store
