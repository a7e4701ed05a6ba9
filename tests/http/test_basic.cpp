// Round trips through the transport: methods, bodies (length and chunked), keep-alive,
// pipelining, 100-continue, HTTP/1.0, HEAD, answers from other threads and the 500 fallbacks.
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "client.h"

namespace tk::http::test {
namespace {

// Answers "METHOD path?query|body|x-test header" at once.
void echo(Request&& request, std::shared_ptr<Responder> responder) {
  Response response;
  response.headers.emplace_back("Content-Type", "text/plain");
  response.body = request.method + " " + request.path + "?" + request.query + "|" + request.body + "|" +
                  std::string(request.header("X-Test").value_or("-"));
  responder->send(std::move(response));
}

TEST(HttpBasic, GetRoundTrip) {
  std::string remote;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    {
      std::lock_guard lock(mu);
      remote = request.remote;
    }
    echo(std::move(request), std::move(responder));
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client.send(make_request("GET", "/v1/models?a=1&b=%20", "", {{"x-TEST", "yes"}})));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "GET /v1/models?a=1&b=%20||yes");
  EXPECT_EQ(reply->header("Content-Type").value_or(""), "text/plain");
  std::lock_guard lock(mu);
  EXPECT_EQ(remote.rfind("127.0.0.1:", 0), 0u) << remote;
}

TEST(HttpBasic, PostWithBody) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  const std::string body(100000, 'b');
  ASSERT_TRUE(client.send(make_request("POST", "/v1/completions", body)));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "POST /v1/completions?|" + body + "|-");
}

TEST(HttpBasic, KeepAliveServesSeveralRequests) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client.send(make_request("POST", "/r" + std::to_string(i), "x" + std::to_string(i))));
    auto reply = client.read_reply();
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->body, "POST /r" + std::to_string(i) + "?|x" + std::to_string(i) + "|-") << i;
    EXPECT_FALSE(reply->header("Connection"));
  }
  EXPECT_EQ(server->num_connections(), 1u);
}

TEST(HttpBasic, PipelinedRequestsAnsweredInOrder) {
  // The first answer comes late from another thread; the two requests behind it wait buffered.
  std::vector<std::thread> threads;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    if (request.path != "/slow") return echo(std::move(request), std::move(responder));
    std::lock_guard lock(mu);
    threads.emplace_back([responder] {
      sleep_ms(100);
      responder->send({200, {}, "slow"});
    });
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/slow") + make_request("POST", "/a", "1") + make_request("GET", "/b")));
  auto first = client.read_reply();
  auto second = client.read_reply();
  auto third = client.read_reply();
  ASSERT_TRUE(first && second && third);
  EXPECT_EQ(first->body, "slow");
  EXPECT_EQ(second->body, "POST /a?|1|-");
  EXPECT_EQ(third->body, "GET /b?||-");
  std::lock_guard lock(mu);
  for (auto& thread : threads) thread.join();
}

TEST(HttpBasic, RequestsArrivingWhileEachAnswerIsPending) {
  // Each request comes while the previous answer is pending (buffered, then parsed), and the
  // requests have equal lengths, so a stale re-parse of the previous one would go unnoticed
  // by length alone.
  std::vector<std::thread> threads;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    std::lock_guard lock(mu);
    threads.emplace_back([responder, path = request.path] {
      sleep_ms(30);
      responder->send({200, {}, path});
    });
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/r0")));
  for (int i = 1; i <= 4; ++i) {
    sleep_ms(10);
    ASSERT_TRUE(client.send(make_request("GET", "/r" + std::to_string(i))));
    auto reply = client.read_reply(2);
    ASSERT_TRUE(reply) << i;
    EXPECT_EQ(reply->body, "/r" + std::to_string(i - 1));
  }
  auto last = client.read_reply(2);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->body, "/r4");
  std::lock_guard lock(mu);
  for (auto& thread : threads) thread.join();
}

TEST(HttpBasic, PipelinedBytesBeyondTheBufferWaitInTheSocket) {
  // 100 requests of 1 KiB behind a slow one: more than the 64 KiB buffered while answering, so
  // reading pauses and resumes; every request is still answered, in order.
  std::vector<std::thread> threads;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    if (request.path != "/slow") return echo(std::move(request), std::move(responder));
    std::lock_guard lock(mu);
    threads.emplace_back([responder] {
      sleep_ms(100);
      responder->send({200, {}, "slow"});
    });
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  std::string requests = make_request("GET", "/slow");
  for (int i = 0; i < 100; ++i) requests += make_request("POST", "/p" + std::to_string(i), std::string(1024, 'a' + i % 26));
  std::thread sender([&] { EXPECT_TRUE(client.send(requests)); });
  auto first = client.read_reply();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "slow");
  for (int i = 0; i < 100; ++i) {
    auto reply = client.read_reply();
    ASSERT_TRUE(reply) << i;
    ASSERT_EQ(reply->body, "POST /p" + std::to_string(i) + "?|" + std::string(1024, 'a' + i % 26) + "|-") << i;
  }
  sender.join();
  std::lock_guard lock(mu);
  for (auto& thread : threads) thread.join();
}

TEST(HttpBasic, ClientThatStopsReadingIsClosedAfterTheWriteTimeout) {
  ServerOptions options;
  options.write_timeout_s = 0.3;
  std::atomic<double> answered_at{0};
  auto server = start_server(options, [&](Request&&, std::shared_ptr<Responder> responder) {
    responder->send({200, {}, std::string(64 << 20, 'z')});  // more than the socket buffers hold
    answered_at.store(now());
  });
  ASSERT_TRUE(server);
  {
    Client client(server->port());
    ASSERT_TRUE(client.send(make_request("GET", "/big")));
    ASSERT_TRUE(wait_for([&] { return answered_at.load() > 0; }, 2));
    const double t0 = answered_at.load();
    EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 3));
    EXPECT_GT(now() - t0, 0.25);
  }
}

TEST(HttpBasic, ChunkedRequestBody) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "5\r\nhello\r\n1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n"));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "POST /c?|hello world!|-");
}

TEST(HttpBasic, ExpectContinue) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  auto interim = client.read_reply(2);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(client.send("data"));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->body, "POST /e?|data|-");
}

TEST(HttpBasic, Http10ClosesAfterTheResponse) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("GET /old HTTP/1.0\r\n\r\n"));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "GET /old?||-");
  EXPECT_EQ(reply->header("Connection").value_or(""), "close");
  EXPECT_TRUE(client.wait_closed(2));
  client.close();  // the server drains until the client's close too
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

TEST(HttpBasic, ConnectionCloseFromEitherSide) {
  auto server = start_server({}, [](Request&& request, std::shared_ptr<Responder> responder) {
    Response response{200, {}, "bye"};
    if (request.path == "/server-close") response.headers.emplace_back("Connection", "close");
    responder->send(std::move(response));
  });
  ASSERT_TRUE(server);
  for (const char* path : {"/server-close", "/client-close"}) {
    Client client(server->port());
    Headers extra;
    if (std::string_view(path) == "/client-close") extra.emplace_back("Connection", "close");
    ASSERT_TRUE(client.send(make_request("GET", path, "", extra)));
    auto reply = client.read_reply();
    ASSERT_TRUE(reply) << path;
    EXPECT_EQ(reply->body, "bye");
    EXPECT_EQ(reply->header("Connection").value_or(""), "close");
    EXPECT_TRUE(client.wait_closed(2)) << path;
  }
}

TEST(HttpBasic, HeadHasNoBody) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("HEAD", "/h") + make_request("GET", "/after")));
  auto head = client.read_head();
  ASSERT_TRUE(head);
  EXPECT_EQ(head->header("Content-Length").value_or(""), "11");  // "HEAD /h?||-", not sent
  auto next = client.read_reply();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "GET /after?||-");
}

TEST(HttpBasic, FramingHeadersOfTheHandlerAreReplaced) {
  auto server = start_server({}, [](Request&&, std::shared_ptr<Responder> responder) {
    responder->send({201, {{"Content-Length", "999"}, {"X-Bad", "a\r\nInjected: 1"}, {"X-Ok", "1"}}, "abc"});
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/")));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 201);
  EXPECT_EQ(reply->body, "abc");
  EXPECT_EQ(reply->header("Content-Length").value_or(""), "3");
  EXPECT_FALSE(reply->header("Injected"));
  EXPECT_FALSE(reply->header("X-Bad"));
  EXPECT_EQ(reply->header("X-Ok").value_or(""), "1");
}

TEST(HttpBasic, DroppedResponderAndThrowingHandlerSend500) {
  auto server = start_server({}, [](Request&& request, std::shared_ptr<Responder>) {
    if (request.path == "/throw") throw std::runtime_error("boom");
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  for (const char* path : {"/drop", "/throw"}) {
    ASSERT_TRUE(client.send(make_request("GET", path)));
    auto reply = client.read_reply();
    ASSERT_TRUE(reply) << path;
    EXPECT_EQ(reply->status, 500);
    EXPECT_NE(reply->body.find("\"code\":500"), std::string::npos) << reply->body;
  }
}

TEST(HttpBasic, CustomErrorResponse) {
  ServerOptions options;
  options.error_response = [](int status, std::string message) {
    return Response{status, {{"Content-Type", "text/plain"}}, "custom " + std::to_string(status) + ": " + message};
  };
  auto server = start_server(options, echo);
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("NOT HTTP AT ALL\r\n\r\n"));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  EXPECT_EQ(reply->body.rfind("custom 400: ", 0), 0u) << reply->body;
}

TEST(HttpBasic, PostRunsWorkOnAnIoThread) {
  auto server = start_server({}, echo);
  ASSERT_TRUE(server);
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) server->post([&] { ran.fetch_add(1); });
  EXPECT_TRUE(wait_for([&] { return ran.load() == 10; }, 2));
}

TEST(HttpBasic, StartReportsAPortInUse) {
  auto first = start_server({}, echo);
  ASSERT_TRUE(first);
  ServerOptions options;
  options.port = first->port();
  auto second = Server::start(options, echo);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("cannot listen"), std::string::npos) << second.status().to_string();
}

}  // namespace
}  // namespace tk::http::test
