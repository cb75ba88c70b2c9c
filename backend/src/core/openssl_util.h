// The one place that knows OpenSSL's ownership and error conventions: RAII deleters for the
// objects the core creates, and a helper that drains the thread's error queue into a message.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

namespace smimea::detail {

template <class T, void (*Free)(T*)>
struct OpensslDeleter {
  void operator()(T* p) const { Free(p); }
};
template <class T, void (*Free)(T*)>
using OsslPtr = std::unique_ptr<T, OpensslDeleter<T, Free>>;

using BioPtr = OsslPtr<BIO, BIO_free_all>;
using X509Ptr = OsslPtr<X509, X509_free>;
using Pkcs7Ptr = OsslPtr<PKCS7, PKCS7_free>;
using EvpPkeyPtr = OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using X509ReqPtr = OsslPtr<X509_REQ, X509_REQ_free>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, void (*)(GENERAL_NAMES*)>;

// SHA-2 with the algorithm fetched once. The one-shot SHA256() and SHA512() fetch it from the
// provider on every call, which costs several times the hashing of a certificate.
enum class Sha2 { k256, k512 };
inline void sha2(Sha2 which, const void* data, std::size_t size, unsigned char* out) {
  struct MdDeleter {
    void operator()(EVP_MD* md) const { EVP_MD_free(md); }
  };
  static const std::unique_ptr<EVP_MD, MdDeleter> sha256(
      EVP_MD_fetch(nullptr, "SHA2-256", nullptr));
  static const std::unique_ptr<EVP_MD, MdDeleter> sha512(
      EVP_MD_fetch(nullptr, "SHA2-512", nullptr));
  const EVP_MD* md = which == Sha2::k256 ? sha256.get() : sha512.get();
  if (md == nullptr || EVP_Digest(data, size, out, nullptr, md, nullptr) != 1) {
    // Not reached with the default provider; the one-shot functions report the same way.
    if (which == Sha2::k256) {
      SHA256(static_cast<const unsigned char*>(data), size, out);
    } else {
      SHA512(static_cast<const unsigned char*>(data), size, out);
    }
  }
}

// Clears the thread's OpenSSL error queue and returns its first entry as text ("" if empty).
inline std::string drain_openssl_errors() {
  std::string first;
  unsigned long code = 0;  // NOLINT(google-runtime-int): OpenSSL's type
  while ((code = ERR_get_error()) != 0) {
    if (first.empty()) {
      char buf[256];
      ERR_error_string_n(code, buf, sizeof buf);
      first = buf;
    }
  }
  return first;
}

}  // namespace smimea::detail
