#include "net/cursor.h"

#include <array>
#include <cstdint>

#include "common/base64url.h"

namespace ym::net {
namespace {

constexpr unsigned char kVersion = 1;
constexpr std::size_t kCheckBytes = 4;

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
