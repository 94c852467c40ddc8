// A wrapper SQLite VFS for fault injection in tests: delegates everything to the default
// VFS, except that writes (xWrite, xTruncate) fail with SQLITE_FULL while armed.
#pragma once

namespace harbor::store::test {

inline constexpr const char* kFaultVfsName = "harbor_fault";

void register_fault_vfs();          // idempotent
void set_fail_writes(bool fail);    // any thread
int failed_writes();                // writes refused so far

}  // namespace harbor::store::test
