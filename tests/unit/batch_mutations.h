// Test helper: the mutations of one type in a sealed batch, for tests that check what the
// scheduler asked the store to write.
#pragma once

#include <variant>
#include <vector>

#include "store/batch.h"

namespace ym {

// All mutations of type T in a batch, in batch order.
template <typename T>
std::vector<T> MutationsOf(const Batch& b) {
  std::vector<T> out;
  for (const Mutation& m : b.mutations) {
    if (const T* t = std::get_if<T>(&m)) out.push_back(*t);
  }
  return out;
}

}  // namespace ym
