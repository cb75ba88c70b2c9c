// Certificates in: PEM, DER and PKCS#7 input parsed into plain Certificate values.
#include "cert_parse.h"

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/decoder.h>
#include <openssl/ec.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <ctime>
#include <optional>

#include "openssl_util.h"
#include "smimea/cert.h"

namespace smimea {
namespace {

using detail::BioPtr;
using detail::drain_openssl_errors;
using detail::EvpPkeyPtr;
using detail::Pkcs7Ptr;
using detail::X509Ptr;
using detail::X509ReqPtr;

// id-on-SmtpUTF8Mailbox, RFC 8398 section 3.
constexpr const char* kSmtpUtf8MailboxOid = "1.3.6.1.5.5.7.8.9";

// OpenSSL 3.0 decodes the public key of every certificate it parses by setting up its
// provider decoders from scratch, which costs ten times the rest of the parse (80% of
// `cert import` under callgrind). Certificates are therefore parsed in a library context
// without providers, where that decoding fails quietly and costs nothing; the key is checked
// once, by KeyDecoder, with a decoder context that is set up once per thread.
class LeanContext {
 public:
  LeanContext() : ctx_(OSSL_LIB_CTX_new()) {
    // With no provider loaded explicitly, the first fetch would load the default one.
    if (ctx_ != nullptr) null_ = OSSL_PROVIDER_load(ctx_, "null");
  }
  ~LeanContext() {
    OSSL_PROVIDER_unload(null_);
    OSSL_LIB_CTX_free(ctx_);
  }
  LeanContext(const LeanContext&) = delete;
  LeanContext& operator=(const LeanContext&) = delete;
  OSSL_LIB_CTX* get() const { return null_ != nullptr ? ctx_ : nullptr; }

 private:
  OSSL_LIB_CTX* ctx_;
  OSSL_PROVIDER* null_ = nullptr;
};

OSSL_LIB_CTX* lean_context() {
  static const LeanContext ctx;
  return ctx.get();
}

// Decodes public keys with the default providers, reusing one decoder context and, for EC
// keys on named curves (the usual S/MIME key), one group per curve: the decoders build the
// curve's group again for every key, a fifth of an import's time.
class KeyDecoder {
 public:
  KeyDecoder() : bn_ctx_(BN_CTX_new()) {}
  ~KeyDecoder() {
    EVP_PKEY_free(key_);
    OSSL_DECODER_CTX_free(ctx_);
    BN_CTX_free(bn_ctx_);
    for (const auto& [nid, group] : groups_) EC_GROUP_free(group);
  }
  KeyDecoder(const KeyDecoder&) = delete;
  KeyDecoder& operator=(const KeyDecoder&) = delete;

  // True if the key (spki is its DER form) is one public key that OpenSSL can use.
  bool decodes(const X509_PUBKEY* pub, const Bytes& spki) {
    if (const EC_GROUP* group = named_curve(pub)) {
      // What decoding an EC key checks: the point is on the curve.
      const unsigned char* point = nullptr;
      int point_len = 0;
      X509_PUBKEY_get0_param(nullptr, &point, &point_len, nullptr, pub);
      EC_POINT* p = EC_POINT_new(group);
      const bool ok =
          p != nullptr && point_len > 0 &&
          EC_POINT_oct2point(group, p, point, static_cast<std::size_t>(point_len), bn_ctx_) == 1;
      EC_POINT_free(p);
      return ok;
    }
    // Setting the decoders up costs as much as a hundred certificates: only when needed.
    if (ctx_ == nullptr) {
      ctx_ = OSSL_DECODER_CTX_new_for_pkey(&key_, "DER", "SubjectPublicKeyInfo", nullptr,
                                           EVP_PKEY_PUBLIC_KEY, nullptr, nullptr);
      if (ctx_ == nullptr) return false;
    }
    const unsigned char* p = spki.data();
    std::size_t left = spki.size();
    const bool ok = OSSL_DECODER_from_data(ctx_, &p, &left) == 1 && key_ != nullptr && left == 0;
    EVP_PKEY_free(key_);
    key_ = nullptr;
    return ok;
  }

 private:
  // The group of an id-ecPublicKey key with a named curve OpenSSL knows; nullptr otherwise.
  const EC_GROUP* named_curve(const X509_PUBKEY* pub) {
    ASN1_OBJECT* alg = nullptr;
    X509_ALGOR* algor = nullptr;
    if (X509_PUBKEY_get0_param(&alg, nullptr, nullptr, &algor, pub) != 1 ||
        OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey) {
      return nullptr;
    }
    int type = 0;
    const void* value = nullptr;
    X509_ALGOR_get0(nullptr, &type, &value, algor);
    if (type != V_ASN1_OBJECT) return nullptr;
    const int nid = OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(value));
    if (nid == NID_undef) return nullptr;
    for (const auto& [known, group] : groups_) {
      if (known == nid) return group;
    }
    EC_GROUP* group = EC_GROUP_new_by_curve_name(nid);
    if (group != nullptr) groups_.emplace_back(nid, group);
    return group;
  }

  EVP_PKEY* key_ = nullptr;  // where ctx_ puts each key
  OSSL_DECODER_CTX* ctx_ = nullptr;
  BN_CTX* bn_ctx_;
  std::vector<std::pair<int, EC_GROUP*>> groups_;
};

bool public_key_decodes(const X509_PUBKEY* pub, const Bytes& spki) {
  thread_local KeyDecoder decoder;
  return decoder.decodes(pub, spki);
}

// d2i that must consume the whole buffer; libctx nullptr is the default context.
X509Ptr der_to_x509(const unsigned char* data, std::size_t size, OSSL_LIB_CTX* libctx) {
  const unsigned char* p = data;
  X509Ptr x(reinterpret_cast<X509*>(ASN1_item_d2i_ex(nullptr, &p,
                                                     static_cast<long>(size),  // NOLINT
                                                     ASN1_ITEM_rptr(X509), libctx, nullptr)));
  if (x && p != data + size) x.reset();
  return x;
}

// Parses a certificate without decoding its key (see LeanContext).
X509Ptr der_to_x509(const unsigned char* data, std::size_t size) {
  return der_to_x509(data, size, lean_context());
}

// X509_check_ca() needs the decoded key in one case (a v1 self-signed root), so it runs on a
// full parse, unless basicConstraints settles it: present with cA FALSE is never a CA.
bool check_ca(X509* x, const Bytes& der) {
  int critical = 0;
  auto* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(x, NID_basic_constraints, &critical, nullptr));
  const bool end_entity = bc != nullptr && bc->ca == 0;
  BASIC_CONSTRAINTS_free(bc);
  if (end_entity) return false;
  X509Ptr full = der_to_x509(der.data(), der.size(), nullptr);
  return full && X509_check_ca(full.get()) != 0;
}

std::string name_to_string(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(google-runtime-int)
  return std::string(data, static_cast<std::size_t>(len));
}

// name_to_string() for issuers, remembering the last one: a bulk import usually holds many
// certificates from one CA, and printing a name costs a tenth of a certificate's parse.
std::string issuer_to_string(const X509_NAME* name) {
  struct Last {
    ~Last() { X509_NAME_free(name); }
    X509_NAME* name = nullptr;
    std::string text;
  };
  thread_local Last last;
  if (last.name != nullptr && X509_NAME_cmp(last.name, name) == 0) return last.text;
  X509_NAME* copy = X509_NAME_dup(name);
  if (copy == nullptr) return name_to_string(name);
  X509_NAME_free(last.name);
  last.name = copy;
  last.text = name_to_string(name);
  return last.text;
}

bool asn1_time_to_epoch(const ASN1_TIME* t, std::int64_t* out) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return false;
  *out = static_cast<std::int64_t>(timegm(&tm));
  return true;
}

std::string serial_to_hex(const ASN1_INTEGER* serial) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  if (bn == nullptr) return {};
  char* hex = BN_bn2hex(bn);
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string asn1_string_to_std(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<std::size_t>(ASN1_STRING_length(s)));
}

void collect_emails(X509* x, std::vector<std::string>* emails) {
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    ASN1_OBJECT* utf8_mailbox = OBJ_txt2obj(kSmtpUtf8MailboxOid, 1);
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type == GEN_EMAIL) {
        emails->push_back(asn1_string_to_std(gn->d.rfc822Name));
      } else if (gn->type == GEN_OTHERNAME && utf8_mailbox != nullptr &&
                 OBJ_cmp(gn->d.otherName->type_id, utf8_mailbox) == 0 &&
                 gn->d.otherName->value->type == V_ASN1_UTF8STRING) {
        emails->push_back(asn1_string_to_std(gn->d.otherName->value->value.utf8string));
      }
    }
    ASN1_OBJECT_free(utf8_mailbox);
    GENERAL_NAMES_free(sans);
  }
  const X509_NAME* subject = X509_get_subject_name(x);
  int pos = -1;
  while ((pos = X509_NAME_get_index_by_NID(subject, NID_pkcs9_emailAddress, pos)) >= 0) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, pos);
    emails->push_back(asn1_string_to_std(X509_NAME_ENTRY_get_data(entry)));
  }
}

// DER of obj in one pass, into a buffer OpenSSL allocates (asking for the size first would
// encode twice).
template <class T>
bool encode(const T* obj, int (*i2d)(const T*, unsigned char**), Bytes* out) {
  unsigned char* buf = nullptr;
  const int len = i2d(obj, &buf);
  if (len <= 0 || buf == nullptr) return false;
  out->assign(buf, buf + len);
  OPENSSL_free(buf);
  return true;
}

Result<Certificate> extract(X509* x, std::string_view source) {
  Certificate cert;
  if (!encode<X509>(x, i2d_X509, &cert.der)) {
    return Status::invalid_argument(source, "cannot encode certificate");
  }
  if (!encode<X509_PUBKEY>(X509_get_X509_PUBKEY(x), i2d_X509_PUBKEY, &cert.spki)) {
    return Status::invalid_argument(source, "certificate has no public key");
  }
  // A key that does not decode (a corrupt EC point, say) cannot be encrypted to, and its
  // SPKI would not validate as selector 1 data: refuse the certificate.
  if (!public_key_decodes(X509_get_X509_PUBKEY(x), cert.spki)) {
    drain_openssl_errors();
    return Status::invalid_argument(source, "certificate's public key cannot be decoded");
  }
  detail::sha2(detail::Sha2::k256, cert.der.data(), cert.der.size(), cert.fingerprint.data());
  cert.subject = name_to_string(X509_get_subject_name(x));
  cert.issuer = X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(x)) == 0
                    ? cert.subject
                    : issuer_to_string(X509_get_issuer_name(x));
  cert.serial = serial_to_hex(X509_get0_serialNumber(x));
  if (!asn1_time_to_epoch(X509_get0_notBefore(x), &cert.not_before) ||
      !asn1_time_to_epoch(X509_get0_notAfter(x), &cert.not_after)) {
    drain_openssl_errors();
    return Status::invalid_argument(source, "certificate has an unreadable validity period");
  }
  cert.is_ca = check_ca(x, cert.der);
  if ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) != 0) {
    cert.for_email = (X509_get_extended_key_usage(x) & (XKU_SMIME | XKU_ANYEKU)) != 0;
  }
  collect_emails(x, &cert.emails);
  drain_openssl_errors();
  return cert;
}

Status append_pkcs7(PKCS7* p7, std::string_view source, std::vector<Certificate>* out) {
  STACK_OF(X509)* certs = nullptr;
  const int type = OBJ_obj2nid(p7->type);
  if (type == NID_pkcs7_signed && p7->d.sign != nullptr) {
    certs = p7->d.sign->cert;
  } else if (type == NID_pkcs7_signedAndEnveloped && p7->d.signed_and_enveloped != nullptr) {
    certs = p7->d.signed_and_enveloped->cert;
  }
  if (certs == nullptr || sk_X509_num(certs) == 0) {
    return Status::invalid_argument(source, "PKCS#7 bundle holds no certificate");
  }
  for (int i = 0; i < sk_X509_num(certs); ++i) {
    auto cert = extract(sk_X509_value(certs, i), source);
    if (!cert.ok()) return cert.status();
    out->push_back(std::move(cert).value());
  }
  return Status();
}

Status parse_der(const unsigned char* data, std::size_t size, std::string_view source,
                 std::vector<Certificate>* out) {
  if (X509Ptr x = der_to_x509(data, size)) {
    auto cert = extract(x.get(), source);
    if (!cert.ok()) return cert.status();
    out->push_back(std::move(cert).value());
    return Status();
  }
  const unsigned char* p = data;
  Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, static_cast<long>(size)));  // NOLINT(google-runtime-int)
  if (p7 && p == data + size) return append_pkcs7(p7.get(), source, out);
  p = data;
  EvpPkeyPtr key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(size)));  // NOLINT
  if (key) {
    drain_openssl_errors();
    return Status::invalid_argument(source, "input is a private key, not a certificate: refused");
  }
  p = data;
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(size)));  // NOLINT
  drain_openssl_errors();
  if (req) {
    return Status::invalid_argument(source,
                                    "input is a certificate request (CSR), not a certificate");
  }
  return Status::invalid_argument(source, "not a certificate (expected PEM, DER or PKCS#7)");
}

bool is_base64_char(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// The usual PEM input, CERTIFICATE blocks without headers, decoded without PEM_read_bio(),
// which reads a line at a time through a BIO (a sixth of an import). Returns false, having
// added nothing, for anything else (other blocks, headers, stray characters, a certificate
// that does not parse), which then goes the general way and gets its message there.
bool parse_plain_pem(std::string_view input, std::string_view source, std::vector<Certificate>* out,
                     Status* status) {
  constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<Certificate> certs;
  std::string base64;
  Bytes der;
  std::size_t pos = 0;
  for (;;) {
    const std::size_t begin = input.find("-----BEGIN ", pos);
    if (begin == std::string_view::npos) break;
    if (input.compare(begin, kBegin.size(), kBegin) != 0) return false;
    if (begin != 0 && input[begin - 1] != '\n') return false;
    const std::size_t body = begin + kBegin.size();
    const std::size_t end = input.find(kEnd, body);
    if (end == std::string_view::npos || input[end - 1] != '\n') return false;
    base64.clear();
    std::size_t padding = 0;
    for (std::size_t i = body; i < end; ++i) {
      const auto c = static_cast<unsigned char>(input[i]);
      if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
      if (c == '=') {
        ++padding;
      } else if (padding > 0 || !is_base64_char(c)) {
        return false;
      }
      base64.push_back(static_cast<char>(c));
    }
    if (base64.empty() || base64.size() % 4 != 0 || padding > 2) return false;
    der.resize(base64.size() / 4 * 3);
    const int n = EVP_DecodeBlock(der.data(), reinterpret_cast<const unsigned char*>(base64.data()),
                                  static_cast<int>(base64.size()));
    if (n < 0 || static_cast<std::size_t>(n) < padding) return false;
    der.resize(static_cast<std::size_t>(n) - padding);
    X509Ptr x = der_to_x509(der.data(), der.size());
    if (!x) return false;
    auto cert = extract(x.get(), source);
    if (!cert.ok()) {
      *status = cert.status();
      return true;
    }
    certs.push_back(std::move(cert).value());
    pos = end + kEnd.size();
  }
  if (certs.empty()) return false;
  for (Certificate& c : certs) out->push_back(std::move(c));
  return true;
}

Status parse_pem(std::string_view input, std::string_view source, std::vector<Certificate>* out) {
  // Anywhere: a key block indented or after other text is not a PEM block that the readers
  // below see, but it is still a secret that must not go into the store.
  if (input.find("PRIVATE KEY-----") != std::string_view::npos) {
    return Status::invalid_argument(source, "input contains a private key: refused");
  }
  Status plain;
  if (parse_plain_pem(input, source, out, &plain)) return plain;
  drain_openssl_errors();
  BioPtr bio(BIO_new_mem_buf(input.data(), static_cast<int>(input.size())));
  if (!bio) return Status::invalid_argument(source, "out of memory");
  int blocks = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;  // NOLINT(google-runtime-int): OpenSSL's type
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      const unsigned long err = ERR_peek_last_error();  // NOLINT(google-runtime-int)
      drain_openssl_errors();
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE && blocks > 0) break;
      return Status::invalid_argument(
          source, blocks == 0 ? "malformed PEM input" : "malformed PEM block after the first");
    }
    ++blocks;
    const std::string block_name = name;
    Status status;
    if (block_name.find("PRIVATE KEY") != std::string::npos) {
      status = Status::invalid_argument(source, "input contains a private key: refused");
    } else if (block_name.find("CERTIFICATE REQUEST") != std::string::npos) {
      status = Status::invalid_argument(source,
                                        "input is a certificate request (CSR), not a certificate");
    } else if (block_name == "CERTIFICATE" || block_name == "X509 CERTIFICATE") {
      X509Ptr x = der_to_x509(data, static_cast<std::size_t>(len));
      if (!x) {
        status = Status::invalid_argument(
            source, "PEM block " + std::to_string(blocks) + " is not a valid certificate");
      } else {
        auto cert = extract(x.get(), source);
        if (cert.ok()) {
          out->push_back(std::move(cert).value());
        } else {
          status = cert.status();
        }
      }
    } else if (block_name == "PKCS7" || block_name == "CMS") {
      const unsigned char* p = data;
      Pkcs7Ptr p7(d2i_PKCS7(nullptr, &p, len));
      status = p7 ? append_pkcs7(p7.get(), source, out)
                  : Status::invalid_argument(source, "malformed PKCS#7 block");
    } else {
      status = Status::invalid_argument(source, "unsupported PEM block '" + block_name + "'");
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    drain_openssl_errors();
    if (!status.ok()) return status;
  }
  return Status();
}

// Base64 of a DER certificate or PKCS#7 without PEM armour (a JSON field, a web form): the
// DER, or nothing if input is not only base64 and white space.
std::optional<std::string> decode_bare_base64(std::string_view input) {
  std::string compact;
  for (char c : input) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
      return std::nullopt;
    }
    compact.push_back(c);
  }
  if (compact.size() < 4 || compact.size() % 4 != 0) return std::nullopt;
  // Padding only at the end, at most two: OpenSSL would read an '=' elsewhere as zero bits.
  const std::size_t pad = compact.find('=');
  if (pad != std::string::npos &&
      (pad + 2 < compact.size() || compact.find_first_not_of('=', pad) != std::string::npos)) {
    return std::nullopt;
  }
  std::string der(compact.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(der.data()),
                                reinterpret_cast<const unsigned char*>(compact.data()),
                                static_cast<int>(compact.size()));
  if (n < 0) return std::nullopt;
  const std::size_t padding = pad == std::string::npos ? 0 : compact.size() - pad;
  der.resize(static_cast<std::size_t>(n) - padding);
  return der;
}

}  // namespace

Result<std::vector<Certificate>> parse_certificates(std::string_view input, std::string_view source,
                                                    std::size_t max_bytes) {
  if (input.empty()) return Status::invalid_argument(source, "empty input");
  if (input.size() > max_bytes) {
    return Status::invalid_argument(
        source, "input larger than " + std::to_string(max_bytes) + " bytes: refused");
  }
  std::vector<Certificate> certs;
  Status status;
  std::optional<std::string> der;
  if (input.find("PRIVATE KEY-----") != std::string_view::npos) {
    status = Status::invalid_argument(source, "input contains a private key: refused");
  } else if (detail::looks_like_smime_mail(input)) {
    status = detail::parse_signed_mail(input, source, &certs);
  } else if (input.find("-----BEGIN ") != std::string_view::npos) {
    status = parse_pem(input, source, &certs);
  } else if ((der = decode_bare_base64(input))) {
    status =
        parse_der(reinterpret_cast<const unsigned char*>(der->data()), der->size(), source, &certs);
  } else if (detail::looks_like_mail(input)) {
    status = Status::invalid_argument(
        source, "a mail without an S/MIME signature carries no certificate; send a signed mail");
  } else {
    status = parse_der(reinterpret_cast<const unsigned char*>(input.data()), input.size(), source,
                       &certs);
  }
  drain_openssl_errors();
  if (!status.ok()) return status;
  if (certs.empty()) return Status::invalid_argument(source, "no certificate found");
  return certs;
}

namespace detail {
Result<Certificate> certificate_from_x509(X509* x, std::string_view source) {
  return extract(x, source);
}
}  // namespace detail

Result<Certificate> parse_der_certificate(const Bytes& der) {
  X509Ptr x = der_to_x509(der.data(), der.size());
  drain_openssl_errors();
  if (!x) return Status::invalid_argument("certificate", "not a DER certificate");
  return extract(x.get(), "certificate");
}

}  // namespace smimea
