// One HTTP/1.1 connection: read a request, hand it to the router, write the answer, repeat while
// keep-alive. One request at a time per connection (clients get concurrency from connections).
//
// Every input is bounded: header bytes (limits::header_bytes_max), body bytes (configured, 413 past
// it), time to read a request (limits::request_read_timeout) and to be answered
// (limits::request_deadline, then 503 — the work may still complete and a retry is safe).
// Lifetime: shared_from_this; all steps run on the connection's strand.
#pragma once

#include <boost/asio/ip/tcp.hpp>

#include <memory>

namespace canopy::net {

class Router;
class StreamHub;

// A WebSocket upgrade of GET /v1/stream with a valid token is handed to a WsSession (ws_session.hpp).
void start_http_session(boost::asio::ip::tcp::socket socket, const Router& router, StreamHub& hub,
                        std::size_t body_bytes_limit);

// Requests read but not yet answered, across all sessions (graceful shutdown waits for zero).
std::size_t requests_in_flight();

}  // namespace canopy::net
