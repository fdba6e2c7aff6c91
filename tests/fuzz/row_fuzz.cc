// libFuzzer target for the store's row decoding (src/store/sqlite_store.cc, ReadJob and the
// JSON columns tags and errors): what the server makes of a row that a bad disk, an operator's
// sqlite3 shell or a future version left behind. The decoder is file-local, so the file is
// compiled into this target whole.
//
// Input layout: up to kJobColumnCount fields separated by 0x01, one per column in kJobColumns
// order; the first byte of a field picks its SQLite type (integer, real, text, blob, null), the
// rest is its value. Properties: decoding returns a record or kCorruption, never crashes; a decoded
// record is in range (id > 0, a known state, cancel flag 0/1); and it round-trips: committed
// through a real SqliteStore and read back, it is equal to itself (the encoder and decoder agree).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "store/sqlite_store.cc"  // NOLINT: the decoder under test is file-local

namespace {

sqlite3* RawDb() {
  static sqlite3* db = [] {
    sqlite3* d = nullptr;
    if (sqlite3_open(":memory:", &d) != SQLITE_OK) std::abort();
    // The current schema, built by the store's own migrations.
    if (!ym::Migrate(d).ok()) std::abort();
    sqlite3_exec(d, "PRAGMA ignore_check_constraints = ON", nullptr, nullptr, nullptr);
    return d;
  }();
  return db;
}

ym::Store& RoundTripStore() {
  static std::unique_ptr<ym::Store> store = [] {
    std::string dir =
        (std::filesystem::temp_directory_path() / ("ym_row_fuzz_" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    ym::SqliteOptions o;
    o.path = dir + "/ym.db";
    o.durability = ym::Durability::kRelaxed;
    o.reader_connections = 1;
    auto r = ym::OpenSqliteStore(o);
    if (!r.ok()) std::abort();
    return std::move(*r);
  }();
  return *store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  while (fields.size() < ym::kJobColumnCount) {
    std::size_t sep = in.find('\x01');
    fields.push_back(in.substr(0, sep));
    if (sep == std::string_view::npos) break;
    in.remove_prefix(sep + 1);
  }
  sqlite3* db = RawDb();
  sqlite3_exec(db, "DELETE FROM jobs", nullptr, nullptr, nullptr);
  std::string sql = std::string("INSERT INTO jobs (") + ym::kJobColumns + ") VALUES (?";
  for (int i = 1; i < ym::kJobColumnCount; ++i) sql += ",?";
  sql += ")";
  sqlite3_stmt* ins = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &ins, nullptr) != SQLITE_OK) std::abort();
  for (int col = 0; col < ym::kJobColumnCount; ++col) {
    std::string_view f = static_cast<std::size_t>(col) < fields.size() ? fields[col] : "";
    char type = f.empty() ? 't' : f[0];
    std::string_view v = f.empty() ? f : f.substr(1);
    std::string text(v);
    switch (static_cast<unsigned char>(type) % 5) {
      case 0:
        sqlite3_bind_int64(ins, col + 1, std::strtoll(text.c_str(), nullptr, 10));
        break;
      case 1:
        sqlite3_bind_double(ins, col + 1, std::strtod(text.c_str(), nullptr));
        break;
      case 2:
        sqlite3_bind_text(ins, col + 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        break;
      case 3:
        sqlite3_bind_blob(ins, col + 1, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        break;
      default:
        sqlite3_bind_null(ins, col + 1);
        break;
    }
  }
  int rc = sqlite3_step(ins);
  sqlite3_finalize(ins);
  if (rc != SQLITE_DONE) return 0;  // e.g. a NOT NULL column bound to NULL, a duplicate id

  std::string select = std::string("SELECT ") + ym::kJobColumns + " FROM jobs";
  sqlite3_stmt* sel = nullptr;
  if (sqlite3_prepare_v2(db, select.c_str(), -1, &sel, nullptr) != SQLITE_OK) std::abort();
  while (sqlite3_step(sel) == SQLITE_ROW) {
    ym::JobRecord job;
    ym::Status st = ym::ReadJob(sel, &job);
    if (!st.ok()) {
      YM_FUZZ_CHECK(st.code() == ym::Code::kCorruption);
      YM_FUZZ_CHECK(!st.message().empty());
      continue;
    }
    YM_FUZZ_CHECK(job.id > 0);
    YM_FUZZ_CHECK(static_cast<int>(job.state) <= 5);
    // Round trip through the real encoder: insert the decoded record and read it back.
    ym::Store& store = RoundTripStore();
    ym::Batch b;
    b.mutations.push_back(ym::DeleteJob{job.id});
    b.mutations.push_back(ym::InsertJob{job});
    ym::Status commit = store.Commit(b);
    YM_FUZZ_CHECK(commit.ok());
    auto back = store.GetJob(job.id);
    YM_FUZZ_CHECK(back.ok() && back->has_value());
    YM_FUZZ_CHECK(**back == job);
    ym::Batch del;
    del.mutations.push_back(ym::DeleteJob{job.id});
    YM_FUZZ_CHECK(store.Commit(del).ok());
  }
  sqlite3_finalize(sel);
  return 0;
}
