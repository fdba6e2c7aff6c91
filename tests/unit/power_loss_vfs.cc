#include "power_loss_vfs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

namespace ym::testing {

namespace {

constexpr std::int64_t kSector = 512;

// One open file: SQLite's handle header, then the default VFS's own handle for the same file.
struct PlFile {
  sqlite3_file base;
  sqlite3_file* real;
  std::string* path;  // nullptr: a temporary file without a name, not modelled
};

sqlite3_vfs* g_root = nullptr;  // the default VFS we wrap
sqlite3_vfs g_vfs;
sqlite3_io_methods g_methods;

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<PlFile*>(f)->real; }
const std::string* PathOf(sqlite3_file* f) { return reinterpret_cast<PlFile*>(f)->path; }

void ApplyOp(std::string* content, bool truncate, std::int64_t offset, const std::string& data) {
  if (truncate) {
    content->resize(static_cast<std::size_t>(offset));
    return;
  }
  std::size_t end = static_cast<std::size_t>(offset) + data.size();
  if (content->size() < end) content->resize(end, '\0');
  std::memcpy(content->data() + offset, data.data(), data.size());
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

// The C callbacks SQLite calls; each forwards to the wrapped VFS and tells PowerLossVfs.
struct VfsGlue {
  static PowerLossVfs& P() { return PowerLossVfs::Instance(); }

  static int Close(sqlite3_file* f) {
    auto* pf = reinterpret_cast<PlFile*>(f);
    int rc = pf->real->pMethods != nullptr ? pf->real->pMethods->xClose(pf->real) : SQLITE_OK;
    std::free(pf->real);
    delete pf->path;
    pf->real = nullptr;
    pf->path = nullptr;
    return rc;
  }
  static int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
    return Real(f)->pMethods->xRead(Real(f), buf, n, off);
  }
  static int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
    if (PathOf(f) == nullptr) {
      if (!P().BeforeMutation()) return SQLITE_IOERR_WRITE;
    } else if (!P().RecordWrite(*PathOf(f), off, buf, n)) {
      return SQLITE_IOERR_WRITE;
    }
    return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    if (PathOf(f) == nullptr) {
      if (!P().BeforeMutation()) return SQLITE_IOERR_TRUNCATE;
    } else if (!P().RecordTruncate(*PathOf(f), size)) {
      return SQLITE_IOERR_TRUNCATE;
    }
    return Real(f)->pMethods->xTruncate(Real(f), size);
  }
  static int Sync(sqlite3_file* f, int flags) {
    if (!P().BeforeMutation()) return SQLITE_IOERR_FSYNC;
    int rc = Real(f)->pMethods->xSync(Real(f), flags);
    if (rc == SQLITE_OK && PathOf(f) != nullptr) P().RecordSync(*PathOf(f));
    return rc;
  }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return Real(f)->pMethods->xFileSize(Real(f), size);
  }
  static int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
  static int Unlock(sqlite3_file* f, int level) {
    return Real(f)->pMethods->xUnlock(Real(f), level);
  }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return Real(f)->pMethods->xFileControl(Real(f), op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
  }
  static int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
    return Real(f)->pMethods->xShmMap(Real(f), region, size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
  static int ShmUnmap(sqlite3_file* f, int delete_flag) {
    return Real(f)->pMethods->xShmUnmap(Real(f), delete_flag);
  }
  static int Fetch(sqlite3_file* f, sqlite3_int64 off, int amt, void** out) {
    return Real(f)->pMethods->xFetch(Real(f), off, amt, out);
  }
  static int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
    return Real(f)->pMethods->xUnfetch(Real(f), off, p);
  }

  static int Open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    auto* pf = reinterpret_cast<PlFile*>(f);
    pf->base.pMethods = nullptr;  // SQLite calls no xClose unless this is set
    pf->path = nullptr;
    pf->real =
        static_cast<sqlite3_file*>(std::calloc(1, static_cast<std::size_t>(g_root->szOsFile)));
    if (pf->real == nullptr) return SQLITE_NOMEM;
    int rc = g_root->xOpen(g_root, name, pf->real, flags, out_flags);
    if (rc != SQLITE_OK) {
      if (pf->real->pMethods != nullptr) pf->real->pMethods->xClose(pf->real);
      std::free(pf->real);
      pf->real = nullptr;
      return rc;
    }
    if (name != nullptr) {
      pf->path = new std::string(name);
      P().Track(*pf->path);
    }
    pf->base.pMethods = &g_methods;
    return SQLITE_OK;
  }
  static int Delete(sqlite3_vfs*, const char* name, int sync_dir) {
    if (!P().RecordDelete(name)) return SQLITE_IOERR_DELETE;
    return g_root->xDelete(g_root, name, sync_dir);
  }
  static int Access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return g_root->xAccess(g_root, name, flags, out);
  }
  static int FullPathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return g_root->xFullPathname(g_root, name, n, out);
  }
  static void* DlOpen(sqlite3_vfs*, const char* name) { return g_root->xDlOpen(g_root, name); }
  static void DlError(sqlite3_vfs*, int n, char* out) { g_root->xDlError(g_root, n, out); }
  static void (*DlSym(sqlite3_vfs*, void* h, const char* sym))(void) {
    return g_root->xDlSym(g_root, h, sym);
  }
  static void DlClose(sqlite3_vfs*, void* h) { g_root->xDlClose(g_root, h); }
  static int Randomness(sqlite3_vfs*, int n, char* out) {
    return g_root->xRandomness(g_root, n, out);
  }
  static int Sleep(sqlite3_vfs*, int us) { return g_root->xSleep(g_root, us); }
  static int CurrentTime(sqlite3_vfs*, double* out) { return g_root->xCurrentTime(g_root, out); }
  static int GetLastError(sqlite3_vfs*, int n, char* out) {
    return g_root->xGetLastError(g_root, n, out);
  }
  static int CurrentTimeInt64(sqlite3_vfs*, sqlite3_int64* out) {
    return g_root->xCurrentTimeInt64(g_root, out);
  }

  static void Register() {
    g_root = sqlite3_vfs_find(nullptr);
    if (g_root == nullptr || g_root->iVersion < 2) std::abort();
    g_methods = sqlite3_io_methods{};
    g_methods.iVersion = 3;
    g_methods.xClose = Close;
    g_methods.xRead = Read;
    g_methods.xWrite = Write;
    g_methods.xTruncate = Truncate;
    g_methods.xSync = Sync;
    g_methods.xFileSize = FileSize;
    g_methods.xLock = Lock;
    g_methods.xUnlock = Unlock;
    g_methods.xCheckReservedLock = CheckReservedLock;
    g_methods.xFileControl = FileControl;
    g_methods.xSectorSize = SectorSize;
    g_methods.xDeviceCharacteristics = DeviceCharacteristics;
    g_methods.xShmMap = ShmMap;
    g_methods.xShmLock = ShmLock;
    g_methods.xShmBarrier = ShmBarrier;
    g_methods.xShmUnmap = ShmUnmap;
    g_methods.xFetch = Fetch;
    g_methods.xUnfetch = Unfetch;

    g_vfs = sqlite3_vfs{};
    g_vfs.iVersion = 2;
    g_vfs.szOsFile = sizeof(PlFile);
    g_vfs.mxPathname = g_root->mxPathname;
    g_vfs.zName = PowerLossVfs::kName;
    g_vfs.xOpen = Open;
    g_vfs.xDelete = Delete;
    g_vfs.xAccess = Access;
    g_vfs.xFullPathname = FullPathname;
    g_vfs.xDlOpen = DlOpen;
    g_vfs.xDlError = DlError;
    g_vfs.xDlSym = DlSym;
    g_vfs.xDlClose = DlClose;
    g_vfs.xRandomness = Randomness;
    g_vfs.xSleep = Sleep;
    g_vfs.xCurrentTime = CurrentTime;
    g_vfs.xGetLastError = GetLastError;
    g_vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) std::abort();
  }
};

PowerLossVfs& PowerLossVfs::Instance() {
  static PowerLossVfs* instance = [] {
    auto* p = new PowerLossVfs();
    VfsGlue::Register();
    return p;
  }();
  return *instance;
}

void PowerLossVfs::Reset() {
  std::lock_guard<std::mutex> lock(mu_);
  files_.clear();
  ops_left_ = -1;
  crashed_ = false;
}

void PowerLossVfs::ArmCrashAfter(std::int64_t ops) {
  std::lock_guard<std::mutex> lock(mu_);
  ops_left_ = std::max<std::int64_t>(0, ops);
}

bool PowerLossVfs::crashed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return crashed_;
}

// Under mu_. Returns false when this operation is refused; `*record` tells whether it is the
// one that starts the crash (recorded, then refused).
namespace {
bool Step(std::int64_t* ops_left, bool* crashed, bool* cut_now) {
  *cut_now = false;
  if (*crashed) return false;
  if (*ops_left < 0) return true;
  if (*ops_left == 0) {
    *crashed = true;
    *cut_now = true;
    return false;
  }
  --*ops_left;
  return true;
}
}  // namespace

bool PowerLossVfs::BeforeMutation() {
  std::lock_guard<std::mutex> lock(mu_);
  bool cut = false;
  return Step(&ops_left_, &crashed_, &cut);
}

void PowerLossVfs::Track(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  if (files_.count(path) != 0) return;
  // A file that exists before we first see it is taken as durable.
  files_[path].durable = ReadWholeFile(path);
}

bool PowerLossVfs::RecordWrite(const std::string& path, std::int64_t offset, const void* data,
                               int n) {
  std::lock_guard<std::mutex> lock(mu_);
  bool cut = false;
  bool ok = Step(&ops_left_, &crashed_, &cut);
  if (ok || cut) {
    // The write that meets the cut may have reached the disk in part: keep it as pending.
    files_[path].pending.push_back(Op{
        false, offset, std::string(static_cast<const char*>(data), static_cast<std::size_t>(n))});
  }
  return ok;
}

bool PowerLossVfs::RecordTruncate(const std::string& path, std::int64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  bool cut = false;
  bool ok = Step(&ops_left_, &crashed_, &cut);
  if (ok) files_[path].pending.push_back(Op{true, size, {}});
  return ok;
}

bool PowerLossVfs::RecordSync(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  FileState& f = files_[path];
  for (const Op& op : f.pending) ApplyOp(&f.durable, op.truncate, op.offset, op.data);
  f.pending.clear();
  ++f.syncs;
  return true;
}

bool PowerLossVfs::RecordDelete(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  bool cut = false;
  if (!Step(&ops_left_, &crashed_, &cut)) return false;
  files_.erase(path);
  return true;
}

PowerLossVfs::LossReport PowerLossVfs::PowerLoss(std::mt19937_64& rng, double keep_probability) {
  std::lock_guard<std::mutex> lock(mu_);
  std::bernoulli_distribution keep(keep_probability);
  LossReport report;
  for (auto& [path, f] : files_) {
    ++report.files;
    std::string content = f.durable;
    for (const Op& op : f.pending) {
      ++report.pending_ops;
      if (op.truncate) {
        if (keep(rng)) ApplyOp(&content, true, op.offset, {});
        continue;
      }
      // Sector by sector: each one reached the platter or did not.
      std::int64_t pos = op.offset;
      const std::int64_t end = op.offset + static_cast<std::int64_t>(op.data.size());
      while (pos < end) {
        std::int64_t sector_end = std::min(end, (pos / kSector + 1) * kSector);
        if (keep(rng)) {
          ++report.sectors_kept;
          ApplyOp(&content, false, pos,
                  op.data.substr(static_cast<std::size_t>(pos - op.offset),
                                 static_cast<std::size_t>(sector_end - pos)));
        } else {
          ++report.sectors_dropped;
        }
        pos = sector_end;
      }
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) std::abort();
    std::size_t done = 0;
    while (done < content.size()) {
      ssize_t w =
          ::pwrite(fd, content.data() + done, content.size() - done, static_cast<off_t>(done));
      if (w <= 0) std::abort();
      done += static_cast<std::size_t>(w);
    }
    if (::ftruncate(fd, static_cast<off_t>(content.size())) != 0) std::abort();
    ::close(fd);
    f.durable = std::move(content);
    f.pending.clear();
  }
  ops_left_ = -1;
  crashed_ = false;
  return report;
}

std::int64_t PowerLossVfs::SyncCount(const std::string& suffix) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::int64_t n = 0;
  for (const auto& [path, f] : files_) {
    if (path.size() >= suffix.size() &&
        path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
      n += f.syncs;
    }
  }
  return n;
}

}  // namespace ym::testing
