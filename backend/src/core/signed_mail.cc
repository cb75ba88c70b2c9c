// Certificates from a signed mail (RFC 8551): the signature verified over the message as it
// came, the signer told apart from the chain sent with it, and the mail's From read so that
// publishing can check that the sender, the signer and the address are one mailbox.
#include <openssl/cms.h>
#include <openssl/objects.h>

#include <algorithm>
#include <cctype>

#include "cert_parse.h"
#include "openssl_util.h"
#include "smimea/cert.h"

namespace smimea {
namespace {

using detail::BioPtr;
using detail::drain_openssl_errors;
using CmsPtr = detail::OsslPtr<CMS_ContentInfo, CMS_ContentInfo_free>;

// The start of every refusal of a mail that did not verify: the same words whatever OpenSSL
// found wrong (a changed body, swapped certificates, a signature over something else).
constexpr const char* kDoesNotVerify =
    "the signed mail's signature does not verify (the mail was changed after it was signed, "
    "or the signer's certificate is not the one that signed it)";

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// The unfolded value of every field called name in the header section (RFC 5322 section
// 2.2.3: a line starting with white space continues the field before it).
std::vector<std::string> header_fields(std::string_view mail, std::string_view name) {
  std::vector<std::string> out;
  bool continuing = false;  // the last field read was one of ours
  std::size_t pos = 0;
  while (pos < mail.size()) {
    const std::size_t eol = mail.find('\n', pos);
    std::string_view line =
        mail.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    pos = eol == std::string_view::npos ? mail.size() : eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // the body starts
    if (is_wsp(line.front())) {
      if (continuing) out.back().append(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon == std::string_view::npos ? 0 : colon);
    while (!field.empty() && is_wsp(field.back())) field.remove_suffix(1);
    continuing = colon != std::string_view::npos && iequals(field, name);
    if (continuing) out.emplace_back(line.substr(colon + 1));
  }
  return out;
}

// The addr-specs of a mailbox-list or address-list (RFC 5322 section 3.4, with RFC 6854's
// groups): elements split at ',' outside quotes, comments and angle brackets; of each, what is
// inside <...> if there is one, else the element; comments and white space outside quotes
// dropped; a group's name (up to ':') and its closing ';' dropped.
void parse_address_list(std::string_view value, std::vector<std::string>* out) {
  std::string bare;   // the element outside <...>
  std::string angle;  // inside <...>
  bool has_angle = false;
  bool in_angle = false;
  bool in_quotes = false;
  int comment_depth = 0;
  auto finish = [&] {
    std::string addr = has_angle ? angle : bare;
    // obs-route (RFC 5322 section 4.4): "<@relay1,@relay2:alice@example.com>".
    if (!addr.empty() && addr.front() == '@' && addr.find(':') != std::string::npos) {
      addr.erase(0, addr.find(':') + 1);
    }
    if (!addr.empty()) out->push_back(std::move(addr));
    bare.clear();
    angle.clear();
    has_angle = false;
    in_angle = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    std::string& to = in_angle ? angle : bare;
    if (comment_depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++comment_depth;
      } else if (c == ')') {
        --comment_depth;
      }
      continue;
    }
    if (in_quotes) {
      to.push_back(c);
      if (c == '\\' && i + 1 < value.size()) {
        to.push_back(value[++i]);
      } else if (c == '"') {
        in_quotes = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_quotes = true;
        to.push_back(c);
        break;
      case '(':
        comment_depth = 1;
        break;
      case '<':
        in_angle = true;
        has_angle = true;
        angle.clear();
        break;
      case '>':
        in_angle = false;
        break;
      case ':':
        if (in_angle) {
          to.push_back(c);
        } else {  // a group's name ends
          bare.clear();
          angle.clear();
          has_angle = false;
        }
        break;
      case ',':
      case ';':
        if (in_angle) {
          to.push_back(c);
        } else {
          finish();
        }
        break;
      default:
        if (!is_wsp(c) && c != '\r' && c != '\n') to.push_back(c);
    }
  }
  finish();
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The signer's address for a refusal: what its certificate names, as written there.
std::string named_by(const Certificate& c) {
  return c.emails.empty() ? "a certificate that names no address"
                          : "a certificate for " + join(c.emails);
}

bool same_mailbox(const MailAddress& a, const MailAddress& b, bool case_sensitive) {
  return a.domain == b.domain &&
         (case_sensitive ? a.local_part == b.local_part : iequals(a.local_part, b.local_part));
}

// Whether input starts with a header field's name and a colon.
bool starts_with_header_field(std::string_view input) {
  const std::size_t colon = input.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 76) return false;
  for (char c : input.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> mail_from_addresses(std::string_view mail) {
  std::vector<std::string> out;
  for (const std::string& value : header_fields(mail, "From")) parse_address_list(value, &out);
  return out;
}

const Certificate* mail_signer(const std::vector<Certificate>& certs) {
  for (const Certificate& c : certs) {
    if (!c.signed_mail_from.empty()) return &c;
  }
  return nullptr;
}

std::string signed_mail_refusal(const Certificate& signer, const MailAddress& addr,
                                bool case_sensitive) {
  if (!certificate_names(signer, addr, case_sensitive)) {
    return "the mail is signed by " + named_by(signer) + ", not " + addr.to_string();
  }
  auto from = parse_address(signer.signed_mail_from);
  if (!from.ok() || !same_mailbox(*from, addr, case_sensitive)) {
    return "the mail's From is " + signer.signed_mail_from + ", not " + addr.to_string();
  }
  return {};
}

namespace detail {

bool looks_like_mail(std::string_view input) {
  return starts_with_header_field(input) && !header_fields(input, "From").empty();
}

bool looks_like_smime_mail(std::string_view input) {
  if (!starts_with_header_field(input)) return false;
  std::string lower(input.substr(0, std::min<std::size_t>(input.size(), 65536)));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower.find("pkcs7") != std::string::npos;
}

Status parse_signed_mail(std::string_view input, std::string_view source,
                         std::vector<Certificate>* out) {
  BioPtr bio(BIO_new_mem_buf(input.data(), static_cast<int>(input.size())));
  if (!bio) return Status::invalid_argument(source, "out of memory");
  // The CMS reader, not the PKCS#7 one: it also reads what `openssl cms -sign` and mail
  // clients make with a subjectKeyIdentifier signer (CMS version 3), and encrypted mails.
  BIO* content = nullptr;  // a detached signature's signed part
  CmsPtr cms(SMIME_read_CMS(bio.get(), &content));
  BioPtr signed_part(content);
  if (!cms) return Status::invalid_argument(source, "not a signed mail (S/MIME) with certificates");
  const int type = OBJ_obj2nid(CMS_get0_type(cms.get()));
  if (type == NID_pkcs7_enveloped || type == NID_id_smime_ct_authEnvelopedData ||
      type == NID_pkcs7_encrypted) {
    return Status::invalid_argument(
        source, "an encrypted mail carries no certificate to publish; send a signed mail");
  }
  if (type != NID_pkcs7_signed) {
    return Status::invalid_argument(source, "not a signed mail (S/MIME) with certificates");
  }
  const int signatures = sk_CMS_SignerInfo_num(CMS_get0_SignerInfos(cms.get()));
  if (signatures <= 0) {
    return Status::invalid_argument(
        source, "the mail carries certificates but no signature; send a signed mail");
  }
  if (signatures > 1) {
    return Status::invalid_argument(source, "the mail has " + std::to_string(signatures) +
                                                " signatures; send one signed by your "
                                                "certificate alone");
  }
  // The signature must be good over the message as it came: a tampered mail, or one whose
  // certificates were swapped, is refused. Who issued the signer is not checked here (DANE
  // publishes certificates whatever their CA; usage 0/2 need the chain, not trust in it).
  if (CMS_verify(cms.get(), nullptr, nullptr, signed_part.get(), nullptr,
                 CMS_NO_SIGNER_CERT_VERIFY) != 1) {
    const unsigned long err = ERR_peek_error();  // NOLINT(google-runtime-int): OpenSSL's type
    drain_openssl_errors();
    if (ERR_GET_LIB(err) == ERR_LIB_CMS &&
        ERR_GET_REASON(err) == CMS_R_SIGNER_CERTIFICATE_NOT_FOUND) {
      return Status::invalid_argument(
          source, "the signed mail does not carry the certificate that signed it");
    }
    return Status::invalid_argument(source, kDoesNotVerify);
  }
  // The signer is the certificate the signature names (issuer and serial, or key
  // identifier), wherever it is among the mail's certificates.
  STACK_OF(X509)* signers = CMS_get0_signers(cms.get());
  X509* signer = sk_X509_num(signers) == 1 ? sk_X509_value(signers, 0) : nullptr;
  sk_X509_free(signers);  // the stack only: its certificates are the CMS structure's
  if (signer == nullptr) return Status::invalid_argument(source, kDoesNotVerify);

  const std::vector<std::string> from = mail_from_addresses(input);
  if (from.empty()) {
    return Status::invalid_argument(
        source, "the mail has no From address: the sender's address must be in it");
  }
  if (from.size() > 1) {
    return Status::invalid_argument(source, "the mail's From names " + std::to_string(from.size()) +
                                                " addresses (" + join(from) +
                                                "); it must name the sender alone");
  }
  if (auto addr = parse_address(from.front()); !addr.ok()) {
    return Status::invalid_argument(
        source, "the mail's From is not an address: " + addr.status().message());
  }
  std::vector<Certificate> certs;
  auto signer_cert = certificate_from_x509(signer, source);
  if (!signer_cert.ok()) return signer_cert.status();
  certs.push_back(std::move(signer_cert).value());
  certs.back().signed_mail_from = from.front();
  STACK_OF(X509)* all = CMS_get1_certs(cms.get());
  Status status;
  for (int i = 0; status.ok() && i < sk_X509_num(all); ++i) {
    X509* x = sk_X509_value(all, i);
    if (X509_cmp(x, signer) == 0) continue;
    auto cert = certificate_from_x509(x, source);
    if (cert.ok()) {
      certs.push_back(std::move(cert).value());
    } else {
      status = cert.status();
    }
  }
  sk_X509_pop_free(all, X509_free);
  drain_openssl_errors();
  if (!status.ok()) return status;
  for (Certificate& c : certs) out->push_back(std::move(c));
  return Status();
}

}  // namespace detail
}  // namespace smimea
