// Is a listen address reachable only from this machine? (docs/security.md, "Safe defaults")
//
// Without authentication (auth = none) a server that other machines can reach lets them do
// anything: ServerMain refuses such an address at start unless --insecure is given or API
// tokens are on (auth = tokens).
#pragma once

#include <string>

namespace ym {

// True when every address `host` stands for is a loopback address: an IP literal in 127.0.0.0/8
// or ::1, or a name that resolves (getaddrinfo) only to such addresses. False for the wildcard
// addresses (0.0.0.0, ::), any other address, and a name that does not resolve.
bool ListenIsLoopbackOnly(const std::string& host);

// The start-up error for a non-loopback `host` without --insecure: why, and what to do.
std::string NonLoopbackRefusal(const std::string& host);

}  // namespace ym
