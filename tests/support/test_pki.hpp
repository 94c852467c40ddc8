// Certificates and keys made with OpenSSL's API for the TLS tests and fuzz_tls_server: a CA,
// leaves signed by it or self-signed, valid or expired, PEM files in a temporary folder.
// EC P-256 keys (fast to make). No GoogleTest here; failures throw std::runtime_error.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace harbor::wire::support {

struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CertFree {
  void operator()(X509* c) const { X509_free(c); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

inline Key make_key() {
  Key key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EC key generation");
  return key;
}

struct CertSpec {
  std::string common_name;
  // subjectAltName in OpenSSL's config syntax, e.g. "DNS:localhost,IP:127.0.0.1"; empty: none.
  std::string alt_names;
  bool is_ca = false;
  long valid_from_days = -1;  // relative to now
  long valid_to_days = 365;
};

// Signed by `issuer` with `issuer_key`, or self-signed when issuer is null.
inline Cert make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer = nullptr,
                      EVP_PKEY* issuer_key = nullptr) {
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509* x = cert.get();
  check(X509_set_version(x, 2) == 1, "version");
  uint64_t serial = 0;
  check(RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) == 1, "serial");
  check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1) == 1, "serial");
  check(X509_gmtime_adj(X509_getm_notBefore(x), spec.valid_from_days * 86400L) != nullptr,
        "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(x), spec.valid_to_days * 86400L) != nullptr, "notAfter");
  check(X509_set_pubkey(x, key) == 1, "public key");
  X509_NAME* subject = X509_get_subject_name(x);
  check(X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("HarborMQ tests"), -1, -1,
                                   0) == 1,
        "O");
  check(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(spec.common_name.c_str()),
                                   -1, -1, 0) == 1,
        "CN");
  check(X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : subject) == 1,
        "issuer");

  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  auto add = [&](int nid, const std::string& value) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    check(ext != nullptr, "extension");
    const int added = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    check(added == 1, "add extension");
  };
  add(NID_basic_constraints, spec.is_ca ? "critical,CA:TRUE" : "CA:FALSE");
  add(NID_key_usage, spec.is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
  add(NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add(NID_authority_key_identifier, "keyid:always");
  if (!spec.alt_names.empty()) add(NID_subject_alt_name, spec.alt_names);
  check(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "sign");
  return cert;
}

inline void write_pem(const std::string& path, const std::vector<X509*>& chain) {
  BIO* file = BIO_new_file(path.c_str(), "w");
  check(file != nullptr, "open certificate file");
  bool ok = true;
  for (X509* c : chain) ok = ok && PEM_write_bio_X509(file, c) == 1;
  BIO_free(file);
  check(ok, "write certificate");
}

// Encrypted with AES-256-CBC when `password` is not empty.
inline void write_pem(const std::string& path, EVP_PKEY* key, const std::string& password = {}) {
  BIO* file = BIO_new_file(path.c_str(), "w");
  check(file != nullptr, "open key file");
  const int ok = PEM_write_bio_PrivateKey(file, key, password.empty() ? nullptr : EVP_aes_256_cbc(),
                                          reinterpret_cast<const unsigned char*>(password.data()),
                                          static_cast<int>(password.size()), nullptr, nullptr);
  BIO_free(file);
  check(ok == 1, "write key");
}

// A fresh folder under the system's temporary folder, removed with its files at the end.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "harbor-tls-XXXXXX").string();
    check(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

}  // namespace harbor::wire::support
