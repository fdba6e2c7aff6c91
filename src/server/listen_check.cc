#include "server/listen_check.h"

#include <netdb.h>
#include <sys/socket.h>

#include <array>

#include "net/web_guard.h"

namespace ym {

bool ListenIsLoopbackOnly(const std::string& host) {
  if (net::IsIpLiteral(host)) return net::IsLoopbackName(host);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) return false;
  bool all_loopback = true;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    std::array<char, NI_MAXHOST> text{};
    if (::getnameinfo(a->ai_addr, a->ai_addrlen, text.data(), text.size(), nullptr, 0,
                      NI_NUMERICHOST) != 0 ||
        !net::IsLoopbackName(text.data())) {
      all_loopback = false;
      break;
    }
  }
  ::freeaddrinfo(found);
  return all_loopback;
}

std::string NonLoopbackRefusal(const std::string& host) {
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "refusing to listen on " + shown +
         ": it is not a loopback address, and without authentication (auth = none) anyone who "
         "can reach the port could enqueue, read every payload, cancel and reconfigure. Turn on "
         "API tokens with --auth tokens, listen on 127.0.0.1 or [::1], or give --insecure "
         "(YM_INSECURE=on, or insecure = true in the config file) to accept that risk on a "
         "network you trust (docs/security.md)";
}

}  // namespace ym
