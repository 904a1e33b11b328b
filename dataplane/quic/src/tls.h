// GnuTLS for QUIC: credentials per endpoint, a TLS 1.3-only session per connection, and peer
// certificate verification (CA + key purpose; the client also checks the server name).
#pragma once

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <memory>
#include <string>

namespace quic {

class Connection;
struct Counters;

// One set of GnuTLS certificate credentials. A session keeps a pointer to the credentials it was
// made with (gnutls_credentials_set does not copy), so each connection holds a reference to its
// set until its session is gone: swapping the endpoint's set never frees one still in use.
struct Credentials {
  gnutls_certificate_credentials_t cred = nullptr;
  Credentials() = default;
  ~Credentials();
  Credentials(const Credentials &) = delete;
  Credentials &operator=(const Credentials &) = delete;
};

struct TlsConfig {
  std::shared_ptr<Credentials> creds;  // for new sessions
  bool server = false;
  std::string alpn;
  std::string server_name;
  Counters *counters = nullptr;

  TlsConfig() = default;
  TlsConfig(const TlsConfig &) = delete;
  TlsConfig &operator=(const TlsConfig &) = delete;

  bool init(bool is_server, const std::string &cert_pem, const std::string &key_pem,
            const std::string &ca_pem, const std::string &alpn, const std::string &server_name,
            Counters *counters, std::string *err);
  // New credentials for sessions made from now on (a renewed certificate); live sessions keep
  // theirs. On failure nothing changes.
  bool set_credentials(const std::string &cert_pem, const std::string &key_pem,
                       const std::string &ca_pem, std::string *err);
  // A session wired to ngtcp2_crypto_gnutls; `ref->user_data` must be the Connection. `held`
  // receives the credentials the session uses: keep them until after gnutls_deinit.
  bool new_session(ngtcp2_crypto_conn_ref *ref, gnutls_session_t *out,
                   std::shared_ptr<Credentials> *held, std::string *err);
  // After the handshake: the negotiated ALPN is ours.
  bool alpn_ok(gnutls_session_t s) const;
};

}  // namespace quic
