// The provisioning service's scopes: what a Provisioner made with an API token may see and
// change (provision.h), and the calls whose answer depends on it.
#include <algorithm>
#include <unordered_set>

#include "smimea/owner_name.h"
#include "smimea/provision.h"

namespace smimea {
namespace {

// Two mailboxes as printed ("local@domain"): the domain ignoring ASCII letter case, the
// local-part too unless the zone compares local-parts exactly.
bool same_mailbox(std::string_view a, std::string_view b, bool case_sensitive) {
  const std::size_t at_a = a.rfind('@');
  const std::size_t at_b = b.rfind('@');
  if (at_a == std::string_view::npos || at_b == std::string_view::npos) return false;
  if (!iequals(a.substr(at_a), b.substr(at_b))) return false;
  return case_sensitive ? a.substr(0, at_a) == b.substr(0, at_b)
                        : iequals(a.substr(0, at_a), b.substr(0, at_b));
}

// Whether zone is one of a token's zones, or the _smimecert zone delegated below one of them:
// a customer's domain keeps its certificates in its token's reach when it moves them into a
// _smimecert.<domain> zone.
bool in_zones(const std::vector<std::string>& zones, std::string_view zone) {
  return std::any_of(zones.begin(), zones.end(), [&](const std::string& z) {
    return zone == z || (starts_with_smimecert(zone) &&
                         zone.substr(kSmimecertLabel.size() + 1) == std::string_view(z));
  });
}

}  // namespace

std::string Provisioner::who() const { return token_ ? "token " + token_->name : "caller"; }

bool Provisioner::in_scope(std::string_view zone, bool case_sensitive,
                           std::string_view mailbox) const {
  if (!token_ || token_->admin || in_zones(token_->zones, zone)) return true;
  return std::any_of(token_->addresses.begin(), token_->addresses.end(), [&](const std::string& a) {
    return same_mailbox(a, mailbox, case_sensitive);
  });
}

Status Provisioner::check_write(const Zone& zone, const MailAddress& mailbox, bool force,
                                bool preview) const {
  if (!token_) return Status();
  if (token_->read_only && !preview) return Status::permission_denied(who(), "is read-only");
  const std::string address = mailbox.to_string();
  if (!in_scope(zone.name, zone.case_sensitive, address)) {
    return Status::permission_denied(
        who(), "may not act for " + address + " (outside its zones and addresses)");
  }
  if (force && !token_->admin && !in_zones(token_->zones, zone.name)) {
    return Status::permission_denied(who(),
                                     "may not force a publication (admin and zone tokens only)");
  }
  return Status();
}

Status Provisioner::check_read_zone(const Zone& zone) const {
  if (!token_ || token_->admin || in_zones(token_->zones, zone.name)) return Status();
  return Status::permission_denied(who(), "may not see zone " + zone.name);
}

Status Provisioner::check_admin(std::string_view what) const {
  if (!token_ || (token_->admin && !token_->read_only)) return Status();
  if (token_->admin) return Status::permission_denied(who(), "is read-only");
  return Status::permission_denied(
      who(), std::string("may not ") + std::string(what) + " (admin tokens only)");
}

Result<std::vector<CertInfo>> Provisioner::list(std::string_view address, std::string_view zone) {
  std::string mailbox, zone_name;
  if (!address.empty()) {
    auto addr = parse_address(address);
    if (!addr.ok()) return addr.status();
    mailbox = addr->to_string();
  }
  if (!zone.empty()) {
    auto z = normalize_domain(zone, /*allow_underscore=*/true);
    if (!z.ok()) return z.status();
    zone_name = *z;
  }
  if (!token_ || token_->admin) return store_.list_certificates(mailbox, zone_name);
  std::vector<Zone> zones;
  SMIMEA_RETURN_IF_ERROR(store_.load_zones(&zones));
  auto find = [&](const std::string& name) -> const Zone* {
    auto z =
        std::find_if(zones.begin(), zones.end(), [&](const Zone& x) { return x.name == name; });
    return z == zones.end() ? nullptr : &*z;
  };
  // A mailbox or a zone outside the scope is refused, not answered with nothing.
  if (!mailbox.empty()) {
    const std::string domain = mailbox.substr(mailbox.rfind('@') + 1);
    const Zone* zone_of = find(std::string(kSmimecertLabel) + "." + domain);
    if (zone_of == nullptr) zone_of = find(domain);
    if (zone_of == nullptr || !in_scope(zone_of->name, zone_of->case_sensitive, mailbox)) {
      return Status::permission_denied(
          who(), "may not act for " + mailbox + " (outside its zones and addresses)");
    }
  } else if (!zone_name.empty() && !in_zones(token_->zones, zone_name)) {
    const bool own_mailbox_here =
        std::any_of(token_->addresses.begin(), token_->addresses.end(), [&](const std::string& a) {
          const std::string domain = a.substr(a.rfind('@') + 1);
          return zone_name == domain || zone_name == std::string(kSmimecertLabel) + "." + domain;
        });
    if (!own_mailbox_here) return Status::permission_denied(who(), "may not see zone " + zone_name);
  }
  std::vector<CertInfo> visible;
  std::unordered_set<std::int64_t> seen;  // a zone's and an address's lists may overlap
  auto add_visible = [&](std::string_view by_mailbox, std::string_view by_zone) -> Status {
    auto certs = store_.list_certificates(by_mailbox, by_zone);
    if (!certs.ok()) return certs.status();
    for (CertInfo& c : *certs) {
      const Zone* z = find(c.zone);
      if (in_scope(c.zone, z != nullptr && z->case_sensitive, c.address) &&
          seen.insert(c.id).second) {
        visible.push_back(std::move(c));
      }
    }
    return Status();
  };
  if (!mailbox.empty() || !zone_name.empty()) {
    SMIMEA_RETURN_IF_ERROR(add_visible(mailbox, zone_name));
  } else {  // everything in the scope, without reading the rest
    for (const std::string& z : token_->zones) {
      SMIMEA_RETURN_IF_ERROR(add_visible("", z));
      if (!starts_with_smimecert(z)) {
        SMIMEA_RETURN_IF_ERROR(add_visible("", std::string(kSmimecertLabel) + "." + z));
      }
    }
    for (const std::string& a : token_->addresses) SMIMEA_RETURN_IF_ERROR(add_visible(a, ""));
  }
  return visible;
}

Result<std::vector<std::string>> Provisioner::remove_certificate(
    const std::array<std::uint8_t, 32>& fingerprint, std::string_view address) {
  if (token_ && token_->read_only) return Status::permission_denied(who(), "is read-only");
  std::string mailbox;
  if (!address.empty()) {
    auto addr = parse_address(address);
    if (!addr.ok()) return addr.status();
    mailbox = addr->to_string();
  }
  std::vector<std::string> removed;
  const Status s = in_transaction([&]() -> Status {
    auto certs = store_.list_certificates(mailbox, "", fingerprint);
    if (!certs.ok()) return certs.status();
    if (certs->empty()) {
      return Status::not_found(mailbox.empty() ? "certificate" : mailbox,
                               "no certificate with that fingerprint");
    }
    std::vector<Zone> zones;
    SMIMEA_RETURN_IF_ERROR(store_.load_zones(&zones));
    for (const CertInfo& c : *certs) {
      auto z =
          std::find_if(zones.begin(), zones.end(), [&](const Zone& x) { return x.name == c.zone; });
      if (!in_scope(c.zone, z != zones.end() && z->case_sensitive, c.address)) continue;
      auto n = store_.remove_certificates(c.address, fingerprint);
      if (!n.ok()) return n.status();
      removed.push_back(c.address);
    }
    if (removed.empty()) {
      return Status::permission_denied(
          who(), "may not remove this certificate (outside its zones and addresses)");
    }
    return Status();
  });
  if (!s.ok()) return s;
  return removed;
}

Result<std::vector<Zone>> Provisioner::zones() {
  std::vector<Zone> zones;
  SMIMEA_RETURN_IF_ERROR(store_.load_zones(&zones));
  if (!token_ || token_->admin) return zones;
  std::vector<Zone> visible;
  for (Zone& z : zones) {
    const bool mine =
        in_zones(token_->zones, z.name) ||
        std::any_of(token_->addresses.begin(), token_->addresses.end(), [&](const std::string& a) {
          const std::string domain = a.substr(a.rfind('@') + 1);
          return z.name == domain || z.name == std::string(kSmimecertLabel) + "." + domain;
        });
    if (mine) visible.push_back(std::move(z));
  }
  return visible;
}

}  // namespace smimea
