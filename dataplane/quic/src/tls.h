// GnuTLS for QUIC: credentials per endpoint, a TLS 1.3-only session per connection, and peer
// certificate verification (CA + key purpose; the client also checks the server name).
#pragma once

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <string>

namespace quic {

class Connection;
struct Counters;

struct TlsConfig {
  gnutls_certificate_credentials_t cred = nullptr;
  bool server = false;
  std::string alpn;
  std::string server_name;
  Counters *counters = nullptr;

  TlsConfig() = default;
  ~TlsConfig();
  TlsConfig(const TlsConfig &) = delete;
  TlsConfig &operator=(const TlsConfig &) = delete;

  bool init(bool is_server, const std::string &cert_pem, const std::string &key_pem,
            const std::string &ca_pem, const std::string &alpn, const std::string &server_name,
            Counters *counters, std::string *err);
  // A session wired to ngtcp2_crypto_gnutls; `ref->user_data` must be the Connection.
  bool new_session(ngtcp2_crypto_conn_ref *ref, gnutls_session_t *out, std::string *err);
  // After the handshake: the negotiated ALPN is ours.
  bool alpn_ok(gnutls_session_t s) const;
};

}  // namespace quic
