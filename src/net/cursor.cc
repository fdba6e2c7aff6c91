#include "net/cursor.h"

#include <array>
#include <cstdint>

namespace ym::net {
namespace {

constexpr unsigned char kVersion = 1;
constexpr std::size_t kCheckBytes = 4;
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::uint32_t Check(std::string_view scope, std::string_view position) {
  std::uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](std::string_view bytes) {
    for (unsigned char c : bytes) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix("ym-cursor");
  mix(std::string_view(reinterpret_cast<const char*>(&kVersion), 1));
  // Length-prefixing the scope keeps (scope, position) pairs from colliding by concatenation.
  mix(std::to_string(scope.size()));
  mix(":");
  mix(scope);
  mix(position);
  return static_cast<std::uint32_t>(h);
}

std::string Base64UrlEncode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    std::uint32_t v = (static_cast<unsigned char>(in[i]) << 16) |
                      (static_cast<unsigned char>(in[i + 1]) << 8) |
                      static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (in.size() - i == 1) {
    std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (in.size() - i == 2) {
    std::uint32_t v =
        (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: no padding, no other alphabet, and the unused low bits of the last character must be
// zero, so that every byte string has exactly one spelling.
bool Base64UrlDecode(std::string_view in, std::string* out) {
  if (in.size() % 4 == 1) return false;
  out->clear();
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int s = Sextet(c);
    if (s < 0) return false;
    acc = (acc << 6) | static_cast<std::uint32_t>(s);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return (acc & ((1u << bits) - 1)) == 0;
}

Status Malformed() {
  return InvalidRequest(
      "query parameter \"cursor\": not a cursor returned by this server for this listing");
}

}  // namespace

std::string EncodeCursor(std::string_view scope, std::string_view position) {
  std::string blob;
  blob.reserve(1 + position.size() + kCheckBytes);
  blob.push_back(static_cast<char>(kVersion));
  blob.append(position);
  std::uint32_t check = Check(scope, position);
  for (int shift = 24; shift >= 0; shift -= 8) blob.push_back(static_cast<char>(check >> shift));
  return Base64UrlEncode(blob);
}

Result<std::string> DecodeCursor(std::string_view scope, std::string_view token) {
  if (token.empty() || token.size() > kMaxCursorChars) return Malformed();
  std::string blob;
  if (!Base64UrlDecode(token, &blob) || blob.size() < 1 + kCheckBytes) return Malformed();
  if (static_cast<unsigned char>(blob[0]) != kVersion) return Malformed();
  std::string_view position = std::string_view(blob).substr(1, blob.size() - 1 - kCheckBytes);
  std::uint32_t check = 0;
  for (std::size_t i = blob.size() - kCheckBytes; i < blob.size(); ++i) {
    check = (check << 8) | static_cast<unsigned char>(blob[i]);
  }
  if (check != Check(scope, position)) return Malformed();
  return std::string(position);
}

std::string JobListScope(std::string_view listing, std::string_view filter_scope) {
  std::string scope(listing);
  scope += '\n';
  scope += filter_scope;
  return scope;
}

std::string EncodeJobCursor(std::string_view scope, JobId after_id) {
  std::array<char, 8> bytes;
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(after_id >> (56 - 8 * i));
  return EncodeCursor(scope, std::string_view(bytes.data(), bytes.size()));
}

namespace {
constexpr std::string_view kQueueListScope = "queues";
}  // namespace

std::string EncodeQueueCursor(std::string_view after_name) {
  return EncodeCursor(kQueueListScope, after_name);
}

Result<std::string> DecodeQueueCursor(std::string_view token) {
  Result<std::string> position = DecodeCursor(kQueueListScope, token);
  if (!position.ok()) return position.status();
  if (!IsValidName(*position)) return Malformed();
  return position;
}

Result<JobId> DecodeJobCursor(std::string_view scope, std::string_view token) {
  Result<std::string> position = DecodeCursor(scope, token);
  if (!position.ok()) return position.status();
  if (position->size() != 8) return Malformed();
  JobId id = 0;
  for (unsigned char c : *position) id = (id << 8) | c;
  if (id == 0) return Malformed();
  return id;
}

}  // namespace ym::net
