// IP networks (network.h).
#include "smimea/network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace smimea {

Result<std::string> parse_network(std::string_view text) {
  const std::string s(text);
  const std::size_t slash = s.find('/');
  const std::string addr = s.substr(0, slash);
  unsigned char buf[16];
  int family = AF_INET;
  if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
    family = AF_INET6;
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) {
      return Status::invalid_argument(text, "not an IPv4 or IPv6 network (e.g. 192.0.2.0/24)");
    }
  }
  const int max = family == AF_INET ? 32 : 128;
  if (slash == std::string::npos) return s + "/" + std::to_string(max);
  const std::string len = s.substr(slash + 1);
  if (len.empty() || len.size() > 3 || !std::all_of(len.begin(), len.end(), ::isdigit) ||
      std::stoi(len) > max) {
    return Status::invalid_argument(text, "prefix length must be 0.." + std::to_string(max));
  }
  return s;
}

bool in_network(std::string_view peer, std::string_view network) {
  const std::size_t slash = network.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string net(network.substr(0, slash));
  const int bits = std::atoi(std::string(network.substr(slash + 1)).c_str());
  unsigned char want[16], have[16];
  std::string client(peer);
  if (client.rfind("::ffff:", 0) == 0 && client.find('.') != std::string::npos) {
    client = client.substr(7);
  }
  const int family = net.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(family, net.c_str(), want) != 1 || inet_pton(family, client.c_str(), have) != 1) {
    return false;
  }
  for (int i = 0; i < bits; ++i) {
    const int mask = 0x80 >> (i % 8);
    if ((want[i / 8] & mask) != (have[i / 8] & mask)) return false;
  }
  return true;
}

}  // namespace smimea
