// tokamak http: the HTTP/1.1 transport under the OpenAI-compatible server. It parses requests,
// hands each to one handler with a thread-safe Responder, and writes whole or streamed (chunked)
// responses produced later from any thread. Asynchronous I/O on a few threads (Boost.Beast/Asio
// behind a pimpl, never in this header), so hundreds of open SSE streams do not starve /health.
// It knows nothing of models, OpenAI or JSON.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/core.h"

namespace tk::http {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;  // "GET", "POST", ... as sent
  std::string path;    // target up to '?', not percent-decoded
  std::string query;   // after '?', raw ("" when none)
  Headers headers;     // in arrival order, names as sent
  std::string body;    // de-chunked
  std::string remote;  // "ip:port" ("[v6]:port")
  // The first header of that name, compared case-insensitively.
  std::optional<std::string_view> header(std::string_view name) const;
};

// Framing headers (Content-Length, Transfer-Encoding) are set by the transport; a handler's own
// are dropped. "Connection: close" from the handler closes the connection after the response.
struct Response {
  int status = 200;
  Headers headers;
  std::string body;
};

// One per request, shared between the I/O threads and whoever produces the answer. Every method
// is thread-safe and non-blocking (it queues work for the connection's I/O strand).
class Responder {
 public:
  virtual ~Responder() = default;
  // A whole response, once. Ignored after another send/start_stream.
  virtual void send(Response response) = 0;
  // Status line and headers now, the body in chunks (Transfer-Encoding: chunked; to an HTTP/1.0
  // client raw bytes, then close). Set Content-Type: text/event-stream etc. yourself.
  virtual void start_stream(int status, Headers headers) = 0;
  // Queues a chunk after start_stream (an empty one is skipped). False once the client is gone, the
  // stream ended, or the client reads so slowly that more than ServerOptions::max_stream_queue_bytes
  // wait unsent when write is called (the connection is then closed).
  virtual bool write(std::string data) = 0;
  // The terminating chunk; the connection then serves its next request (keep-alive).
  virtual void end() = 0;
  // The client is gone (or the connection was closed), or the response was sent / ended.
  virtual bool closed() const = 0;
  // Called once, from an I/O thread, when the connection closes before the response was sent or
  // ended: the client disconnected (FIN, a half-close too, or RST; noticed while waiting for a
  // non-streamed answer too), read too slowly, or the server stopped. Set it before the handler
  // returns; set later after the fact, it is still called (posted to an I/O thread).
  virtual void on_disconnect(std::function<void()> callback) = 0;
};

// Runs on an I/O thread and must not block: answer later, from anywhere, through the Responder.
// A Responder dropped without an answer sends 500 (a started stream is cut) and logs a warning.
using Handler = std::function<void(Request&& request, std::shared_ptr<Responder> responder)>;

// The body of the transport's own errors (400, 408, 413, 417, 431, 500, 503). Default: the OpenAI
// error shape {"error":{"message":...,"type":"BadRequestError","param":null,"code":status}}.
using ErrorResponder = std::function<Response(int status, std::string message)>;
Response default_error_response(int status, std::string message);

struct ServerOptions {
  std::string host = "127.0.0.1";  // address or name; "0.0.0.0" / "::" for all interfaces
  int port = 8000;                 // 0: an ephemeral port (tests), see Server::port()
  int io_threads = 0;              // 0: min(4, hardware threads)
  size_t max_body_bytes = 32 << 20;    // larger: 413 and close, the rest is not read
  size_t max_header_bytes = 16 << 10;  // request line + headers; larger: 431 and close
  double header_timeout_s = 30;  // whole header from its first byte (from accept for the first)
  double body_timeout_s = 60;    // whole body from the end of the header; then 408 and close
  double idle_keepalive_s = 60;  // between requests on a kept-alive connection; then close
  double write_timeout_s = 60;   // a write of queued bytes not done within this: close (gone)
  size_t max_stream_queue_bytes = 1 << 20;  // a stream's bytes not yet taken by the socket; beyond: close
  int max_connections = 4096;               // beyond: 503 and close
  ErrorResponder error_response;            // empty: default_error_response
};

class Server {
 public:
  // Binds, listens and runs the I/O threads. An address in use or unresolvable comes back as an
  // error.
  static Result<std::unique_ptr<Server>> start(ServerOptions options, Handler handler);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  int port() const;  // the bound port (the ephemeral one when options.port was 0)
  // Runs work on an I/O thread (it must not block). Dropped after stop().
  void post(std::function<void()> work);
  // Graceful shutdown, step 1: close the listener; open connections keep being served.
  void stop_accepting();
  // Step 2: close every connection (on_disconnect fires for unfinished responses) and join the
  // I/O threads. Idempotent. NOTE: never from an I/O thread (a handler, a callback, post()).
  void stop();
  // Open connections (those accepted and not yet released), for tests and metrics.
  size_t num_connections() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tk::http
