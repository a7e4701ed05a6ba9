// The server: one io_context run by a few threads, a listener, and the registry of connections
// that stop() closes. Connections are owned by their pending operations (and, while a request is
// answered, by themselves); the registry only observes them.
#include <algorithm>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "connection.h"

namespace tk::http {

namespace asio = boost::asio;
using detail::Connection;
using detail::error_code;
using detail::tcp;

namespace {
thread_local bool tls_in_io_thread = false;
constexpr double kAcceptRetrySeconds = 0.05;  // after an accept error (EMFILE): do not spin
constexpr double kStopGraceSeconds = 2;       // stop(): closed connections wind down within this
}  // namespace

namespace detail {

void Gate::post(std::function<void()> work) const {
  with_open([&] { asio::post(executor_, std::move(work)); });
}

void Gate::close() {
  std::unique_lock lock(mu_);
  open_ = false;
}

Core::Core(ServerOptions options_in, Handler handler_in, asio::any_io_executor executor)
    : options(std::move(options_in)), handler(std::move(handler_in)), gate(std::move(executor)) {}

Response Core::error_response(int status, std::string message) const {
  if (options.error_response) {
    try {
      return options.error_response(status, message);
    } catch (const std::exception& e) {
      TK_LOG_WARN(std::string("http: the error_response callback threw: ") + e.what());
    }
  }
  return default_error_response(status, std::move(message));
}

std::string Core::error_bytes(int status, std::string message) const {
  Response response = error_response(status, std::move(message));
  HeadSpec spec;
  spec.status = status;
  spec.headers = &response.headers;
  spec.body_size = response.body.size();
  spec.close = true;
  return format_head(spec) + response.body;
}

void Core::add(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mu_);
  connections_.emplace(connection.get(), connection);
  count_.fetch_add(1);
}

void Core::remove(Connection* connection) {
  std::lock_guard lock(mu_);
  if (connections_.erase(connection) > 0) count_.fetch_sub(1);
}

std::vector<std::shared_ptr<Connection>> Core::snapshot() const {
  std::vector<std::shared_ptr<Connection>> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, weak] : connections_) {
    if (auto connection = weak.lock()) out.push_back(std::move(connection));
  }
  return out;
}

}  // namespace detail

struct Server::Impl {
  Impl(ServerOptions options, Handler handler, int threads)
      : ioc(threads),
        core(std::make_shared<detail::Core>(std::move(options), std::move(handler), ioc.get_executor())),
        acceptor(ioc),
        retry_timer(ioc) {}

  Status listen();
  void run(int num_threads);
  void accept_next();
  void on_accept(const error_code& ec, tcp::socket socket);
  void refuse(tcp::socket& socket);
  void stop_accepting();
  void stop();

  asio::io_context ioc;  // NOTE: first member, destroyed last (it destroys pending handlers)
  std::shared_ptr<detail::Core> core;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::mutex acceptor_mu;  // the acceptor and retry timer are touched by stop_accepting() too
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::vector<std::thread> threads;
  int port = 0;
  std::mutex stop_mu;
  bool stopped = false;
};

Status Server::Impl::listen() {
  const ServerOptions& o = core->options;
  const std::string where = o.host + ":" + std::to_string(o.port);
  error_code ec;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) return io_error("http: cannot resolve " + where + ": " + ec.message());
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return io_error("http: cannot listen on " + where + ": " + ec.message());
  port = acceptor.local_endpoint(ec).port();
  return Status::ok_status();
}

void Server::Impl::run(int num_threads) {
  work.emplace(ioc.get_executor());
  accept_next();
  for (int i = 0; i < num_threads; ++i) {
    threads.emplace_back([this] {
      tls_in_io_thread = true;
      for (;;) {
        try {
          ioc.run();
          return;
        } catch (const std::exception& e) {  // a last resort: user code is wrapped where it is called
          TK_LOG_WARN(std::string("http: an I/O handler threw: ") + e.what());
        }
      }
    });
  }
}

void Server::Impl::accept_next() {
  std::lock_guard lock(acceptor_mu);
  if (!acceptor.is_open()) return;
  acceptor.async_accept(asio::make_strand(ioc), [this](const error_code& ec, tcp::socket socket) {
    on_accept(ec, std::move(socket));
  });
}

void Server::Impl::on_accept(const error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted) return;
  if (ec) {
    TK_LOG_WARN("http: accept failed: " + ec.message());
    std::lock_guard lock(acceptor_mu);
    if (!acceptor.is_open()) return;
    retry_timer.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(kAcceptRetrySeconds)));
    retry_timer.async_wait([this](const error_code& wait_ec) {
      if (!wait_ec) accept_next();
    });
    return;
  }
  if (core->count() >= static_cast<size_t>(std::max(core->options.max_connections, 0))) {
    refuse(socket);
  } else {
    std::make_shared<Connection>(core, std::move(socket))->start();
  }
  accept_next();
}

// Over max_connections: a best-effort 503 without blocking, then close.
void Server::Impl::refuse(tcp::socket& socket) {
  error_code ignored;
  socket.non_blocking(true, ignored);
  const std::string bytes = core->error_bytes(503, "too many connections");
  socket.write_some(asio::buffer(bytes), ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

void Server::Impl::stop_accepting() {
  core->draining.store(true);
  std::lock_guard lock(acceptor_mu);
  error_code ignored;
  acceptor.close(ignored);
  retry_timer.cancel();
}

void Server::Impl::stop() {
  {
    std::lock_guard lock(stop_mu);
    if (stopped) return;
    stopped = true;
  }
  TK_CHECK_MSG(!tls_in_io_thread, "http: Server::stop() called from an I/O thread");
  stop_accepting();
  core->gate.close();
  for (auto& connection : core->snapshot()) {
    asio::post(connection->executor(), [connection] { connection->shutdown(); });
  }
  work.reset();
  const double deadline = now_seconds() + kStopGraceSeconds;
  while (!ioc.stopped() && now_seconds() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ioc.stop();
  for (auto& thread : threads) thread.join();
  threads.clear();
  for (auto& connection : core->snapshot()) connection->release();
}

Result<std::unique_ptr<Server>> Server::start(ServerOptions options, Handler handler) {
  if (!handler) return invalid_argument("http: no handler");
  if (options.port < 0 || options.port > 65535) return invalid_argument("http: port out of range");
  if (options.max_header_bytes == 0) return invalid_argument("http: max_header_bytes must be positive");
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = options.io_threads > 0 ? options.io_threads : std::min(4, hardware);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(handler), threads);
  TK_RETURN_IF_ERROR(impl->listen());
  impl->run(threads);
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() { stop(); }
int Server::port() const { return impl_->port; }
size_t Server::num_connections() const { return impl_->core->count(); }
void Server::stop_accepting() { impl_->stop_accepting(); }
void Server::stop() { impl_->stop(); }

void Server::post(std::function<void()> work) {
  if (!work) return;
  impl_->core->gate.post([work = std::move(work)] {
    try {
      work();
    } catch (const std::exception& e) {
      TK_LOG_WARN(std::string("http: posted work threw: ") + e.what());
    }
  });
}

}  // namespace tk::http
