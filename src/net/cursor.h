// Cursors: the opaque `next_cursor` tokens of paginated lists (docs/api.md, "Cursors").
//
// A cursor says where the next page of one listing starts. Clients must only echo the cursor the
// server gave them; the server validates every cursor it is given instead of trusting it, so a
// made-up, truncated, edited or foreign cursor (one from another listing, e.g. another queue or
// state filter, or from a future format) is 400 `invalid_request`, never a silent restart at the
// beginning or a wrap-around (`cursor=18446744073709551615` used to list from the start).
//
// Format (version 1): base64url without padding of
//   [0x01 version][position bytes][4-byte check]
// where check = the low 32 bits of FNV-1a 64 over "ym-cursor" + version + scope + position.
// The scope names the listing the cursor belongs to (CursorScope below); it is not stored in the
// token, so a cursor presented to another listing fails its check. The check detects corruption
// and mix-ups; it is not a secret and not an authorisation (anyone may list).
//
// Pure functions, no state; callable from any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "core/job.h"

namespace ym::net {

// Longest cursor accepted: far above what a job cursor needs (18 characters); a longer one is
// refused before it is decoded.
inline constexpr std::size_t kMaxCursorChars = 512;

// `position` is opaque to this layer (a job cursor holds an 8-byte id).
std::string EncodeCursor(std::string_view scope, std::string_view position);
// kInvalidRequest naming the `cursor` parameter when the token is malformed, from another
// version or does not belong to `scope`.
Result<std::string> DecodeCursor(std::string_view scope, std::string_view token);

// Job listings (`GET /v1/jobs`, `GET /v1/dead`): the scope is the listing and every one of its
// filters (`filter_scope` is JobFilter::Scope()); the position is the last id of the previous
// page.
std::string JobListScope(std::string_view listing, std::string_view filter_scope);
std::string EncodeJobCursor(std::string_view scope, JobId after_id);
Result<JobId> DecodeJobCursor(std::string_view scope, std::string_view token);

// The queue listing (`GET /v1/queues`): the position is the last queue name of the previous
// page; a decoded name must be a valid queue name.
std::string EncodeQueueCursor(std::string_view after_name);
Result<std::string> DecodeQueueCursor(std::string_view token);

}  // namespace ym::net
