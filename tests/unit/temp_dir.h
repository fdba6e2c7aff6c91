// TempDir: a fresh directory for one test, removed with everything in it when the test ends.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace ym {

class TempDir {
 public:
  // `prefix` names the directory (prefix_XXXXXX). With `in_memory`, the directory is on
  // /dev/shm when there is one: for tests that reopen a store many times and do not test what
  // reaches the disk (fsyncs there cost nothing).
  explicit TempDir(const std::string& prefix = "ym_test", bool in_memory = false) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::path base = in_memory && fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm")
                                                                        : fs::temp_directory_path();
    std::string tmpl = (base / (prefix + "_XXXXXX")).string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) std::abort();
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

}  // namespace ym
