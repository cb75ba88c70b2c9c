// The one place that knows OpenSSL's ownership and error conventions: RAII deleters for the
// objects the core creates, and a helper that drains the thread's error queue into a message.
#pragma once

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
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
