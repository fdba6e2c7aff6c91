// "Did you mean ...?" for mistyped command names: CLI11 (2.1) only says "A subcommand is
// required" or "argument not expected", so the CLI finds the closest valid name itself.
//
// Pure functions; no shared state.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ym::cli {

// The optimal-string-alignment distance between `a` and `b`, ignoring ASCII case: insertions,
// deletions, substitutions and swaps of two adjacent letters cost 1 each, so "lsit" is 1 from
// "list" and "queue" 1 from "queues".
std::size_t EditDistance(std::string_view a, std::string_view b);

// The candidate the user most likely meant by `word`, or nullopt when none is close enough to
// be a fair guess. Close enough: at most 1 edit for words of up to 4 letters, 2 for longer
// ones, or `word` (3 letters or more) is the start of the candidate ("enq" -> "enqueue").
// The fewest edits win; among equals, the earlier candidate.
std::optional<std::string> ClosestMatch(std::string_view word,
                                        const std::vector<std::string>& candidates);

}  // namespace ym::cli
