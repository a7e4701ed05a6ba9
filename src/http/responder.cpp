// The Responder handed to the handler with each request. The layer above calls it from any
// thread (the engine's stream reader, worker threads); it only checks atomics and posts work to
// the connection's strand, so it never blocks and never touches the socket itself.
#include "connection.h"

namespace tk::http::detail {

namespace {
void run_callback(const std::function<void()>& callback) {
  try {
    callback();
  } catch (const std::exception& e) {
    TK_LOG_WARN(std::string("http: an on_disconnect callback threw: ") + e.what());
  } catch (...) {
    TK_LOG_WARN("http: an on_disconnect callback threw");
  }
}
}  // namespace

void Exchange::set_on_disconnect(std::function<void()> callback, const Gate& gate) {
  std::unique_lock lock(mu_);
  if (!marked_) {
    callback_ = std::move(callback);
    return;
  }
  const bool late = notified_;
  lock.unlock();
  if (late && callback) gate.post([callback = std::move(callback)] { run_callback(callback); });
}

void Exchange::mark_gone(bool notify) {
  gone.store(true);
  std::function<void()> callback;
  {
    std::lock_guard lock(mu_);
    if (marked_) return;
    marked_ = true;
    notified_ = notify;
    if (notify) callback = std::move(callback_);
    callback_ = nullptr;
  }
  if (callback) run_callback(callback);
}

namespace {

class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<Core> core, std::weak_ptr<Connection> connection, std::shared_ptr<Exchange> exchange,
                Framing framing)
      : core_(std::move(core)), connection_(std::move(connection)), exchange_(std::move(exchange)), framing_(framing) {}

  // A Responder dropped unanswered must not leave its client hanging.
  ~ResponderImpl() override {
    if (exchange_->gone.load() || exchange_->phase.load() == Phase::kDone) return;
    post([exchange = exchange_](Connection& c) { c.abandoned(exchange); });
  }

  void send(Response response) override {
    if (!claim(Phase::kPending, Phase::kDone)) {
      TK_LOG_WARN("http: send() on a request already answered; ignored");
      return;
    }
    post([exchange = exchange_, response = std::move(response)](Connection& c) mutable {
      c.send_response(exchange, std::move(response));
    });
  }

  void start_stream(int status, Headers headers) override {
    if (!claim(Phase::kPending, Phase::kStreaming)) {
      TK_LOG_WARN("http: start_stream() on a request already answered; ignored");
      return;
    }
    post([exchange = exchange_, status, headers = std::move(headers)](Connection& c) mutable {
      c.start_stream(exchange, status, std::move(headers));
    });
  }

  bool write(std::string data) override {
    if (exchange_->phase.load() != Phase::kStreaming || exchange_->gone.load()) return false;
    if (data.empty() || framing_ == Framing::kNone) return true;
    std::string bytes = framing_ == Framing::kChunked ? frame_chunk(data) : std::move(data);
    // NOTE: refused when what was queued before is over the bound, so that one large write is
    // taken whole and a burst from a fast producer is not mistaken for a slow reader.
    const size_t queued = exchange_->queued_bytes.fetch_add(bytes.size());
    if (queued > core_->options.max_stream_queue_bytes) {
      exchange_->gone.store(true);
      post([exchange = exchange_, queued](Connection& c) {
        c.abort(exchange, "the client reads too slowly (" + std::to_string(queued) + " bytes queued)");
      });
      return false;
    }
    post([exchange = exchange_, bytes = std::move(bytes)](Connection& c) mutable {
      c.write_chunk(exchange, std::move(bytes));
    });
    return true;
  }

  void end() override {
    if (!claim(Phase::kStreaming, Phase::kDone)) return;
    post([exchange = exchange_](Connection& c) { c.end_stream(exchange); });
  }

  bool closed() const override { return exchange_->gone.load() || exchange_->phase.load() == Phase::kDone; }

  void on_disconnect(std::function<void()> callback) override {
    exchange_->set_on_disconnect(std::move(callback), core_->gate);
  }

 private:
  bool claim(Phase from, Phase to) { return exchange_->phase.compare_exchange_strong(from, to); }

  // NOTE: the connection reference is taken and dropped under the gate, so that no connection is
  // destroyed here after the server stopped.
  template <typename F>
  void post(F&& work) {
    core_->gate.with_open([&] {
      std::shared_ptr<Connection> connection = connection_.lock();
      if (!connection) return;
      const asio::any_io_executor& executor = connection->executor();
      asio::post(executor, [connection = std::move(connection), work = std::forward<F>(work)]() mutable {
        work(*connection);
      });
    });
  }

  const std::shared_ptr<Core> core_;
  const std::weak_ptr<Connection> connection_;
  const std::shared_ptr<Exchange> exchange_;
  const Framing framing_;
};

}  // namespace

std::shared_ptr<Responder> make_responder(std::shared_ptr<Core> core, std::weak_ptr<Connection> connection,
                                          std::shared_ptr<Exchange> exchange, Framing framing) {
  return std::make_shared<ResponderImpl>(std::move(core), std::move(connection), std::move(exchange), framing);
}

}  // namespace tk::http::detail
