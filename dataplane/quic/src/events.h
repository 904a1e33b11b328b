// Events raised while ngtcp2 runs and handed to JS only after the ngtcp2 call has returned.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quic {

class Connection;

// The numbers are part of the contract with endpoint.ts (NativeEvent there).
enum class EventType : uint8_t {
  kConnection = 0,        // server: handshake confirmed
  kHandshake = 1,         // client: handshake confirmed
  kStreamData = 2,        // stream_id, data (arena), fin
  kStreamReset = 3,       // stream_id, code
  kStopSending = 4,       // stream_id, code
  kStreamClose = 5,       // stream_id, code
  kDatagrams = 6,         // the connection's datagram batch
  kDatagramDrain = 7,     //
  kStreamsAvailable = 8,  //
  kClose = 9,             // code, reason (arena), flags
  kEndpointClosed = 10,   //
};

// Close flags: bit 0 application error, bit 1 closed by us; `why` in bits 4..7.
enum CloseWhy : uint8_t {
  kWhyClose = 0,      // CONNECTION_CLOSE sent or received
  kWhyIdle = 1,       // idle timeout
  kWhyHandshake = 2,  // handshake failed or timed out
  kWhyReset = 3,      // stateless reset received
  kWhyEndpoint = 4,   // endpoint closed
  kWhyError = 5,      // local protocol/library error
};

struct Event {
  EventType type;
  uint8_t fin;
  uint8_t flags;
  Connection *conn;
  int64_t stream_id;
  uint64_t code;
  size_t off;  // payload in the endpoint's event arena
  size_t len;
};

}  // namespace quic
