// PowerLossVfs: a fault-injecting SQLite VFS for tests, in the spirit of LevelDB's
// FaultInjectionTestEnv and SQLite's own crash-test VFS.
//
// It wraps SQLite's default ("unix") VFS and passes every call through, but records what reached
// stable storage: for each file it keeps the content as of the last xSync (the "durable image")
// and the writes and truncates issued since (the "pending" operations). A process crash (kill -9)
// keeps the OS page cache, so every pending write survives it; a power loss does not. PowerLoss()
// simulates one: each file is rewritten to its durable image plus a random subset of its pending
// writes, chosen per 512-byte sector, so a write that was not synced may vanish, survive whole,
// or tear. The test then reopens the database through the same VFS.
//
// Crash mode: from the moment a crash is armed and reached (ArmCrashAfter) every write, truncate,
// sync and delete fails with SQLITE_IOERR, as if the device had gone away mid-operation; the
// operation that reaches the limit is still recorded as pending, since a write can be cut half-way.
// Connections are then closed (their close cannot write anything) before PowerLoss() is called.
//
// Simplifications, all in SQLite's favour of what a real disk does, documented in
// docs/testing.md: creating or deleting a file is durable at once (SQLite fsyncs the directory
// after both anyway); the -shm file is not modelled (SQLite rebuilds the wal-index when the first
// connection opens the database).
//
// Threads: any connection on any thread may use the VFS; one mutex guards the recorded state.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace ym::testing {

class PowerLossVfs {
 public:
  // The process-wide instance, registered (not as the default) under kName on first use.
  static PowerLossVfs& Instance();
  static constexpr const char* kName = "ym_powerloss";

  // Forgets every file and disarms the crash. Call between tests, with no connection open.
  void Reset();

  // The next `ops` write/truncate/sync/delete operations succeed; the one after that starts the
  // crash (ops = 0: the very next operation). Until Reset or PowerLoss, every later one fails.
  void ArmCrashAfter(std::int64_t ops);
  bool crashed() const;

  struct LossReport {
    std::int64_t files = 0;
    std::int64_t pending_ops = 0;      // writes and truncates not synced at the cut
    std::int64_t sectors_kept = 0;     // of those writes, sectors that reached the disk
    std::int64_t sectors_dropped = 0;  // ... and sectors that did not
  };
  // Simulates the power cut: rewrites each file from its durable image plus each pending
  // sector with probability `keep_probability`, each pending truncate likewise. Leaves crash
  // mode. No connection may be open.
  LossReport PowerLoss(std::mt19937_64& rng, double keep_probability);

  // How many xSync calls reached a file whose path ends with `suffix` (e.g. "-wal").
  std::int64_t SyncCount(const std::string& suffix) const;

 private:
  struct Op {
    bool truncate = false;
    std::int64_t offset = 0;  // write: where; truncate: the new size
    std::string data;         // write only
  };
  struct FileState {
    std::string durable;      // content as of the last sync
    std::vector<Op> pending;  // since the last sync, in order
    std::int64_t syncs = 0;
  };

  PowerLossVfs() = default;
  friend struct VfsGlue;

  // Called by the io methods; return false when the operation must fail (crash mode).
  bool BeforeMutation();
  void Track(const std::string& path);
  bool RecordWrite(const std::string& path, std::int64_t offset, const void* data, int n);
  bool RecordTruncate(const std::string& path, std::int64_t size);
  bool RecordSync(const std::string& path);
  bool RecordDelete(const std::string& path);

  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_)
  std::int64_t ops_left_ = -1;              // GUARDED_BY(mu_); -1: not armed
  bool crashed_ = false;                    // GUARDED_BY(mu_)
};

}  // namespace ym::testing
