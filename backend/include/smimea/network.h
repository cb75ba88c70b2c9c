// IP networks as an operator writes them (192.0.2.0/24, 2001:db8::/32): API tokens' allowed
// sources and who may read the API's metrics.
#pragma once

#include <string>
#include <string_view>

#include "smimea/status.h"

namespace smimea {

// "192.0.2.0/24", "2001:db8::/32", or an address alone (a /32 or /128): the network as it
// will be matched ("192.0.2.0/24", "192.0.2.1/32"), or why it is not one.
Result<std::string> parse_network(std::string_view text);

// Whether the address peer (IPv4 or IPv6 text) is inside network (as parse_network returns
// it). An IPv4-mapped IPv6 peer (::ffff:192.0.2.1, a dual-stack listener's) counts as its IPv4
// address.
bool in_network(std::string_view peer, std::string_view network);

}  // namespace smimea
