// Streaming (chunked) responses written from other threads, and what the layer above learns
// when the client goes away: on_disconnect promptly, write() false, no connection left behind.
#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "client.h"

namespace tk::http::test {
namespace {

const Headers kSse = {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}};

// Keeps the responders the handler was given, and when on_disconnect fired.
struct Held {
  std::mutex mu;
  std::vector<std::shared_ptr<Responder>> responders;
  std::atomic<int> disconnects{0};
  std::atomic<double> disconnect_time{0};

  Handler handler(bool stream) {
    return [this, stream](Request&&, std::shared_ptr<Responder> responder) {
      responder->on_disconnect([this] {
        disconnect_time.store(now());
        disconnects.fetch_add(1);
      });
      if (stream) responder->start_stream(200, kSse);
      std::lock_guard lock(mu);
      responders.push_back(std::move(responder));
    };
  }
  std::shared_ptr<Responder> first() {
    std::lock_guard lock(mu);
    return responders.empty() ? nullptr : responders.front();
  }
  size_t size() {
    std::lock_guard lock(mu);
    return responders.size();
  }
  void clear() {
    std::lock_guard lock(mu);
    responders.clear();
  }
};

TEST(HttpStream, ChunksFromAProducerThreadArriveInOrder) {
  std::vector<std::thread> producers;
  std::mutex mu;
  auto server = start_server({}, [&](Request&& request, std::shared_ptr<Responder> responder) {
    if (request.path != "/stream") return responder->send({200, {}, "plain"});
    responder->start_stream(200, kSse);
    std::lock_guard lock(mu);
    producers.emplace_back([responder] {
      for (int i = 0; i < 100; ++i) EXPECT_TRUE(responder->write("data: " + std::to_string(i) + "\n\n"));
      responder->end();
      EXPECT_TRUE(responder->closed());
      EXPECT_FALSE(responder->write("late"));
    });
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("POST", "/stream", "{}")));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(reply->chunked);
  EXPECT_EQ(reply->header("Content-Type").value_or(""), "text/event-stream");
  std::string expected;
  for (int i = 0; i < 100; ++i) expected += "data: " + std::to_string(i) + "\n\n";
  EXPECT_EQ(reply->body, expected);
  // The connection is kept alive after the terminating chunk.
  ASSERT_TRUE(client.send(make_request("GET", "/after")));
  auto after = client.read_reply();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "plain");
  std::lock_guard lock(mu);
  for (auto& producer : producers) producer.join();
}

TEST(HttpStream, Http10StreamEndsWithTheClose) {
  auto server = start_server({}, [](Request&&, std::shared_ptr<Responder> responder) {
    responder->start_stream(200, kSse);
    EXPECT_TRUE(responder->write("one "));
    EXPECT_TRUE(responder->write(""));  // skipped: an empty chunk would end a chunked body
    EXPECT_TRUE(responder->write("two"));
    responder->end();
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send("GET /s HTTP/1.0\r\n\r\n"));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_FALSE(reply->chunked);
  EXPECT_EQ(reply->body, "one two");
}

TEST(HttpStream, WriteOutsideAStreamReturnsFalse) {
  auto server = start_server({}, [](Request&&, std::shared_ptr<Responder> responder) {
    EXPECT_FALSE(responder->write("before start"));
    EXPECT_FALSE(responder->closed());
    responder->send({200, {}, "ok"});
    EXPECT_TRUE(responder->closed());
    EXPECT_FALSE(responder->write("after send"));
    responder->start_stream(200, {});  // ignored, logged
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/")));
  auto reply = client.read_reply();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "ok");
}

// The client leaves mid-stream (by FIN, or by RST): on_disconnect fires at once, writes fail.
void check_disconnect_mid_stream(bool reset) {
  Held held;
  auto server = start_server({}, held.handler(true));
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("POST", "/stream", "{}")));
  ASSERT_TRUE(wait_for([&] { return held.size() == 1; }, 2));
  auto responder = held.first();
  ASSERT_TRUE(responder->write("data: 0\n\n"));
  ASSERT_TRUE(client.read_head());
  ASSERT_EQ(client.read_chunk().value_or("?"), "data: 0\n\n");
  const double left_at = now();
  if (reset) {
    client.reset();
  } else {
    client.close();
  }
  ASSERT_TRUE(wait_for([&] { return held.disconnects.load() == 1; }, 2));
  EXPECT_LT(held.disconnect_time.load() - left_at, 0.1);
  EXPECT_TRUE(responder->closed());
  EXPECT_FALSE(responder->write("data: 1\n\n"));
  responder->end();
  responder.reset();
  held.clear();
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
  EXPECT_EQ(held.disconnects.load(), 1);
}

TEST(HttpStream, DisconnectMidStreamByClose) { check_disconnect_mid_stream(false); }
TEST(HttpStream, DisconnectMidStreamByReset) { check_disconnect_mid_stream(true); }

// A non-streamed request whose answer never comes: the disconnect is noticed while waiting.
void check_disconnect_mid_wait(bool reset) {
  Held held;
  auto server = start_server({}, held.handler(false));
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("POST", "/wait", "{\"prompt\":1}")));
  ASSERT_TRUE(wait_for([&] { return held.size() == 1; }, 2));
  sleep_ms(20);
  const double left_at = now();
  if (reset) {
    client.reset();
  } else {
    client.close();
  }
  ASSERT_TRUE(wait_for([&] { return held.disconnects.load() == 1; }, 2));
  EXPECT_LT(held.disconnect_time.load() - left_at, 0.1);
  auto responder = held.first();
  EXPECT_TRUE(responder->closed());
  responder->send({200, {}, "too late"});  // harmless
  responder.reset();
  held.clear();
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

TEST(HttpStream, DisconnectMidWaitByClose) { check_disconnect_mid_wait(false); }
TEST(HttpStream, DisconnectMidWaitByReset) { check_disconnect_mid_wait(true); }

TEST(HttpStream, OnDisconnectSetLateIsStillCalled) {
  Held held;
  auto server = start_server({}, [&](Request&&, std::shared_ptr<Responder> responder) {
    std::lock_guard lock(held.mu);
    held.responders.push_back(std::move(responder));
  });
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/")));
  ASSERT_TRUE(wait_for([&] { return held.size() == 1; }, 2));
  client.close();
  auto responder = held.first();
  ASSERT_TRUE(wait_for([&] { return responder->closed(); }, 2));
  std::atomic<int> called{0};
  responder->on_disconnect([&] { called.fetch_add(1); });
  EXPECT_TRUE(wait_for([&] { return called.load() == 1; }, 2));
}

TEST(HttpStream, SlowReaderIsCutOffAtTheQueueBound) {
  ServerOptions options;
  options.max_stream_queue_bytes = 64 << 10;
  Held held;
  auto server = start_server(options, held.handler(true));
  ASSERT_TRUE(server);
  Client client(server->port());  // sends its request, then never reads
  ASSERT_TRUE(client.send(make_request("GET", "/stream")));
  ASSERT_TRUE(wait_for([&] { return held.size() == 1; }, 2));
  auto responder = held.first();
  const std::string chunk(4096, 'x');
  size_t written = 0;
  const double deadline = now() + 5;
  while (responder->write(chunk) && now() < deadline) {
    written += chunk.size();
    if (written % (1 << 20) == 0) sleep_ms(1);  // let the I/O thread fill the socket buffers
  }
  EXPECT_FALSE(responder->write(chunk));
  EXPECT_LT(written, size_t{256} << 20);  // socket buffers + the 64 KiB queue, not unbounded
  EXPECT_TRUE(wait_for([&] { return held.disconnects.load() == 1; }, 2));
  responder.reset();
  held.clear();
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

TEST(HttpStream, DroppedStreamIsCutNotEnded) {
  auto server = start_server({}, [](Request&&, std::shared_ptr<Responder> responder) {
    responder->start_stream(200, kSse);
    responder->write("partial");
  });  // the responder dies here without end()
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/")));
  ASSERT_TRUE(client.read_head());
  EXPECT_EQ(client.read_chunk().value_or("?"), "partial");
  EXPECT_FALSE(client.read_chunk(2));  // no terminating chunk: the connection closed
  client.close();                      // the server drains until then
  EXPECT_TRUE(wait_for([&] { return server->num_connections() == 0; }, 2));
}

}  // namespace
}  // namespace tk::http::test
