// JSON in (template variables) and out (Python json.dumps, the tojson filter).
#include "convert.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ustr.h"

namespace tk::jinja::detail {

namespace {

constexpr int kMaxJsonDepth = 400;

Value from_json_at(const Json& j, int depth) {
  if (depth > kMaxJsonDepth) raise(ErrorKind::kValueError, "variables nest deeper than 400 levels");
  switch (j.type()) {
    case Json::value_t::null: return Value::none();
    case Json::value_t::boolean: return Value::boolean(j.get<bool>());
    case Json::value_t::number_integer: return Value::integer(j.get<int64_t>());
    case Json::value_t::number_unsigned: {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) return Value::number(static_cast<double>(u));
      return Value::integer(static_cast<int64_t>(u));
    }
    case Json::value_t::number_float: return Value::number(j.get<double>());
    case Json::value_t::string: return Value::string(j.get<std::string>());
    case Json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const Json& item : j) items.push_back(from_json_at(item, depth + 1));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      auto d = std::make_shared<Dict>();
      for (auto it = j.begin(); it != j.end(); ++it) d->set(Value::string(it.key()), from_json_at(it.value(), depth + 1));
      return Value::dict(std::move(d));
    }
    default: return Value::none();  // binary / discarded: not produced by parsing JSON text
  }
}

void append_hex4(std::string& out, uint32_t u) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "\\u%04x", u);
  out += buf;
}

class Dumper {
 public:
  explicit Dumper(const JsonDumpOptions& o) : o_(o) {}

  void value(const Value& v, int level) {
    if (level > kMaxJsonDepth) raise(ErrorKind::kRecursionError, "maximum recursion depth exceeded while encoding a JSON object");
    switch (v.kind()) {
      case Kind::kNone: out += "null"; return;
      case Kind::kBool: out += v.as_bool() ? "true" : "false"; return;
      case Kind::kInt: out += std::to_string(v.as_int()); return;
      case Kind::kFloat: out += float_text(v.as_float()); return;
      case Kind::kString: string(v.str()); return;
      case Kind::kList: case Kind::kTuple: array(v.items(), level); return;
      case Kind::kDict: object(v.dict(), level); return;
      default: type_error("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }

  std::string out;

 private:
  static std::string float_text(double f) {
    if (std::isnan(f)) return "NaN";
    if (std::isinf(f)) return f < 0 ? "-Infinity" : "Infinity";
    return py_float_repr(f);
  }

  void string(const std::string& s) {
    out += '"';
    for (char32_t c : decode_utf8(s)) {
      switch (c) {
        case '"': out += "\\\""; continue;
        case '\\': out += "\\\\"; continue;
        case '\n': out += "\\n"; continue;
        case '\r': out += "\\r"; continue;
        case '\t': out += "\\t"; continue;
        case '\b': out += "\\b"; continue;
        case '\f': out += "\\f"; continue;
        default: break;
      }
      if (c < 0x20) {
        append_hex4(out, c);
      } else if (o_.ensure_ascii && c > 0x7E) {
        if (c > 0xFFFF) {
          uint32_t v = c - 0x10000;
          append_hex4(out, 0xD800 | (v >> 10));
          append_hex4(out, 0xDC00 | (v & 0x3FF));
        } else {
          append_hex4(out, c);
        }
      } else {
        append_utf8(out, c);
      }
    }
    out += '"';
  }

  void newline(int level) {
    if (static_cast<int64_t>(out.size()) > o_.max_bytes) {
      raise(ErrorKind::kLimitError, "the template output would exceed " + std::to_string(o_.max_bytes) + " bytes");
    }
    out += '\n';
    for (int k = 0; k < level; ++k) out += *o_.indent;
  }

  void array(const std::vector<Value>& items, int level) {
    if (items.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += o_.item_separator;
      if (o_.indent) newline(level + 1);
      value(items[k], level + 1);
    }
    if (o_.indent) newline(level);
    out += ']';
  }

  std::string key_text(const Value& key) {
    switch (key.kind()) {
      case Kind::kString: return key.str();
      case Kind::kNone: return "null";
      case Kind::kBool: return key.as_bool() ? "true" : "false";
      case Kind::kInt: return std::to_string(key.as_int());
      case Kind::kFloat: return float_text(key.as_float());
      default: type_error("keys must be str, int, float, bool or None, not " + type_name(key));
    }
  }

  void object(const Dict& d, int level) {
    if (d.size() == 0) {
      out += "{}";
      return;
    }
    std::vector<const std::pair<Value, Value>*> entries;
    for (const auto& e : d.entries()) entries.push_back(&e);
    if (o_.sort_keys) {
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto* a, const auto* b) { return less_than(a->first, b->first); });
    }
    out += '{';
    bool first = true;
    for (const auto* e : entries) {
      if (!first) out += o_.item_separator;
      first = false;
      if (o_.indent) newline(level + 1);
      string(key_text(e->first));
      out += o_.key_separator;
      value(e->second, level + 1);
    }
    if (o_.indent) newline(level);
    out += '}';
  }

  const JsonDumpOptions& o_;
};

}  // namespace

Value from_json(const Json& j) { return from_json_at(j, 0); }

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  Dumper d(options);
  d.value(v, 0);
  return std::move(d.out);
}

}  // namespace tk::jinja::detail
