#include "core/namespace_wipe.h"

namespace ym {

Status CheckWipeRequest(const WipeRequest& request, const std::string& confirm) {
  if (confirm != request.ns) {
    return Validation("field \"confirm\": must be the namespace's name (\"" + request.ns +
                      "\"), to confirm that its data is to be erased");
  }
  if (request.limit < 1 || request.limit > kMaxWipeLimit) {
    return Validation("field \"limit\": must be 1.." + std::to_string(kMaxWipeLimit));
  }
  if (request.after_id != 0 && request.up_to_id == 0) {
    return Validation("field \"after_id\": given without the \"up_to_id\" it belongs to");
  }
  if (request.after_id > request.up_to_id) {
    return Validation("field \"after_id\": must not exceed \"up_to_id\"");
  }
  return Status::Ok();
}

}  // namespace ym
