// One client connection: a small state machine on its own strand. It reads and parses requests
// (with its own reads, so limits, timeouts and the disconnect watch are ours), hands each to the
// handler, and writes the answer that responders post to it from any thread.
#pragma once

#include <array>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "internal.h"

namespace tk::http::detail {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<Core> core, tcp::socket socket);
  ~Connection();
  void start();  // registers with the core and starts reading, on the strand
  const asio::any_io_executor& executor() const { return executor_; }

  // Posted by responders; each ignores an exchange that is not the current one.
  void send_response(const std::shared_ptr<Exchange>& exchange, Response response);
  void start_stream(const std::shared_ptr<Exchange>& exchange, int status, Headers headers);
  void write_chunk(const std::shared_ptr<Exchange>& exchange, std::string bytes);
  void end_stream(const std::shared_ptr<Exchange>& exchange);
  void abort(const std::shared_ptr<Exchange>& exchange, const std::string& why);
  void abandoned(const std::shared_ptr<Exchange>& exchange);  // its Responder died unanswered

  void shutdown();  // server stop, on the strand: close now
  void release();   // after the I/O threads were joined: drop the self-reference

  struct Parser;  // Beast's request parser, complete in connection.cpp only

 private:
  enum class State {
    kReadHeader,  // waiting for / reading a request header
    kReadBody,    // reading its body
    kHandle,      // the handler has it; reading on only to notice a disconnect (and buffer)
    kClosing,     // writing the last response, then draining the client until it closes
    kClosed,
  };

  // connection.cpp: reading and parsing.
  void begin();
  void start_read();
  void on_read(const error_code& ec, size_t bytes);
  void parse_available();
  void drop_parser();  // frees a rejected request's partial body now
  bool on_header();
  void dispatch();
  void finish_exchange();
  void begin_linger();
  void close();
  void arm(double seconds);
  void disarm();
  void on_timeout();

  // connection_write.cpp: writing.
  bool is_current(const std::shared_ptr<Exchange>& exchange) const;
  void reject(int status, std::string message);
  void enter_closing();
  void queue(std::string bytes, size_t counted = 0);
  void flush();
  void flush_or_drained();
  void on_write(const error_code& ec);
  void on_drained();
  bool close_after(const Headers& headers) const;

  const std::shared_ptr<Core> core_;
  tcp::socket socket_;
  asio::any_io_executor executor_;
  asio::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  std::string remote_;
  State state_ = State::kReadHeader;

  // NOTE: reads land in read_chunk_, never in buffer_: a read is pending in every state, and
  // parsing (consume) moves buffer_'s free space under it.
  std::array<char, 16 << 10> read_chunk_;
  boost::beast::flat_buffer buffer_;  // received, not yet parsed (a pipelined request, too)
  std::unique_ptr<Parser> parser_;
  bool reading_ = false;
  bool request_started_ = false;  // bytes of the next request arrived (header deadline runs)
  size_t lingered_bytes_ = 0;
  bool lingering_ = false;

  // The request being answered.
  std::shared_ptr<Exchange> exchange_;
  std::shared_ptr<Connection> hold_;  // NOTE: keeps this alive while a responder may post to it
  unsigned version_ = 11;
  bool keep_alive_ = true;
  bool head_request_ = false;
  bool response_started_ = false;
  bool response_complete_ = false;  // every byte of the response is queued
  bool streaming_ = false;
  bool close_after_ = false;

  // Writes: pending_ waits while in_flight_ is being written.
  std::vector<std::string> pending_;
  std::vector<std::string> in_flight_;
  size_t pending_counted_ = 0;
  size_t in_flight_counted_ = 0;
  bool writing_ = false;
};

}  // namespace tk::http::detail
