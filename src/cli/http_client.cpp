// Blocking POSIX sockets; chunked and Content-Length bodies; SSE events split on blank lines.
#include "http_client.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace tk::cli {
namespace {

class Conn {
 public:
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  Status open(const std::string& host, int port) {
    addrinfo hints{}, *res = nullptr;
    hints.ai_family = AF_UNSPEC, hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
      return io_error("cannot resolve " + host);
    for (addrinfo* a = res; a; a = a->ai_next) {
      fd_ = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd_ >= 0 && connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
      if (fd_ >= 0) ::close(fd_), fd_ = -1;
    }
    freeaddrinfo(res);
    return fd_ >= 0 ? Status::ok_status() : io_error("cannot connect to " + host + ":" + std::to_string(port));
  }
  Status send_all(const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      const ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return io_error("send failed");
      off += static_cast<size_t>(n);
    }
    return Status::ok_status();
  }
  // More bytes into buf_; false on EOF, error or timeout.
  bool fill(double deadline) {
    pollfd p{fd_, POLLIN, 0};
    const int ms = static_cast<int>((deadline - now_seconds()) * 1e3);
    if (ms <= 0 || poll(&p, 1, ms) <= 0) return false;
    char tmp[16384];
    const ssize_t n = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }
  std::optional<std::string> line(double deadline) {
    for (;;) {
      const size_t at = buf_.find("\r\n");
      if (at != std::string::npos) {
        std::string l = buf_.substr(0, at);
        buf_.erase(0, at + 2);
        return l;
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }
  std::optional<std::string> bytes(size_t n, double deadline) {
    while (buf_.size() < n)
      if (!fill(deadline)) return std::nullopt;
    std::string b = buf_.substr(0, n);
    buf_.erase(0, n);
    return b;
  }
  std::string& buffer() { return buf_; }

 private:
  int fd_ = -1;
  std::string buf_;
};

// Hands complete SSE events ("data: ...") of `pending` to on_event; false when it says stop.
bool drain_events(std::string& pending, const std::function<bool(const std::string&)>& on_event) {
  for (;;) {
    size_t end = pending.find("\n\n");
    if (end == std::string::npos) return true;
    std::string event = pending.substr(0, end);
    pending.erase(0, end + 2);
    for (size_t at = 0; at < event.size();) {
      size_t nl = event.find('\n', at);
      if (nl == std::string::npos) nl = event.size();
      const std::string l = event.substr(at, nl - at);
      if (l.rfind("data:", 0) == 0) {
        const size_t s = l.size() > 5 && l[5] == ' ' ? 6 : 5;
        if (!on_event(l.substr(s))) return false;
      }
      at = nl + 1;
    }
  }
}

}  // namespace

Result<HttpTarget> parse_base_url(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  else if (rest.find("://") != std::string::npos) return invalid_argument("--base-url: only http:// is supported: " + url);
  HttpTarget t;
  const size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  t.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!t.base_path.empty() && t.base_path.back() == '/') t.base_path.pop_back();
  const size_t colon = hostport.rfind(':');
  t.host = hostport.substr(0, colon);
  if (colon != std::string::npos) {
    char* end = nullptr;
    const long p = std::strtol(hostport.c_str() + colon + 1, &end, 10);
    if (*end != '\0' || p <= 0 || p > 65535) return invalid_argument("--base-url: bad port in " + url);
    t.port = static_cast<int>(p);
  } else {
    t.port = 80;
  }
  if (t.host.empty()) return invalid_argument("--base-url: no host in " + url);
  return t;
}

Result<HttpReply> http_post(const HttpTarget& t, const std::string& path, const std::string& body,
                            const std::string& api_key, const std::function<bool(const std::string&)>& on_event,
                            double timeout_s) {
  Conn c;
  TK_RETURN_IF_ERROR(c.open(t.host, t.port));
  std::string req = "POST " + t.base_path + path + " HTTP/1.1\r\nHost: " + t.host + "\r\nContent-Type: application/json\r\n" +
                    "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  if (!api_key.empty()) req += "Authorization: Bearer " + api_key + "\r\n";
  TK_RETURN_IF_ERROR(c.send_all(req + "\r\n" + body));
  const double deadline = now_seconds() + timeout_s;
  auto status_line = c.line(deadline);
  if (!status_line || status_line->size() < 12) return io_error("no HTTP status line");
  HttpReply r;
  r.status = std::atoi(status_line->c_str() + 9);
  bool chunked = false, sse = false;
  int64_t length = -1;
  for (;;) {
    auto h = c.line(deadline);
    if (!h) return io_error("headers cut short");
    if (h->empty()) break;
    std::string lower = *h;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (lower.rfind("transfer-encoding:", 0) == 0 && lower.find("chunked") != std::string::npos) chunked = true;
    if (lower.rfind("content-type:", 0) == 0 && lower.find("text/event-stream") != std::string::npos) sse = true;
    if (lower.rfind("content-length:", 0) == 0) length = std::atoll(lower.c_str() + 15);
  }
  std::string pending;
  auto take = [&](const std::string& data) {
    if (!sse || !on_event) {
      r.body += data;
      return true;
    }
    pending += data;
    return drain_events(pending, on_event);
  };
  if (chunked) {
    for (;;) {
      auto size_line = c.line(deadline);
      if (!size_line) return io_error("chunked body cut short");
      const size_t n = std::strtoul(size_line->c_str(), nullptr, 16);
      if (n == 0) break;
      auto data = c.bytes(n + 2, deadline);
      if (!data) return io_error("chunk cut short");
      if (!take(data->substr(0, n))) break;
    }
  } else if (length >= 0) {
    auto data = c.bytes(static_cast<size_t>(length), deadline);
    if (!data) return io_error("body cut short");
    take(*data);
  } else {
    while (c.fill(deadline)) {
    }
    std::string all;
    all.swap(c.buffer());
    take(all);
  }
  return r;
}

}  // namespace tk::cli
