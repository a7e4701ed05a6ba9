// A blocking POSIX-socket HTTP client for the transport tests: it sends exact bytes (hostile
// ones too) and parses responses itself, every read bounded by a deadline.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/http.h"

namespace tk::http::test {

struct Reply {
  int status = 0;
  Headers headers;
  std::string body;                 // de-chunked
  std::vector<std::string> chunks;  // each chunk as sent (chunked replies)
  bool chunked = false;
  std::optional<std::string> header(std::string_view name) const;
};

class Client {
 public:
  explicit Client(int port);  // connects to 127.0.0.1:port; check ok()
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(std::string_view bytes);
  // One response (a 1xx interim one too), within timeout_s; nullopt on timeout, close or garbage.
  std::optional<Reply> read_reply(double timeout_s = 5);
  // The head only (for streams read chunk by chunk).
  std::optional<Reply> read_head(double timeout_s = 5);
  // The next chunk of a chunked body; nullopt on timeout; "" is the terminating chunk.
  std::optional<std::string> read_chunk(double timeout_s = 5);
  // True when the server closes (EOF or reset) within timeout_s; data before it is dropped.
  bool wait_closed(double timeout_s);
  void shutdown_write();
  void close();  // FIN
  void reset();  // RST (SO_LINGER 0)

 private:
  bool fill(double deadline);  // one recv into buffer_; false on EOF, error or deadline
  std::optional<std::string> take_line(double deadline);
  std::optional<std::string> take_bytes(size_t n, double deadline);
  int fd_ = -1;
  std::string buffer_;
};

// "METHOD target HTTP/1.1" with Host, Content-Length when body is not empty, and extra headers.
std::string make_request(std::string_view method, std::string_view target, std::string_view body = "",
                         const Headers& extra = {});

// A started server or a test failure.
std::unique_ptr<Server> start_server(ServerOptions options, Handler handler);

double now();  // monotonic seconds
void sleep_ms(int ms);

// Polls until predicate() or timeout_s; returns the predicate's last value.
template <typename F>
bool wait_for(F predicate, double timeout_s) {
  const double deadline = now() + timeout_s;
  while (!predicate()) {
    if (now() > deadline) return predicate();
    sleep_ms(1);
  }
  return true;
}

}  // namespace tk::http::test
