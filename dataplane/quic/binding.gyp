{
  "targets": [
    {
      "target_name": "quic",
      "sources": [
        "src/addon.cc",
        "src/connection.cc",
        "src/endpoint.cc",
        "src/packet_reader.cc",
        "src/tls.cc",
        "src/udp_socket.cc"
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": [
        "-std=c++17",
        "-fexceptions",
        "-Wall",
        "-Wextra",
        "-Wno-missing-field-initializers",
        "-Wno-unused-parameter",
        "<!@(pkg-config --cflags libngtcp2 libngtcp2_crypto_gnutls gnutls)"
      ],
      "libraries": ["<!@(pkg-config --libs libngtcp2 libngtcp2_crypto_gnutls gnutls)"]
    }
  ]
}
