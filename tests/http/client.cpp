// The test client's socket work and its small response parser.
#include "client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <strings.h>
#include <thread>

#include <gtest/gtest.h>

namespace tk::http::test {

double now() { return tk::now_seconds(); }
void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::optional<std::string> Reply::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), name.size()) == 0) return value;
  }
  return std::nullopt;
}

Client::Client(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd_ < 0) return;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  timeval send_timeout{5, 0};  // a server that neither reads nor closes fails the send, not the suite
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
}

Client::~Client() { close(); }

bool Client::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Client::fill(double deadline) {
  if (fd_ < 0) return false;
  const double left = deadline - now();
  if (left <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(left * 1000) + 1);
  if (ready <= 0) return false;
  char chunk[16384];
  const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) return false;
  buffer_.append(chunk, static_cast<size_t>(n));
  return true;
}

std::optional<std::string> Client::take_line(double deadline) {
  for (;;) {
    const size_t end = buffer_.find("\r\n");
    if (end != std::string::npos) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 2);
      return line;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<std::string> Client::take_bytes(size_t n, double deadline) {
  while (buffer_.size() < n) {
    if (!fill(deadline)) return std::nullopt;
  }
  std::string bytes = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return bytes;
}

std::optional<Reply> Client::read_head(double timeout_s) {
  const double deadline = now() + timeout_s;
  auto status_line = take_line(deadline);
  if (!status_line || status_line->rfind("HTTP/1.", 0) != 0 || status_line->size() < 12) return std::nullopt;
  Reply reply;
  reply.status = std::atoi(status_line->c_str() + 9);
  for (;;) {
    auto line = take_line(deadline);
    if (!line) return std::nullopt;
    if (line->empty()) break;
    const size_t colon = line->find(':');
    if (colon == std::string::npos) return std::nullopt;
    size_t value_start = colon + 1;
    while (value_start < line->size() && (*line)[value_start] == ' ') ++value_start;
    reply.headers.emplace_back(line->substr(0, colon), line->substr(value_start));
  }
  auto te = reply.header("Transfer-Encoding");
  reply.chunked = te && strcasecmp(te->c_str(), "chunked") == 0;
  return reply;
}

std::optional<std::string> Client::read_chunk(double timeout_s) {
  const double deadline = now() + timeout_s;
  auto size_line = take_line(deadline);
  if (!size_line || size_line->empty()) return std::nullopt;
  const size_t size = std::strtoul(size_line->c_str(), nullptr, 16);
  auto data = take_bytes(size, deadline);
  auto crlf = take_line(deadline);
  if (!data || !crlf || !crlf->empty()) return std::nullopt;
  return data;
}

std::optional<Reply> Client::read_reply(double timeout_s) {
  const double deadline = now() + timeout_s;
  auto reply = read_head(timeout_s);
  if (!reply) return std::nullopt;
  if (reply->status < 200 || reply->status == 204 || reply->status == 304) return reply;
  if (reply->chunked) {
    for (;;) {
      auto chunk = read_chunk(deadline - now());
      if (!chunk) return std::nullopt;
      if (chunk->empty()) return reply;
      reply->body += *chunk;
      reply->chunks.push_back(std::move(*chunk));
    }
  }
  if (auto length = reply->header("Content-Length")) {
    auto body = take_bytes(std::strtoul(length->c_str(), nullptr, 10), deadline);
    if (!body) return std::nullopt;
    reply->body = std::move(*body);
    return reply;
  }
  while (fill(deadline)) {
  }  // no length: the body runs until the close
  reply->body = std::move(buffer_);
  buffer_.clear();
  return reply;
}

bool Client::wait_closed(double timeout_s) {
  const double deadline = now() + timeout_s;
  while (fd_ >= 0 && now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return true;
  }
  return false;
}

void Client::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void Client::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void Client::reset() {
  if (fd_ < 0) return;
  linger option{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &option, sizeof(option));
  close();
}

std::string make_request(std::string_view method, std::string_view target, std::string_view body,
                         const Headers& extra) {
  std::string request = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : extra) request += name + ": " + value + "\r\n";
  if (!body.empty()) request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n";
  request += body;
  return request;
}

std::unique_ptr<Server> start_server(ServerOptions options, Handler handler) {
  options.host = "127.0.0.1";
  options.port = 0;
  auto server = Server::start(std::move(options), std::move(handler));
  EXPECT_TRUE(server.ok()) << server.status().to_string();
  if (!server.ok()) return nullptr;
  return std::move(server).value();
}

}  // namespace tk::http::test
