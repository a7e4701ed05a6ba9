// A small blocking HTTP/1.1 client for `tokamak bench serve`: one connection per request, a JSON
// body up, the answer back whole or as server-sent events handed over one by one. Loopback or any
// host:port the user names; every read bounded by a timeout.
#pragma once

#include <functional>
#include <string>

#include "core/core.h"

namespace tk::cli {

struct HttpTarget {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string base_path;  // e.g. "" or "/v1" prefix already in the endpoint
};

// "http://host:port[/path]" -> target; the path is returned as base_path.
Result<HttpTarget> parse_base_url(const std::string& url);

struct HttpReply {
  int status = 0;
  std::string body;  // whole (non-SSE) bodies
};

// POSTs `body`; for an event stream, calls on_event(data) for every "data: ..." line as it
// arrives (false from it stops reading). Errors are transport failures.
Result<HttpReply> http_post(const HttpTarget& target, const std::string& path, const std::string& body,
                            const std::string& api_key, const std::function<bool(const std::string&)>& on_event,
                            double timeout_s);

}  // namespace tk::cli
