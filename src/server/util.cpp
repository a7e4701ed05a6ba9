// Errors in OpenAI's shape, the request body as JSON (checked before the parser sees it), typed
// field reading with vLLM's messages, and the worker pool.
#include <cmath>

#include "app.h"

namespace tk::server {

ApiError bad_request(std::string message, std::string param) { return {400, std::move(message), std::move(param)}; }

const char* error_type(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 413: return "RequestEntityTooLargeError";
    case 415: return "UnsupportedMediaTypeError";
    case 503: return "ServiceUnavailableError";
    default: return status >= 500 ? "InternalServerError" : "BadRequestError";
  }
}

Json error_json(const ApiError& e) {
  Json err = Json::object();
  err["message"] = e.message;
  err["type"] = error_type(e.status);
  err["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  err["code"] = e.status;
  Json j = Json::object();
  j["error"] = err;
  return j;
}

http::Response json_response(int status, const Json& body) {
  http::Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

http::Response error_response(const ApiError& e) { return json_response(e.status, error_json(e)); }

namespace {

// Nesting depth of JSON text, counted outside strings, without parsing it.
bool depth_within(const std::string& s, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

}  // namespace

std::optional<ApiError> parse_json_body(const http::Request& request, Json& out) {
  const auto type = request.header("Content-Type");
  if (type && type->find("application/json") == std::string_view::npos)
    return ApiError{415, "Unsupported Media Type: only 'application/json' is allowed", ""};
  if (!depth_within(request.body, kMaxJsonDepth))
    return bad_request("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  out = Json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) return bad_request("the body is not valid JSON (or not valid UTF-8)");
  if (!out.is_object()) return bad_request("the body must be a JSON object");
  return std::nullopt;
}

const Json* Fields::get(const char* name) const {
  auto it = j_.find(name);
  if (it == j_.end() || it->is_null()) return nullptr;
  return &*it;
}

bool Fields::has(const char* name) const { return get(name) != nullptr; }

void Fields::fail(std::string message, const char* param) {
  if (!error) error = bad_request(std::move(message), param);
}

void Fields::number(const char* name, float& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_number()) return fail(std::string(name) + ": Input should be a valid number", name);
  const double d = v->get<double>();
  if (!std::isfinite(d) || std::fabs(d) > 3.4e38) return fail(std::string(name) + ": number out of range", name);
  out = static_cast<float>(d);
}

void Fields::integer(const char* name, int& out, int64_t lo, int64_t hi) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_number_integer()) return fail(std::string(name) + ": Input should be a valid integer", name);
  if (v->is_number_unsigned() ? v->get<uint64_t>() > static_cast<uint64_t>(hi) : (v->get<int64_t>() < lo || v->get<int64_t>() > hi))
    return fail(std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v->dump(),
                name);
  out = static_cast<int>(v->get<int64_t>());
}

void Fields::seed(const char* name, std::optional<uint64_t>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_number_integer()) return fail(std::string(name) + ": Input should be a valid integer", name);
  out = v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
}

void Fields::boolean(const char* name, bool& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_boolean()) return fail(std::string(name) + ": Input should be a valid boolean", name);
  out = v->get<bool>();
}

void Fields::string(const char* name, std::string& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_string()) return fail(std::string(name) + ": Input should be a valid string", name);
  out = v->get<std::string>();
}

void Fields::stop(const char* name, std::vector<std::string>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (v->is_string()) {
    out = {v->get<std::string>()};
  } else if (v->is_array()) {
    out.clear();
    for (const Json& s : *v) {
      if (!s.is_string()) return fail(std::string(name) + ": Input should be a string or a list of strings", name);
      out.push_back(s.get<std::string>());
    }
  } else {
    return fail(std::string(name) + ": Input should be a string or a list of strings", name);
  }
  for (const std::string& s : out)
    if (s.empty()) return fail(std::string(name) + ": stop strings must not be empty", name);
}

void Fields::token_ids(const char* name, std::vector<int32_t>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_array()) return fail(std::string(name) + ": Input should be a list of integers", name);
  out.clear();
  for (const Json& t : *v) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)
      return fail(std::string(name) + ": Input should be a list of token ids", name);
    out.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
}

void Fields::logit_bias(const char* name, std::vector<std::pair<int32_t, float>>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_object()) return fail(std::string(name) + ": Input should be an object of token id -> bias", name);
  for (auto it = v->begin(); it != v->end(); ++it) {
    char* end = nullptr;
    const long long id = std::strtoll(it.key().c_str(), &end, 10);
    if (it.key().empty() || *end != '\0' || id < 0 || id > INT32_MAX)
      return fail(std::string(name) + ": keys must be token ids, got '" + it.key() + "'", name);
    if (!it.value().is_number()) return fail(std::string(name) + ": values must be numbers", name);
    out.push_back({static_cast<int32_t>(id), it.value().get<float>()});
  }
}

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i)
    threads_.emplace_back([this] {
      for (;;) {
        std::function<void()> work;
        {
          std::unique_lock<std::mutex> lock(mutex_);
          wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
          if (queue_.empty()) return;
          work = std::move(queue_.front());
          queue_.pop_front();
        }
        work();
      }
    });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
}

void WorkerPool::post(std::function<void()> work) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(work));
  }
  wake_.notify_one();
}

}  // namespace tk::server
