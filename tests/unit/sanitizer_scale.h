// How many seeds a randomized model test runs: all of them in ordinary builds, a quarter under
// AddressSanitizer or ThreadSanitizer, which run the same steps 5 to 20 times slower. The
// release suite checks every seed; the sanitizer suite looks for memory and threading errors
// in the same code paths, which the first seeds already cover (docs/testing.md).
#pragma once

#include <cstdint>

namespace ym::test {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizedBuild = true;
#else
inline constexpr bool kSanitizedBuild = false;
#endif

// Seeds 1..ModelSeeds(n) replace seeds 1..n.
constexpr std::uint64_t ModelSeeds(std::uint64_t n) { return kSanitizedBuild ? (n + 3) / 4 : n; }

}  // namespace ym::test
