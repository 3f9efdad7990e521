// One WebSocket connection on GET /v1/stream (CONTRACT.md "WebSocket").
//
// Authenticated on the upgrade (the HTTP session checks the bearer token before handing the socket
// over). Client messages: subscribe / unsubscribe (answered with a snapshot), usage (answered with its
// result). Pushes come from the StreamHub, coalesced, and are shaped per connection: the caller's
// access is checked again on every push (a member removed since subscribing stops hearing), and the
// show-credits rule applies (views.hpp).
//
// Writes go through a bounded queue (options.stream_queue_messages); a consumer that lets it fill is
// closed with 1008 (policy violation) and never slows anyone else. Keepalive: a ping after half of
// limits::stream_idle_timeout of silence, closed if unanswered. Lifetime: shared_from_this; every step
// runs on the connection's strand.
#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "actors/directory.hpp"
#include "actors/services.hpp"

namespace canopy::net {

class StreamHub;

void start_ws_session(boost::beast::tcp_stream stream, boost::beast::http::request<boost::beast::http::string_body> request,
                      actors::Services& services, StreamHub& hub, actors::Principal principal);

}  // namespace canopy::net
