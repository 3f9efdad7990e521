// The bytes of an HTTP/1.1 response's status line and header fields, written straight into a string.
//
// Every answer Canopy sends is a complete body with a known length, so a response is its head and its
// body, written with one gather write. Beast's serializer, built for bodies of every kind, cost ~12% of
// the I/O thread per single-event charge (measured; see docs/benchmarks.md).
#pragma once

#include <string>

#include "net/http.hpp"

namespace canopy::net {

// Appends "HTTP/1.1 <status> <reason>", Server, Content-Type (unless empty), the response's own
// fields, "Connection: close" unless `keep_alive`, and Content-Length: the body's size (none for a
// 1xx, 204 or 304, whose body must be empty); then the blank line. REQUIRES: no field name or value holds CR or LF (they are Canopy's own, never a client's).
void append_response_head(std::string& out, const HttpResponse& response, bool keep_alive);

}  // namespace canopy::net
