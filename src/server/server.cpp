// The server's lifetime: the App behind an HTTP transport; graceful shutdown ends in-flight
// requests through the engine (finish_reason "abort") before the connections close.
#include "app.h"

namespace tk::server {

struct Server::Impl {
  explicit Impl(Engine& engine, ServerConfig config) : app(engine, std::move(config)) {}
  App app;
  std::unique_ptr<http::Server> http;
  bool shut = false;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { shutdown(); }

Result<std::unique_ptr<Server>> Server::start(Engine& engine, ServerConfig config) {
  if (!engine.has_tokenizer()) return invalid_argument("serving needs a tokenizer (--tokenizer DIR)");
  auto impl = std::make_unique<Impl>(engine, std::move(config));
  App& app = impl->app;
  if (!app.config.chat_template.empty()) {
    jinja::Error error;
    auto t = jinja::Template::parse(app.config.chat_template, &error);
    if (!t.ok()) return invalid_argument("--chat-template: " + t.status().message());
    app.chat_template = std::make_shared<const jinja::Template>(std::move(*t));
  }
  http::ServerOptions options;
  options.host = app.config.host;
  options.port = app.config.port;
  options.max_body_bytes = app.config.max_body_bytes;
  options.error_response = [](int status, std::string message) { return error_response({status, std::move(message), ""}); };
  TK_ASSIGN_OR_RETURN(impl->http, http::Server::start(options, [&app](http::Request&& r, std::shared_ptr<http::Responder> resp) {
                        app.handle(std::move(r), std::move(resp));
                      }));
  app.ready = true;
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

int Server::port() const { return impl_->http->port(); }

void Server::shutdown() {
  if (!impl_ || impl_->shut) return;
  impl_->shut = true;
  App& app = impl_->app;
  app.stopping = true;
  impl_->http->stop_accepting();
  app.engine.loop().shutdown();  // every request ends now, with finish_reason "abort"
  for (int i = 0; i < 500 && app.in_flight > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the last answers leave the workers
  impl_->http->stop();
}

}  // namespace tk::server
