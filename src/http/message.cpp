// The bytes of HTTP/1.1 messages that the transport writes itself: status line and header block,
// chunk framing, and the default error body. Plain string building, no Beast: a head is a few
// lines, and the transport owns framing (Content-Length, Transfer-Encoding, Connection).
#include <cctype>
#include <cstdio>

#include "internal.h"

namespace tk::http {

std::optional<std::string_view> Request::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (detail::iequals(key, name)) return std::string_view(value);
  }
  return std::nullopt;
}

namespace {

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
  }
}

// Headers the transport writes itself, or that would corrupt the message.
bool drop_header(const std::string& name, const std::string& value) {
  if (detail::iequals(name, "content-length") || detail::iequals(name, "transfer-encoding") ||
      detail::iequals(name, "connection")) {
    return true;
  }
  auto bad = [](const std::string& s) { return s.find_first_of("\r\n", 0) != std::string::npos; };
  if (name.empty() || bad(name) || bad(value) || name.find(':') != std::string::npos) {
    TK_LOG_WARN("http: dropping an invalid response header");
    return true;
  }
  return false;
}

}  // namespace

Response default_error_response(int status, std::string message) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = "{\"error\":{\"message\":\"" + json_escape(message) +
                  "\",\"type\":\"BadRequestError\",\"param\":null,\"code\":" + std::to_string(status) + "}}";
  return response;
}

namespace detail {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

bool status_without_body(int status) { return status < 200 || status == 204 || status == 304; }

bool header_says_close(const Headers& headers) {
  for (const auto& [name, value] : headers) {
    if (iequals(name, "connection") && iequals(value, "close")) return true;
  }
  return false;
}

std::string format_head(const HeadSpec& spec) {
  std::string head = "HTTP/1.1 " + std::to_string(spec.status) + " " + reason_phrase(spec.status) + "\r\n";
  if (spec.headers) {
    for (const auto& [name, value] : *spec.headers) {
      if (drop_header(name, value)) continue;
      head += name + ": " + value + "\r\n";
    }
  }
  if (spec.body == HeadSpec::Body::kChunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (spec.body == HeadSpec::Body::kLength && !status_without_body(spec.status)) {
    head += "Content-Length: " + std::to_string(spec.body_size) + "\r\n";
  }
  if (spec.close) {
    head += "Connection: close\r\n";
  } else if (spec.http10_keep_alive) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
  return head;
}

std::string frame_chunk(std::string_view data) {
  char size[20];
  const int n = std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  std::string framed;
  framed.reserve(static_cast<size_t>(n) + data.size() + 2);
  framed.append(size, static_cast<size_t>(n));
  framed.append(data);
  framed.append("\r\n");
  return framed;
}

}  // namespace detail
}  // namespace tk::http
