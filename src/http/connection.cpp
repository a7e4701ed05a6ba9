// Reading side of a connection. Beast's parser is fed from our own async_read_some calls rather
// than http::async_read, so that one read loop serves every state: it parses while a request comes
// in, keeps watching the socket while the handler answers (a FIN or RST is noticed at once and
// pipelined bytes are buffered), and drains the client before a close.
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "connection.h"

namespace tk::http::detail {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

struct Connection::Parser {
  bhttp::request_parser<bhttp::string_body> parser;
};

namespace {

// NOTE: while a request is answered, at most this much of the next (pipelined) request is
// buffered; beyond it reading pauses until the response ends (disconnects then show as failed
// writes only).
constexpr size_t kMaxPipelinedBytes = 64 << 10;
// Before closing after an error or Connection: close, what the client still sends is read and
// dropped (at most this much, for at most this long), so that the close does not become a reset
// that destroys the response before the client read it.
constexpr size_t kMaxLingerBytes = 1 << 20;
constexpr double kLingerSeconds = 2;

std::string describe_remote(const tcp::socket& socket) {
  error_code ec;
  tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  const auto address = endpoint.address();
  std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

Request to_request(bhttp::request<bhttp::string_body>&& message, std::string remote) {
  Request request;
  request.method = std::string(message.method_string());
  std::string_view target = message.target();
  size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) request.query = std::string(target.substr(question + 1));
  for (const auto& field : message) request.headers.emplace_back(field.name_string(), field.value());
  request.body = std::move(message.body());
  request.remote = std::move(remote);
  return request;
}

std::unique_ptr<Connection::Parser> new_parser(const ServerOptions& options) {
  auto parser = std::make_unique<Connection::Parser>();
  const size_t header_limit = std::min<size_t>(options.max_header_bytes, UINT32_MAX);
  parser->parser.header_limit(static_cast<std::uint32_t>(header_limit));
  parser->parser.body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
  return parser;
}

}  // namespace

Connection::Connection(std::shared_ptr<Core> core, tcp::socket socket)
    : core_(std::move(core)),
      socket_(std::move(socket)),
      executor_(socket_.get_executor()),
      timer_(executor_),
      remote_(describe_remote(socket_)) {}

Connection::~Connection() { core_->remove(this); }

void Connection::start() {
  core_->add(shared_from_this());
  asio::dispatch(executor_, [self = shared_from_this()] { self->begin(); });
}

void Connection::begin() {
  error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);  // stream chunks go out as they are written
  parser_ = new_parser(core_->options);
  arm(core_->options.header_timeout_s);
  start_read();
}

void Connection::start_read() {
  if (reading_ || state_ == State::kClosed) return;
  if (state_ == State::kHandle && buffer_.size() >= kMaxPipelinedBytes) return;  // paused
  reading_ = true;
  socket_.async_read_some(asio::buffer(read_chunk_), [self = shared_from_this()](const error_code& ec, size_t bytes) {
    self->on_read(ec, bytes);
  });
}

void Connection::on_read(const error_code& ec, size_t bytes) {
  reading_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    if (state_ == State::kHandle) TK_LOG_DEBUG("http: " + remote_ + " left before its answer (" + ec.message() + ")");
    close();
    return;
  }
  if (state_ == State::kClosing) {
    lingered_bytes_ += bytes;
    if (lingered_bytes_ > kMaxLingerBytes) return close();
    return start_read();
  }
  buffer_.commit(asio::buffer_copy(buffer_.prepare(bytes), asio::buffer(read_chunk_.data(), bytes)));
  if (state_ == State::kReadHeader || state_ == State::kReadBody) {
    if (state_ == State::kReadHeader && !request_started_) {
      request_started_ = true;
      arm(core_->options.header_timeout_s);
    }
    parse_available();
  }  // kHandle: the bytes of a pipelined request wait in buffer_ for the response to end
  start_read();
}

void Connection::parse_available() {
  while ((state_ == State::kReadHeader || state_ == State::kReadBody) && buffer_.size() > 0) {
    auto& parser = parser_->parser;
    beast::error_code ec;
    const size_t used = parser.put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == bhttp::error::need_more) break;
    if (ec == bhttp::error::header_limit) {
      return reject(431, "the request header exceeds " + std::to_string(core_->options.max_header_bytes) + " bytes");
    }
    if (ec == bhttp::error::body_limit) {
      return reject(413, "the request body exceeds " + std::to_string(core_->options.max_body_bytes) + " bytes");
    }
    if (ec) return reject(400, "malformed HTTP request: " + ec.message());
    if (state_ == State::kReadHeader && parser.is_header_done() && !on_header()) return;
    if (parser.is_done()) return dispatch();
    if (used == 0) break;
  }
  // NOTE: what the parser leaves unconsumed is a partial header, chunk-size line or trailer;
  // bounded here whatever the parser's own limits are.
  if ((state_ == State::kReadHeader || state_ == State::kReadBody) &&
      buffer_.size() > core_->options.max_header_bytes + read_chunk_.size()) {
    reject(state_ == State::kReadHeader ? 431 : 400, "a request line is too long");
  }
}

void Connection::drop_parser() { parser_.reset(); }

// The header is complete: arm the body deadline and answer Expect: 100-continue.
bool Connection::on_header() {
  auto& parser = parser_->parser;
  state_ = State::kReadBody;
  // NOTE: only "chunked" frames a body here. Beast reads a body whose Transfer-Encoding does not
  // end in chunked ("gzip") as empty, so its bytes would be parsed as the next request (request
  // smuggling); RFC 9112 6.3: answer 400 and close.
  const auto& head = parser.get();
  size_t codings = 0;
  bool only_chunked = true;
  for (const auto& field : head) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    ++codings;
    only_chunked = only_chunked && iequals(field.value(), "chunked");
  }
  if (codings > 1 || !only_chunked) {
    reject(400, "unsupported Transfer-Encoding (only chunked is)");
    return false;
  }
  if (parser.is_done()) return true;
  arm(core_->options.body_timeout_s);
  const auto& message = parser.get();
  std::string_view expect = message[bhttp::field::expect];
  if (expect.empty()) return true;
  if (!iequals(expect, "100-continue")) {
    reject(417, "unsupported Expect: " + std::string(expect));
    return false;
  }
  if (message.version() >= 11) {
    queue("HTTP/1.1 100 Continue\r\n\r\n");
    flush();
  }
  return true;
}

void Connection::dispatch() {
  disarm();
  state_ = State::kHandle;
  request_started_ = false;
  bhttp::request<bhttp::string_body> message = parser_->parser.release();
  parser_.reset();
  version_ = message.version();
  keep_alive_ = message.keep_alive();
  head_request_ = message.method() == bhttp::verb::head;
  response_started_ = response_complete_ = streaming_ = close_after_ = false;
  exchange_ = std::make_shared<Exchange>();
  hold_ = shared_from_this();
  const Framing framing = head_request_ ? Framing::kNone : version_ >= 11 ? Framing::kChunked : Framing::kRaw;
  auto responder = make_responder(core_, weak_from_this(), exchange_, framing);
  try {
    core_->handler(to_request(std::move(message), remote_), std::move(responder));
  } catch (const std::exception& e) {
    TK_LOG_WARN(std::string("http: the handler threw: ") + e.what());
  } catch (...) {
    TK_LOG_WARN("http: the handler threw");
  }
}

// The response was written and the connection stays open: serve what is buffered, read on.
void Connection::finish_exchange() {
  exchange_.reset();
  hold_.reset();  // NOTE: the completion handler running this holds another reference
  state_ = State::kReadHeader;
  parser_ = new_parser(core_->options);
  request_started_ = buffer_.size() > 0;
  arm(request_started_ ? core_->options.header_timeout_s : core_->options.idle_keepalive_s);
  parse_available();
  start_read();
}

void Connection::begin_linger() {
  lingering_ = true;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  buffer_.clear();
  arm(kLingerSeconds);
  start_read();
}

void Connection::close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  disarm();
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  pending_.clear();  // in_flight_ stays until its write completes (aborted)
  parser_.reset();
  buffer_.clear();
  if (exchange_) {
    auto exchange = std::move(exchange_);
    exchange->mark_gone(exchange->phase.load() != Phase::kDone);
  }
  hold_.reset();  // NOTE: every caller runs inside a handler that holds a reference
}

void Connection::arm(double seconds) {
  ++timer_generation_;
  if (seconds <= 0) {
    timer_.cancel();
    return;
  }
  timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(seconds)));
  timer_.async_wait([self = shared_from_this(), generation = timer_generation_](const error_code& ec) {
    if (!ec && generation == self->timer_generation_) self->on_timeout();
  });
}

void Connection::disarm() {
  ++timer_generation_;
  timer_.cancel();
}

void Connection::on_timeout() {
  switch (state_) {
    case State::kReadHeader:
      if (request_started_) return reject(408, "timed out reading the request header");
      return close();  // idle: nothing to answer
    case State::kReadBody:
      return reject(408, "timed out reading the request body");
    case State::kHandle:
      TK_LOG_DEBUG("http: " + remote_ + " stopped reading its response; closing");
      return close();
    case State::kClosing:
      return close();
    case State::kClosed:
      return;
  }
}

void Connection::shutdown() { close(); }

void Connection::release() {
  error_code ignored;
  socket_.close(ignored);
  if (exchange_) std::exchange(exchange_, nullptr)->mark_gone(false);
  state_ = State::kClosed;
  hold_.reset();
}

}  // namespace tk::http::detail
