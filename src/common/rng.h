// Rng: a small, fast, seedable generator (xoshiro256**), injected into core so that a run is
// deterministic for a given seed. Not cryptographic: lease tokens only need to be unguessable by
// accident (a zombie worker holding an old token), not by an attacker who can read the API.
//
// Thread-safety: none; each owner (the core thread) has its own instance.
#pragma once

#include <cstdint>

namespace ym {

class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  std::uint64_t Next();
  // Uniform in [0, n); n == 0 returns 0.
  std::uint64_t Uniform(std::uint64_t n);
  // Uniform in [0, 1).
  double UniformDouble();

 private:
  std::uint64_t s_[4];
};

}  // namespace ym
