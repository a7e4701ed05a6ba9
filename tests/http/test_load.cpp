// Many streams at once on a few I/O threads, and shutdown with streams in flight.
#include <sys/resource.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "client.h"

namespace tk::http::test {
namespace {

// Streams every request but /health, keeping the responders for a producer thread.
struct Streams {
  std::mutex mu;
  std::vector<std::shared_ptr<Responder>> responders;
  std::atomic<int> disconnects{0};

  Handler handler() {
    return [this](Request&& request, std::shared_ptr<Responder> responder) {
      if (request.path == "/health") return responder->send({200, {}, "ok"});
      responder->on_disconnect([this] { disconnects.fetch_add(1); });
      responder->start_stream(200, {{"Content-Type", "text/event-stream"}});
      std::lock_guard lock(mu);
      responders.push_back(std::move(responder));
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return responders.size();
  }
  std::vector<std::shared_ptr<Responder>> take() {
    std::lock_guard lock(mu);
    return std::move(responders);
  }
};

// 2 fds per connection (client and server side) in this one process.
bool enough_fds(size_t needed) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
  if (limit.rlim_cur >= needed) return true;
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, needed);
  return setrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur >= needed;
}

TEST(HttpLoad, SixHundredStreamsDoNotStarveHealth) {
  constexpr int kStreams = 600;
  constexpr int kChunks = 20;
  if (!enough_fds(2 * kStreams + 100)) GTEST_SKIP() << "RLIMIT_NOFILE too low";
  Streams streams;
  auto server = start_server({}, streams.handler());
  ASSERT_TRUE(server);
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<Client>(server->port()));
    ASSERT_TRUE(clients.back()->ok()) << i;
    ASSERT_TRUE(clients.back()->send(make_request("POST", "/v1/chat/completions", "{}")));
  }
  ASSERT_TRUE(wait_for([&] { return streams.size() == kStreams; }, 10));
  auto responders = streams.take();
  std::atomic<int> rounds{0};
  std::thread producer([&] {
    for (int round = 0; round < kChunks; ++round) {
      for (auto& responder : responders) EXPECT_TRUE(responder->write("data: " + std::to_string(round) + "\n\n"));
      rounds.store(round + 1);
      sleep_ms(10);
    }
    for (auto& responder : responders) responder->end();
  });
  ASSERT_TRUE(wait_for([&] { return rounds.load() >= 5; }, 10));
  const double t0 = now();
  Client health(server->port());
  ASSERT_TRUE(health.send(make_request("GET", "/health")));
  auto reply = health.read_reply(2);
  const double latency = now() - t0;
  const bool streams_live = rounds.load() < kChunks;
  producer.join();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "ok");
  EXPECT_LT(latency, 1.0);
  EXPECT_TRUE(streams_live) << "the streams ended before /health was answered";
  std::string expected;
  for (int round = 0; round < kChunks; ++round) expected += "data: " + std::to_string(round) + "\n\n";
  for (int i = 0; i < kStreams; ++i) {
    auto stream = clients[i]->read_reply(5);
    ASSERT_TRUE(stream) << i;
    ASSERT_EQ(stream->chunks.size(), size_t{kChunks}) << i;
    ASSERT_EQ(stream->body, expected) << i;
  }
  EXPECT_EQ(streams.disconnects.load(), 0);
  std::printf("/health answered in %.1f ms beside %d live streams\n", latency * 1e3, kStreams);
}

TEST(HttpLoad, StopWithLiveStreams) {
  constexpr int kStreams = 50;
  Streams streams;
  auto server = start_server({}, streams.handler());
  ASSERT_TRUE(server);
  const int port = server->port();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.push_back(std::make_unique<Client>(port));
    ASSERT_TRUE(clients.back()->send(make_request("GET", "/stream")));
  }
  ASSERT_TRUE(wait_for([&] { return streams.size() == kStreams; }, 5));
  auto responders = streams.take();
  std::atomic<bool> quit{false};
  std::thread producer([&] {  // writes until every stream is closed (bounded in time)
    const double deadline = now() + 5;
    while (!quit.load() && now() < deadline) {
      int open = 0;
      for (auto& responder : responders) open += responder->write("data: x\n\n") ? 1 : 0;
      if (open == 0) break;
      sleep_ms(1);
    }
  });
  sleep_ms(50);
  server->stop_accepting();
  Client late(port);
  EXPECT_FALSE(late.ok() && late.send(make_request("GET", "/health")) && late.read_reply(0.5));
  const double t0 = now();
  server->stop();
  EXPECT_LT(now() - t0, 3.0);
  EXPECT_EQ(streams.disconnects.load(), kStreams);
  for (auto& responder : responders) EXPECT_TRUE(responder->closed());
  server->stop();  // idempotent
  server.reset();  // responders outlive the server: their calls are dropped safely
  for (auto& responder : responders) {
    EXPECT_FALSE(responder->write("after"));
    responder->end();
  }
  quit.store(true);
  producer.join();
  responders.clear();
  for (auto& client : clients) EXPECT_TRUE(client->wait_closed(2));
}

TEST(HttpLoad, GracefulShutdownEndsStreamsBetweenTheSteps) {
  Streams streams;
  auto server = start_server({}, streams.handler());
  ASSERT_TRUE(server);
  Client client(server->port());
  ASSERT_TRUE(client.send(make_request("GET", "/stream")));
  ASSERT_TRUE(wait_for([&] { return streams.size() == 1; }, 2));
  auto responders = streams.take();
  server->stop_accepting();
  ASSERT_TRUE(responders[0]->write("data: last\n\n"));
  responders[0]->end();
  auto reply = client.read_reply(2);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->body, "data: last\n\n");
  // A kept-alive connection is still served while draining, and told to close.
  ASSERT_TRUE(client.send(make_request("GET", "/health")));
  auto health = client.read_reply(2);
  ASSERT_TRUE(health);
  EXPECT_EQ(health->header("Connection").value_or(""), "close");
  server->stop();
  EXPECT_EQ(streams.disconnects.load(), 0);
}

}  // namespace
}  // namespace tk::http::test
