// Writing side of a connection: the answers that responders post (whole responses, stream heads,
// chunks, the end) are queued on the strand and written in order, batched into one gathered write
// while the previous one is in flight. Stream bytes are counted against the exchange so a client
// that reads too slowly is cut off instead of growing the queue without bound.
#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>

#include "connection.h"

namespace tk::http::detail {

bool Connection::is_current(const std::shared_ptr<Exchange>& exchange) const {
  return state_ == State::kHandle && exchange == exchange_;
}

bool Connection::close_after(const Headers& headers) const {
  return !keep_alive_ || core_->draining.load() || header_says_close(headers);
}

void Connection::send_response(const std::shared_ptr<Exchange>& exchange, Response response) {
  if (!is_current(exchange) || response_started_) return;
  response_started_ = response_complete_ = true;
  close_after_ = close_after(response.headers);
  if (response.status < 100 || response.status > 599) {
    TK_LOG_WARN("http: the handler answered with status " + std::to_string(response.status) + "; sending 500");
    response = core_->error_response(500, "invalid response status");
  }
  HeadSpec spec;
  spec.status = response.status;
  spec.headers = &response.headers;
  spec.body_size = response.body.size();
  spec.close = close_after_;
  spec.http10_keep_alive = version_ < 11 && !close_after_;
  queue(format_head(spec));
  if (!head_request_ && !status_without_body(response.status)) queue(std::move(response.body));
  if (close_after_) enter_closing();
  flush_or_drained();
}

void Connection::start_stream(const std::shared_ptr<Exchange>& exchange, int status, Headers headers) {
  if (!is_current(exchange) || response_started_) return;
  response_started_ = streaming_ = true;
  // An HTTP/1.0 client cannot take chunks: raw bytes, and the close marks the end.
  close_after_ = close_after(headers) || version_ < 11;
  if (status < 100 || status > 599) status = 500;
  HeadSpec spec;
  spec.status = status;
  spec.headers = &headers;
  spec.body = version_ >= 11 ? HeadSpec::Body::kChunked : HeadSpec::Body::kUntilClose;
  spec.close = close_after_;
  queue(format_head(spec));
  flush();
}

void Connection::write_chunk(const std::shared_ptr<Exchange>& exchange, std::string bytes) {
  if (!is_current(exchange) || !streaming_ || response_complete_) return;
  const size_t counted = bytes.size();
  queue(std::move(bytes), counted);
  flush();
}

void Connection::end_stream(const std::shared_ptr<Exchange>& exchange) {
  if (!is_current(exchange) || !streaming_ || response_complete_) return;
  response_complete_ = true;
  if (version_ >= 11 && !head_request_) queue("0\r\n\r\n");
  if (close_after_) enter_closing();
  flush_or_drained();
}

void Connection::abort(const std::shared_ptr<Exchange>& exchange, const std::string& why) {
  if (exchange != exchange_ || state_ == State::kClosed) return;
  TK_LOG_WARN("http: " + remote_ + ": " + why + "; closing the connection");
  close();
}

void Connection::abandoned(const std::shared_ptr<Exchange>& exchange) {
  if (!is_current(exchange)) return;
  if (!response_started_) {
    TK_LOG_WARN("http: a request was dropped without an answer; sending 500");
    exchange->phase.store(Phase::kDone);
    send_response(exchange, core_->error_response(500, "the server dropped the request without answering"));
  } else if (!response_complete_) {
    // Written so far goes out, then the close tells the client the stream is cut, not complete.
    TK_LOG_WARN("http: a stream was dropped without end(); closing the connection");
    exchange->mark_gone(false);
    enter_closing();
    flush_or_drained();
  }
}

// An error of the request itself: answer it and close, without reading the rest.
void Connection::reject(int status, std::string message) {
  TK_LOG_DEBUG("http: " + remote_ + ": " + std::to_string(status) + " " + message);
  drop_parser();
  buffer_.clear();
  queue(core_->error_bytes(status, std::move(message)));
  enter_closing();
  flush();
}

// The last response is queued: what comes in now is dropped, the timer bounds the write.
void Connection::enter_closing() {
  state_ = State::kClosing;
  buffer_.clear();
  arm(core_->options.write_timeout_s);
}

void Connection::queue(std::string bytes, size_t counted) {
  if (bytes.empty()) return;
  pending_.push_back(std::move(bytes));
  pending_counted_ += counted;
}

void Connection::flush() {
  if (writing_ || pending_.empty() || state_ == State::kClosed) return;
  in_flight_.swap(pending_);
  in_flight_counted_ = std::exchange(pending_counted_, 0);
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(in_flight_.size());
  for (const std::string& bytes : in_flight_) buffers.push_back(asio::buffer(bytes));
  writing_ = true;
  if (state_ == State::kHandle) arm(core_->options.write_timeout_s);
  asio::async_write(socket_, buffers, [self = shared_from_this()](const error_code& ec, size_t) {
    self->on_write(ec);
  });
}

void Connection::flush_or_drained() {
  if (!writing_ && pending_.empty()) return on_drained();
  flush();
}

void Connection::on_write(const error_code& ec) {
  writing_ = false;
  if (exchange_ && in_flight_counted_ > 0) exchange_->queued_bytes.fetch_sub(in_flight_counted_);
  in_flight_.clear();
  in_flight_counted_ = 0;
  if (state_ == State::kClosed) return;
  if (ec) {
    TK_LOG_DEBUG("http: " + remote_ + ": write failed (" + ec.message() + ")");
    return close();
  }
  if (!pending_.empty()) return flush();
  on_drained();
}

// Everything queued is written.
void Connection::on_drained() {
  if (state_ == State::kHandle) {
    if (response_complete_) return finish_exchange();
    disarm();  // the write deadline; a stream waiting for its next chunk has none
  } else if (state_ == State::kClosing && !lingering_) {
    begin_linger();
  }
}

}  // namespace tk::http::detail
