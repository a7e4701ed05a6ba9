// Typed reads of JSON fields (config.json, generation_config.json, shard indexes) that turn a
// wrong type or an out-of-range value into an error Status. nlohmann's accessors throw on a type
// mismatch; with user-controlled files every access goes through these checks instead.
// Private to src/model.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/core.h"

namespace tk::json_fields {

using nlohmann::json;

// A short rendering of a value for error messages (a hostile file may hold megabytes of it).
inline std::string brief(const json& value) {
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 48) s = s.substr(0, 45) + "...";
  return s;
}

inline Status field_error(const std::string& source, const std::string& key, const std::string& what,
                          const json& value) {
  return invalid_argument(source + ": " + key + " " + what + ", got " + brief(value));
}

// Parses `text`; malformed JSON gives kCorrupt naming `source` and the parser's position.
inline Result<json> parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return corrupt(source + ": malformed JSON: " + e.what());
  }
}

// The member `key` of `obj` when present and not null. `obj` must be an object.
inline const json* find(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// An integral JSON number (an integral float such as 8192.0 counts) as int64.
inline std::optional<int64_t> as_int64(const json& v) {
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 9007199254740992.0)
      return static_cast<int64_t>(d);
  }
  return std::nullopt;
}

// Each read leaves `*out` untouched when the key is absent or null, so defaults are preset.
inline Status read_int(const json& obj, const char* key, const std::string& source, int64_t* out,
                       int64_t min_value, int64_t max_value) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  std::optional<int64_t> i = as_int64(*v);
  if (!i) return field_error(source, key, "must be an integer", *v);
  if (*i < min_value || *i > max_value)
    return field_error(source, key,
                       "must be in [" + std::to_string(min_value) + ", " + std::to_string(max_value) + "]", *v);
  *out = *i;
  return Status::ok_status();
}

inline Status read_double(const json& obj, const char* key, const std::string& source, double* out) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  if (!v->is_number() || !std::isfinite(v->get<double>())) return field_error(source, key, "must be a number", *v);
  *out = v->get<double>();
  return Status::ok_status();
}

inline Status read_bool(const json& obj, const char* key, const std::string& source, bool* out) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  if (!v->is_boolean()) return field_error(source, key, "must be true or false", *v);
  *out = v->get<bool>();
  return Status::ok_status();
}

inline Status read_string(const json& obj, const char* key, const std::string& source, std::string* out) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  if (!v->is_string()) return field_error(source, key, "must be a string", *v);
  *out = v->get<std::string>();
  return Status::ok_status();
}

// A token id must index an int32 vocabulary.
inline std::optional<int32_t> as_token_id(const json& v) {
  std::optional<int64_t> i = as_int64(v);
  if (!i || *i < 0 || *i > std::numeric_limits<int32_t>::max()) return std::nullopt;
  return static_cast<int32_t>(*i);
}

// eos_token_id: one id or a list of ids (both occur in published checkpoints).
inline Status read_token_ids(const json& obj, const char* key, const std::string& source,
                             std::vector<int32_t>* out) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  std::vector<int32_t> ids;
  if (v->is_array()) {
    for (const json& e : *v) {
      std::optional<int32_t> id = as_token_id(e);
      if (!id) return field_error(source, key, "must hold token ids (integers in [0, 2^31))", *v);
      ids.push_back(*id);
    }
  } else {
    std::optional<int32_t> id = as_token_id(*v);
    if (!id) return field_error(source, key, "must be a token id or a list of token ids", *v);
    ids.push_back(*id);
  }
  *out = std::move(ids);
  return Status::ok_status();
}

inline Status read_token_id(const json& obj, const char* key, const std::string& source,
                            std::optional<int32_t>* out) {
  const json* v = find(obj, key);
  if (v == nullptr) return Status::ok_status();
  std::optional<int32_t> id = as_token_id(*v);
  if (!id) return field_error(source, key, "must be a token id (an integer in [0, 2^31))", *v);
  *out = id;
  return Status::ok_status();
}

}  // namespace tk::json_fields
