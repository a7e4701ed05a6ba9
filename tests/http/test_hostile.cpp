// Hostile and broken clients: malformed requests, oversized headers and bodies, slow or silent
// clients. Each gets its error (or a close) and the server keeps answering normal requests.
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "client.h"

namespace tk::http::test {
namespace {

void ok_handler(Request&& request, std::shared_ptr<Responder> responder) {
  responder->send({200, {}, "ok " + request.path});
}

// A fresh connection still gets a normal answer.
void expect_alive(Server& server) {
  Client client(server.port());
  ASSERT_TRUE(client.send(make_request("GET", "/health")));
  auto reply = client.read_reply(2);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "ok /health");
}

// Sends bytes and expects `status`, then the close.
void expect_rejected(Server& server, const std::string& bytes, int status) {
  Client client(server.port());
  ASSERT_TRUE(client.send(bytes));
  auto reply = client.read_reply(2);
  ASSERT_TRUE(reply) << bytes.substr(0, 60);
  EXPECT_EQ(reply->status, status) << bytes.substr(0, 60);
  EXPECT_EQ(reply->header("Connection").value_or(""), "close");
  EXPECT_NE(reply->body.find("\"code\":" + std::to_string(status)), std::string::npos) << reply->body;
  EXPECT_TRUE(client.wait_closed(2));
}

TEST(HttpHostile, MalformedRequestsGet400) {
  auto server = start_server({}, ok_handler);
  ASSERT_TRUE(server);
  const std::string cases[] = {
      "\x01\x02garbage\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      std::string("GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n", 30),  // NUL in the path
      "GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",  // bad chunk size
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",     // no CRLF after data
      // Codings other than a lone chunked: the body's length is unknown (read as empty, its bytes
      // would be the next request).
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  };
  for (const std::string& bytes : cases) {
    expect_rejected(*server, bytes, 400);
    expect_alive(*server);
  }
}

TEST(HttpHostile, InvalidUtf8PathIsPassedOnRaw) {
  std::string seen;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    std::lock_guard lock(mu);
    seen = request.path;
    responder->send({404, {}, "no"});
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("GET /\xff\xfe\xc3 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto reply = client.read_reply(2);
  ASSERT_TRUE(reply);
  // Bytes above 0x7f are obs-text to the parser: the transport hands them on, the layer above 404s.
  EXPECT_EQ(reply->status, 404);
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, "/\xff\xfe\xc3");
}

TEST(HttpHostile, HeaderOfOneMegabyteGets431) {
  auto server = start_server({}, ok_handler);
  ASSERT_TRUE(server);
  Client client(server->port());
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  std::thread sender([&] { client.send(request); });  // may fail once the server closes
  auto reply = client.read_reply(2);
  sender.join();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 431);
  expect_alive(*server);
}

TEST(HttpHostile, HundredMegabyteBodyGets413WithoutBeingRead) {
  auto server = start_server({}, ok_handler);
  ASSERT_TRUE(server);
  for (bool expect_continue : {false, true}) {
    Client client(server->port());
    std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n";
    if (expect_continue) head += "Expect: 100-continue\r\n";
    const double t0 = now();
    ASSERT_TRUE(client.send(head + "\r\n"));
    auto reply = client.read_reply(2);
    ASSERT_TRUE(reply);
    EXPECT_EQ(reply->status, 413);
    EXPECT_LT(now() - t0, 1.0);
    // The server closes rather than reading on: sending the 100 MB fails long before the end.
    const std::string block(64 << 10, 'x');
    size_t sent = 0;
    while (sent < (size_t{100} << 20) && client.send(block)) sent += block.size();
    EXPECT_LT(sent, size_t{50} << 20);
    expect_alive(*server);
  }
}

TEST(HttpHostile, ChunkedBodyOverTheLimitGets413) {
  ServerOptions options;
  options.max_body_bytes = 1000;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i) request += "190\r\n" + std::string(400, 'y') + "\r\n";
  expect_rejected(*server, request + "0\r\n\r\n", 413);
  expect_alive(*server);
}

TEST(HttpHostile, EndlessChunkExtensionIsRefused) {
  auto server = start_server({}, ok_handler);
  ASSERT_TRUE(server);
  Client client(server->port());
  const std::string request = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=" +
                              std::string(512 << 10, 'e');  // the chunk-size line never ends
  std::thread sender([&] { client.send(request); });
  auto reply = client.read_reply(2);
  sender.join();
  ASSERT_TRUE(reply);
  EXPECT_GE(reply->status, 400);
  EXPECT_LT(reply->status, 500);
  expect_alive(*server);
}

TEST(HttpHostile, BodyThatNeverArrivesTimesOut) {
  ServerOptions options;
  options.body_timeout_s = 0.3;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  Client client(server->port());
  const double t0 = now();
  ASSERT_TRUE(client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
  auto reply = client.read_reply(3);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 408);
  EXPECT_GT(now() - t0, 0.25);
  EXPECT_LT(now() - t0, 1.5);
  EXPECT_TRUE(client.wait_closed(3));
  expect_alive(*server);
}

TEST(HttpHostile, SlowlorisHeaderTimesOut) {
  ServerOptions options;
  options.header_timeout_s = 0.3;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  Client client(server->port());
  const double t0 = now();
  ASSERT_TRUE(client.send("GET / HTTP/1.1\r\n"));
  std::optional<Reply> reply;
  for (int i = 0; i < 30 && !reply && now() - t0 < 1.5; ++i) {  // one header byte every 50 ms
    if (!client.send("X")) break;
    reply = client.read_reply(0.05);
  }
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 408);
  EXPECT_LT(now() - t0, 1.0);  // cut at the header deadline, trickling does not extend it
  EXPECT_TRUE(client.wait_closed(2));
  expect_alive(*server);
}

TEST(HttpHostile, SilentConnectionsDoNotStarveOthers) {
  ServerOptions options;
  options.header_timeout_s = 0.5;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 200; ++i) {
    silent.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(silent.back()->ok()) << i;
  }
  const double t0 = now();
  expect_alive(*server);
  EXPECT_LT(now() - t0, 0.5);
  for (auto& client : silent) EXPECT_TRUE(client->wait_closed(2));
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

TEST(HttpHostile, IdleKeepAliveIsClosed) {
  ServerOptions options;
  options.idle_keepalive_s = 0.2;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/")));
  ASSERT_TRUE(client.read_reply());
  const double t0 = now();
  EXPECT_TRUE(client.wait_closed(2));
  EXPECT_GT(now() - t0, 0.15);
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

TEST(HttpHostile, ConnectionsBeyondTheLimitGet503) {
  ServerOptions options;
  options.max_connections = 2;
  auto server = start_server(options, ok_handler);
  ASSERT_TRUE(server);
  Client a(server->port()), b(server->port());
  ASSERT_TRUE(wait_for([&] { return server->num_connections() == 2; }, 2));
  Client c(server->port());
  auto reply = c.read_reply(2);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  a.close();
  ASSERT_TRUE(wait_for([&] { return server->num_connections() == 1; }, 2));
  expect_alive(*server);
}

TEST(HttpHostile, UnsupportedExpectationGets417) {
  auto server = start_server({}, ok_handler);
  ASSERT_TRUE(server);
  expect_rejected(*server, "POST / HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n", 417);
  expect_alive(*server);
}

}  // namespace
}  // namespace tk::http::test
