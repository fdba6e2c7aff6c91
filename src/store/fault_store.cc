#include "store/fault_store.h"

namespace ym {

bool FaultStore::TakeFault() {
  if (fail_all_.load(std::memory_order_relaxed)) return true;
  // A CAS loop rather than fetch_sub: two racing commits must not drive the count below zero.
  std::uint64_t n = fail_next_.load(std::memory_order_relaxed);
  while (n > 0) {
    if (fail_next_.compare_exchange_weak(n, n - 1, std::memory_order_relaxed)) return true;
  }
  return false;
}

Status FaultStore::Commit(const Batch& batch) {
  attempted_.fetch_add(1, std::memory_order_relaxed);
  if (TakeFault()) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    return IoError("injected fault: commit of batch " + std::to_string(batch.seq) + " failed");
  }
  Status st = inner_.Commit(batch);
  (st.ok() ? succeeded_ : failed_).fetch_add(1, std::memory_order_relaxed);
  return st;
}

}  // namespace ym
