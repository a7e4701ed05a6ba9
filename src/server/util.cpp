// Errors in OpenAI's shape, the request body as JSON (checked before the parser sees it), typed
// field reading with vLLM's messages, and the worker pool.
#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

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

// Builds the ordered DOM from nlohmann's SAX events: nlohmann's own ordered parse finds each new
// key by a linear search (an object of 100k keys took 20 s), so keys are indexed per open object
// here; a repeated key replaces the value in its first position, as Python's json.loads does.
// Containers nest at most kMaxJsonDepth deep (the parser itself does not recurse, but values
// are destroyed and rendered recursively).
class DomBuilder {
 public:
  explicit DomBuilder(Json& root) : root_(root) {}
  bool too_deep = false;

  bool null() { return put(Json(nullptr)); }
  bool boolean(bool v) { return put(Json(v)); }
  bool number_integer(Json::number_integer_t v) { return put(Json(v)); }
  bool number_unsigned(Json::number_unsigned_t v) { return put(Json(v)); }
  bool number_float(Json::number_float_t v, const std::string&) { return put(Json(v)); }
  bool string(std::string& v) { return put(Json(std::move(v))); }
  bool binary(Json::binary_t&) { return false; }
  bool start_object(std::size_t) { return open(Json::object()); }
  bool key(std::string& k) {
    open_.back().key = std::move(k);
    return true;
  }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(Json::array()); }
  bool end_array() { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }

 private:
  struct Open {
    Json* value;
    std::string key;                                 // the pending key of an object
    std::unordered_map<std::string, size_t> index;  // key -> position, for objects
  };
  // Places v in the innermost open container (or as the root); returns where it now lives.
  Json* place(Json&& v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    Open& o = open_.back();
    if (o.value->is_array()) {
      o.value->get_ref<Json::array_t&>().push_back(std::move(v));
      return &o.value->get_ref<Json::array_t&>().back();
    }
    auto& members = static_cast<Json::object_t::Container&>(o.value->get_ref<Json::object_t&>());
    auto [it, fresh] = o.index.try_emplace(o.key, members.size());
    if (!fresh) {
      members[it->second].second = std::move(v);
      return &members[it->second].second;
    }
    members.emplace_back(std::move(o.key), std::move(v));
    return &members.back().second;
  }
  bool put(Json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(Json&& container) {
    if (open_.size() >= static_cast<size_t>(kMaxJsonDepth)) {
      too_deep = true;
      return false;
    }
    open_.push_back({place(std::move(container)), {}, {}});
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  Json& root_;
  std::vector<Open> open_;
};

// "application/json", in any case, with parameters ("; charset=utf-8") or not.
bool is_json_media_type(std::string_view type) {
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  if (type.size() != kJson.size()) return false;
  for (size_t i = 0; i < type.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(type[i])) != kJson[i]) return false;
  return true;
}

}  // namespace

std::optional<ApiError> parse_json_body(const http::Request& request, Json& out) {
  if (const auto type = request.header("Content-Type"); type && !is_json_media_type(*type))
    return ApiError{415, "Unsupported Media Type: only 'application/json' is allowed", ""};
  out = Json();
  DomBuilder builder(out);
  const bool ok = Json::sax_parse(request.body, &builder);
  if (builder.too_deep) {
    out = Json();
    return bad_request("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  if (!ok) {
    out = Json();
    return bad_request("the body is not valid JSON (or not valid UTF-8)");
  }
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
  // A double too small for a float keeps its sign and stays non-zero (top_p = 5e-324 is in (0, 1]).
  if (out == 0.f && d != 0) out = std::copysign(std::numeric_limits<float>::denorm_min(), static_cast<float>(d));
}

std::optional<int64_t> json_integer(const Json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<int64_t>(v.get<uint64_t>());
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && d >= -9.2e18 && d <= 9.2e18) return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

namespace {
bool is_integral(const Json& v) {
  return v.is_number_integer() || (v.is_number_float() && std::isfinite(v.get<double>()) && v.get<double>() == std::floor(v.get<double>()));
}
}  // namespace

void Fields::integer(const char* name, int& out, int64_t lo, int64_t hi) {
  const Json* v = get(name);
  if (!v) return;
  if (!is_integral(*v)) return fail(std::string(name) + ": Input should be a valid integer", name);
  const std::optional<int64_t> x = json_integer(*v);
  if (!x || *x < lo || *x > hi)
    return fail(std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v->dump(),
                name);
  out = static_cast<int>(*x);
}

void Fields::seed(const char* name, std::optional<uint64_t>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!is_integral(*v)) return fail(std::string(name) + ": Input should be a valid integer", name);
  if (v->is_number_unsigned()) {
    out = v->get<uint64_t>();
  } else if (const auto x = json_integer(*v)) {
    out = static_cast<uint64_t>(*x);  // a negative seed wraps, as numpy's does not: any integer is a seed
  } else {
    return fail(std::string(name) + " must be a 64-bit integer, got " + v->dump(), name);
  }
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
    const std::optional<int64_t> id = json_integer(t);
    if (!id || *id < 0 || *id > INT32_MAX) return fail(std::string(name) + ": Input should be a list of token ids", name);
    out.push_back(static_cast<int32_t>(*id));
  }
}

void Fields::logit_bias(const char* name, std::vector<std::pair<int32_t, float>>& out) {
  const Json* v = get(name);
  if (!v) return;
  if (!v->is_object()) return fail(std::string(name) + ": Input should be an object of token id -> bias", name);
  for (auto it = v->begin(); it != v->end(); ++it) {
    const std::string& key = it.key();
    const bool digits = !key.empty() && key.size() <= 10 &&
                        std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
    const long long id = digits ? std::stoll(key) : -1;
    if (!digits || id > INT32_MAX)
      return fail(std::string(name) + ": keys must be token ids, got '" + key.substr(0, 64) + "'", name);
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
        // A throw is a server bug (client JSON read without a type check, say): it fails that
        // request (its responder, dropped unanswered, answers 500), never the process.
        try {
          work();
        } catch (const std::exception& e) {
          ::tk::log_message(::tk::LogLevel::kError, std::string("server: a request failed with an exception: ") + e.what());
        } catch (...) {
          ::tk::log_message(::tk::LogLevel::kError, "server: a request failed with an unknown exception");
        }
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
