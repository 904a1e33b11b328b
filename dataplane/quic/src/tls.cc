#include "tls.h"

#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <string.h>

#include "connection.h"
#include "endpoint.h"

namespace quic {

namespace {

// TLS 1.3 only, no middlebox compatibility mode (QUIC forbids it), AEADs QUIC can use.
constexpr const char *kPriority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
    "+AES-256-GCM:+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1";

std::string gnutls_err(const char *what, int rv) {
  return std::string(what) + ": " + gnutls_strerror(rv);
}

Connection *owner(gnutls_session_t s) {
  auto ref = static_cast<ngtcp2_crypto_conn_ref *>(gnutls_session_get_ptr(s));
  return ref ? static_cast<Connection *>(ref->user_data) : nullptr;
}

// Verifies the peer chain against our CA with the key purpose of the peer's role; records the
// reason of a failure; keeps the leaf certificate (DER) for JS. Non-zero aborts the handshake.
int verify_peer(gnutls_session_t s) {
  Connection *c = owner(s);
  if (!c) return GNUTLS_E_CERTIFICATE_ERROR;
  bool server = c->is_server();
  unsigned n = 0;
  const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
  if (!certs || n == 0) {
    c->tls_fail_reason = TlsFail::kNoCertificate;
    return GNUTLS_E_NO_CERTIFICATE_FOUND;
  }
  gnutls_typed_vdata_st data[2];
  unsigned nd = 0;
  data[nd].type = GNUTLS_DT_KEY_PURPOSE_OID;
  data[nd].data = (unsigned char *)(server ? GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER);
  data[nd].size = 0;
  nd++;
  const std::string &name = c->expected_name();
  if (!server && !name.empty()) {
    data[nd].type = GNUTLS_DT_DNS_HOSTNAME;
    data[nd].data = (unsigned char *)name.c_str();
    data[nd].size = 0;
    nd++;
  }
  unsigned status = 0;
  int rv = gnutls_certificate_verify_peers(s, data, nd, &status);
  if (rv < 0 || status != 0) {
    c->tls_fail_reason =
        (status & GNUTLS_CERT_PURPOSE_MISMATCH) ? TlsFail::kWrongPurpose : TlsFail::kUntrusted;
    return GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR;
  }
  c->set_peer_cert(certs[0].data, certs[0].size);
  return 0;
}

}  // namespace

Credentials::~Credentials() {
  if (cred) gnutls_certificate_free_credentials(cred);
}

namespace {

std::shared_ptr<Credentials> make_credentials(bool server, const std::string &cert_pem,
                                              const std::string &key_pem, const std::string &ca_pem,
                                              std::string *err) {
  auto c = std::make_shared<Credentials>();
  int rv = gnutls_certificate_allocate_credentials(&c->cred);
  if (rv != 0) {
    *err = gnutls_err("gnutls_certificate_allocate_credentials", rv);
    return nullptr;
  }
  gnutls_datum_t cert{(unsigned char *)cert_pem.data(), (unsigned)cert_pem.size()};
  gnutls_datum_t key{(unsigned char *)key_pem.data(), (unsigned)key_pem.size()};
  gnutls_datum_t ca{(unsigned char *)ca_pem.data(), (unsigned)ca_pem.size()};
  if (!cert_pem.empty() || server) {
    rv = gnutls_certificate_set_x509_key_mem(c->cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    if (rv != 0) {
      *err = gnutls_err("certificate/key", rv);
      return nullptr;
    }
  }
  rv = gnutls_certificate_set_x509_trust_mem(c->cred, &ca, GNUTLS_X509_FMT_PEM);
  if (rv <= 0) {
    *err = rv < 0 ? gnutls_err("CA", rv) : "CA: no certificate in caPem";
    return nullptr;
  }
  gnutls_certificate_set_verify_function(c->cred, verify_peer);
  return c;
}

}  // namespace

bool TlsConfig::init(bool is_server, const std::string &cert_pem, const std::string &key_pem,
                     const std::string &ca_pem, const std::string &alpn_, const std::string &name,
                     Counters *c, std::string *err) {
  server = is_server;
  alpn = alpn_;
  server_name = name;
  counters = c;
  creds = make_credentials(server, cert_pem, key_pem, ca_pem, err);
  return creds != nullptr;
}

bool TlsConfig::set_credentials(const std::string &cert_pem, const std::string &key_pem,
                                const std::string &ca_pem, std::string *err) {
  auto next = make_credentials(server, cert_pem, key_pem, ca_pem, err);
  if (!next) return false;
  creds = std::move(next);
  return true;
}

bool TlsConfig::new_session(ngtcp2_crypto_conn_ref *ref, gnutls_session_t *out,
                            std::shared_ptr<Credentials> *held, std::string *err) {
  gnutls_session_t s = nullptr;
  int rv = gnutls_init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_END_OF_EARLY_DATA);
  if (rv != 0) {
    *err = gnutls_err("gnutls_init", rv);
    return false;
  }
  auto fail = [&](const char *what) {
    *err = gnutls_err(what, rv);
    gnutls_deinit(s);
    return false;
  };
  if ((rv = gnutls_priority_set_direct(s, kPriority, nullptr)) != 0) return fail("priority");
  rv = server ? ngtcp2_crypto_gnutls_configure_server_session(s)
              : ngtcp2_crypto_gnutls_configure_client_session(s);
  if (rv != 0) return fail("ngtcp2_crypto_gnutls_configure_session");
  gnutls_session_set_ptr(s, ref);
  if ((rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, creds->cred)) != 0) return fail("credentials");
  if (server) gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  gnutls_datum_t proto{(unsigned char *)alpn.data(), (unsigned)alpn.size()};
  if ((rv = gnutls_alpn_set_protocols(s, &proto, 1, GNUTLS_ALPN_MANDATORY)) != 0) return fail("alpn");
  if (!server && !server_name.empty()) {
    // SNI only for DNS names (RFC 6066 forbids IP literals).
    bool literal = server_name.find(':') != std::string::npos ||
                   server_name.find_first_not_of("0123456789.") == std::string::npos;
    if (!literal &&
        (rv = gnutls_server_name_set(s, GNUTLS_NAME_DNS, server_name.data(), server_name.size())) != 0)
      return fail("server name");
  }
  *out = s;
  *held = creds;
  return true;
}

bool TlsConfig::alpn_ok(gnutls_session_t s) const {
  gnutls_datum_t p{};
  if (gnutls_alpn_get_selected_protocol(s, &p) != 0) return false;
  return p.size == alpn.size() && memcmp(p.data, alpn.data(), p.size) == 0;
}

}  // namespace quic
