#include "fault_vfs.hpp"

#include <atomic>
#include <cstring>
#include <mutex>

#include <sqlite3.h>

namespace harbor::store::test {
namespace {

std::atomic<bool> g_fail{false};
std::atomic<int> g_failed{0};
sqlite3_vfs g_vfs;
sqlite3_vfs* g_real = nullptr;

struct FaultFile {
  sqlite3_file base;
  sqlite3_file* real;
};

sqlite3_file* real_of(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }
const sqlite3_io_methods* methods_of(sqlite3_file* f) { return real_of(f)->pMethods; }

int f_close(sqlite3_file* f) { return methods_of(f)->xClose(real_of(f)); }
int f_read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return methods_of(f)->xRead(real_of(f), buf, n, off);
}
int f_write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (g_fail.load()) {
    g_failed.fetch_add(1);
    return SQLITE_FULL;
  }
  return methods_of(f)->xWrite(real_of(f), buf, n, off);
}
int f_truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (g_fail.load()) {
    g_failed.fetch_add(1);
    return SQLITE_FULL;
  }
  return methods_of(f)->xTruncate(real_of(f), size);
}
int f_sync(sqlite3_file* f, int flags) { return methods_of(f)->xSync(real_of(f), flags); }
int f_file_size(sqlite3_file* f, sqlite3_int64* size) {
  return methods_of(f)->xFileSize(real_of(f), size);
}
int f_lock(sqlite3_file* f, int level) { return methods_of(f)->xLock(real_of(f), level); }
int f_unlock(sqlite3_file* f, int level) { return methods_of(f)->xUnlock(real_of(f), level); }
int f_check_reserved(sqlite3_file* f, int* out) {
  return methods_of(f)->xCheckReservedLock(real_of(f), out);
}
int f_file_control(sqlite3_file* f, int op, void* arg) {
  return methods_of(f)->xFileControl(real_of(f), op, arg);
}
int f_sector_size(sqlite3_file* f) { return methods_of(f)->xSectorSize(real_of(f)); }
int f_device(sqlite3_file* f) { return methods_of(f)->xDeviceCharacteristics(real_of(f)); }
int f_shm_map(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return methods_of(f)->xShmMap(real_of(f), region, size, extend, out);
}
int f_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
  return methods_of(f)->xShmLock(real_of(f), offset, n, flags);
}
void f_shm_barrier(sqlite3_file* f) { methods_of(f)->xShmBarrier(real_of(f)); }
int f_shm_unmap(sqlite3_file* f, int del) { return methods_of(f)->xShmUnmap(real_of(f), del); }
int f_fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return methods_of(f)->xFetch(real_of(f), off, n, out);
}
int f_unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return methods_of(f)->xUnfetch(real_of(f), off, p);
}

const sqlite3_io_methods kMethods = {
    3,           f_close,     f_read,       f_write,    f_truncate,       f_sync,
    f_file_size, f_lock,      f_unlock,     f_check_reserved, f_file_control, f_sector_size,
    f_device,    f_shm_map,   f_shm_lock,   f_shm_barrier,    f_shm_unmap,    f_fetch,
    f_unfetch,
};

int f_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  auto* f = reinterpret_cast<FaultFile*>(file);
  f->base.pMethods = nullptr;
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (f->real->pMethods != nullptr) f->base.pMethods = &kMethods;
  return rc;
}

}  // namespace

void register_fault_vfs() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_real = sqlite3_vfs_find(nullptr);
    g_vfs = *g_real;
    g_vfs.zName = kFaultVfsName;
    g_vfs.szOsFile = static_cast<int>(sizeof(FaultFile)) + g_real->szOsFile;
    g_vfs.xOpen = f_open;
    g_vfs.pNext = nullptr;
    sqlite3_vfs_register(&g_vfs, 0);
  });
}

void set_fail_writes(bool fail) { g_fail.store(fail); }
int failed_writes() { return g_failed.load(); }

}  // namespace harbor::store::test
