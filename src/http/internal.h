// The pieces shared by the server, its connections and their responders. Internal to src/http:
// Asio types live here, never in http.h, so modules above never compile Boost.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "http.h"

namespace tk::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

// NOTE: every post from outside the I/O threads goes through the gate; stop() closes it before the
// io_context goes away, so no work is posted into an io_context being destroyed.
class Gate {
 public:
  explicit Gate(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  // Runs f under the gate while it is open; false when closed.
  template <typename F>
  bool with_open(F&& f) const {
    std::shared_lock lock(mu_);
    if (!open_) return false;
    f();
    return true;
  }
  void post(std::function<void()> work) const;  // to any I/O thread; dropped when closed
  void close();

 private:
  mutable std::shared_mutex mu_;
  bool open_ = true;
  asio::any_io_executor executor_;
};

class Connection;

// What every connection of one server shares; connections and responders keep it alive.
struct Core {
  Core(ServerOptions options, Handler handler, asio::any_io_executor executor);
  Response error_response(int status, std::string message) const;
  // A whole error response with Connection: close, ready to write.
  std::string error_bytes(int status, std::string message) const;

  void add(const std::shared_ptr<Connection>& connection);
  void remove(Connection* connection);
  std::vector<std::shared_ptr<Connection>> snapshot() const;
  size_t count() const { return count_.load(); }

  const ServerOptions options;
  const Handler handler;
  Gate gate;
  std::atomic<bool> draining{false};  // stop_accepting() was called: close after each response

 private:
  mutable std::mutex mu_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  std::atomic<size_t> count_{0};
};

enum class Phase : int { kPending, kStreaming, kDone };  // kDone: send() or end() was called

// How a stream's chunks go on the wire: chunked (HTTP/1.1), raw until close (HTTP/1.0), or not
// at all (a HEAD request).
enum class Framing { kChunked, kRaw, kNone };

// NOTE: the state of one request shared by its Responder (any thread) and its Connection (its
// strand). A Connection ignores posts carrying an Exchange that is not its current one.
class Exchange {
 public:
  std::atomic<Phase> phase{Phase::kPending};
  std::atomic<bool> gone{false};           // the connection closed
  std::atomic<size_t> queued_bytes{0};     // stream bytes written by the layer above, not yet sent

  void set_on_disconnect(std::function<void()> callback, const Gate& gate);
  // The connection closed; with notify, the callback runs now (once, on the calling I/O thread).
  void mark_gone(bool notify);

 private:
  std::mutex mu_;
  std::function<void()> callback_;
  bool marked_ = false;
  bool notified_ = false;
};

std::shared_ptr<Responder> make_responder(std::shared_ptr<Core> core, std::weak_ptr<Connection> connection,
                                          std::shared_ptr<Exchange> exchange, Framing framing);

// message.cpp: the bytes of HTTP/1.1 heads and chunks.
struct HeadSpec {
  enum class Body { kLength, kChunked, kUntilClose };
  int status = 200;
  const Headers* headers = nullptr;
  Body body = Body::kLength;  // kLength: Content-Length: body_size
  size_t body_size = 0;
  bool close = false;         // Connection: close
  bool http10_keep_alive = false;  // Connection: keep-alive for an HTTP/1.0 client
};
std::string format_head(const HeadSpec& spec);
std::string frame_chunk(std::string_view data);
bool header_says_close(const Headers& headers);
// A status that may carry no body (1xx, 204, 304).
bool status_without_body(int status);
bool iequals(std::string_view a, std::string_view b);

}  // namespace tk::http::detail
