// gen_certs: writes N self-signed S/MIME certificates, one PEM file each, for the import
// benchmark (tests/bench/import_bench.sh). All share one EC P-256 key, so the cost is one
// ECDSA signature per certificate; the work is split over the machine's cores.
//
//   gen_certs OUTDIR N [ZONES]
//
// Certificate i names user<i>@d<i % ZONES>.bench.example (SAN rfc822Name), is valid from a
// day ago for a year and is not a CA. ZONES defaults to 100.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

bool add_ext(X509* x, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(x, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// Writes certificate i into dir; false on any failure.
bool write_cert(EVP_PKEY* key, const std::filesystem::path& dir, long i, long zones) {
  const std::string email =
      "user" + std::to_string(i) + "@d" + std::to_string(i % zones) + ".bench.example";
  X509* x = X509_new();
  bool ok = x != nullptr && X509_set_version(x, 2) == 1 &&
            ASN1_INTEGER_set_int64(X509_get_serialNumber(x), i + 1) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(x), -86400) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400) != nullptr;
  if (ok) {
    X509_NAME* name = X509_get_subject_name(x);
    ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(email.c_str()), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1 &&
         add_ext(x, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, NID_ext_key_usage, "emailProtection") &&
         add_ext(x, NID_subject_alt_name, "email:" + email) && X509_sign(x, key, EVP_sha256()) > 0;
  }
  if (ok) {
    char file[32];
    std::snprintf(file, sizeof file, "%07ld.pem", i);
    std::FILE* f = std::fopen((dir / file).c_str(), "wb");
    ok = f != nullptr && PEM_write_X509(f, x) == 1;
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
  }
  X509_free(x);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: gen_certs OUTDIR N [ZONES]\n");
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  const long n = std::strtol(argv[2], nullptr, 10);
  const long zones = argc > 3 ? std::strtol(argv[3], nullptr, 10) : 100;
  if (n <= 0 || zones <= 0) {
    std::fprintf(stderr, "gen_certs: N and ZONES must be positive\n");
    return 2;
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "gen_certs: %s: %s\n", dir.c_str(), ec.message().c_str());
    return 1;
  }
  std::unique_ptr<EVP_PKEY, KeyDeleter> key(EVP_EC_gen("P-256"));
  if (!key) {
    std::fprintf(stderr, "gen_certs: cannot make a key\n");
    return 1;
  }
  const unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::atomic<long> next{0};
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (long i = next++; i < n && !failed; i = next++) {
        if (!write_cert(key.get(), dir, i, zones)) failed = true;
      }
    });
  }
  for (std::thread& t : pool) t.join();
  if (failed) {
    std::fprintf(stderr, "gen_certs: failed to write a certificate into %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
