// The bytes of an HTTP/1.1 response's status line and header fields, written straight into a string.
//
// Every answer Canopy sends is a complete body with a known length, so a response is its head and its
// body, written with one gather write. Beast's serializer, built for bodies of every kind, cost ~12% of
// the I/O thread per single-event charge (measured; see docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <string>

#include "net/http.hpp"

namespace canopy::net {

// What the connection does after the response, as the head says it.
enum class Connection : std::uint8_t {
  keep_alive,            // HTTP/1.1's default: no field
  keep_alive_announced,  // an HTTP/1.0 client asked to keep it: "Connection: keep-alive"
  close,                 // "Connection: close"
};

// Appends "HTTP/1.1 <status> <reason>", Server, Content-Type (unless empty), the response's own
// fields, the Connection field `connection` calls for, and Content-Length: the body's size (none for
// a 1xx, 204 or 304, whose body must be empty); then the blank line. An answer to HEAD is this head
// alone, its length the body's that GET would have had. REQUIRES: no field name or value holds CR or
// LF (they are Canopy's own, never a client's).
void append_response_head(std::string& out, const HttpResponse& response, Connection connection);

}  // namespace canopy::net
