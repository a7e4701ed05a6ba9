// Values to and from JSON: template variables arrive as nlohmann::ordered_json (key order
// matters: loops, tojson and str() show it), and the tojson filter is Python's json.dumps as
// transformers installs it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "value.h"

namespace tk::jinja::detail {

using Json = nlohmann::ordered_json;

Value from_json(const Json& j);

struct JsonDumpOptions {
  bool ensure_ascii = false;
  std::optional<std::string> indent;  // the text of one level; none = everything on one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  int64_t max_bytes = INT64_MAX;  // a LimitError past this
};
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

}  // namespace tk::jinja::detail
