// Base64url (RFC 4648 section 5) without padding, as the API's opaque strings use it: list
// cursors (net/cursor.h) and API token secrets (net/auth_token.h).
//
// Decoding is strict: no padding, no character outside the url-safe alphabet, and the unused
// low bits of the last character must be zero, so that every byte string has exactly one
// spelling. Pure functions, callable from any thread.
#pragma once

#include <string>
#include <string_view>

namespace ym {

std::string Base64UrlEncode(std::string_view in);
// False (and `out` unspecified) when `in` is not the one spelling of some byte string.
bool Base64UrlDecode(std::string_view in, std::string* out);
// The 6-bit value of one alphabet character, or -1 for any other character.
int Base64UrlValue(char c);

}  // namespace ym
