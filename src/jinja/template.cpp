// tk::jinja::Template: parse once, render many times (a Template is immutable and may render
// on several threads at once); interpreter exceptions become tk::Status here.
#include "interpreter.h"
#include "convert.h"
#include "parser.h"

namespace tk::jinja {

namespace {

Error to_error(const detail::JinjaError& e) { return Error{detail::error_kind_name(e.kind), e.message, e.line}; }

template <typename T>
Result<T> fail(const Error& err, Error* out) {
  if (out) *out = err;
  return invalid_argument(err.to_string());
}

}  // namespace

std::string Error::to_string() const {
  std::string s = type + ": " + message;
  if (line > 0) s += " (template line " + std::to_string(line) + ")";
  return s;
}

Result<Template> Template::parse(std::string_view source, Error* error) {
  detail::ParseOptions options;
  options.has_filter = [](const std::string& name) { return detail::builtin_filters().count(name) > 0; };
  options.has_test = [](const std::string& name) { return detail::builtin_tests().count(name) > 0; };
  try {
    std::shared_ptr<const detail::Program> program = detail::parse_template(source, options);
    return Template(std::move(program));
  } catch (const detail::JinjaError& e) {
    return fail<Template>(to_error(e), error);
  } catch (const std::bad_alloc&) {
    return fail<Template>(Error{"MemoryError", "out of memory while parsing the template", 0}, error);
  }
}

const std::string& Template::source() const { return program_->source; }

Result<std::string> Template::render(const Json& variables, const RenderOptions& options, Error* error) const {
  if (!variables.is_object()) return fail<std::string>(Error{"TypeError", "template variables must be a JSON object", 0}, error);
  try {
    detail::Value vars = detail::from_json(variables);
    detail::Interpreter interp(options);
    return interp.render(*program_, vars);
  } catch (const detail::JinjaError& e) {
    return fail<std::string>(to_error(e), error);
  } catch (const std::bad_alloc&) {
    return fail<std::string>(Error{"MemoryError", "out of memory while rendering the template", 0}, error);
  } catch (const std::length_error&) {
    return fail<std::string>(Error{"MemoryError", "a string or list grew too large", 0}, error);
  }
}

std::function<std::tm()> fixed_clock(int year, int month, int day, int hour, int minute, int second) {
  std::tm t{};
  t.tm_year = year - 1900;
  t.tm_mon = month - 1;
  t.tm_mday = day;
  t.tm_hour = hour;
  t.tm_min = minute;
  t.tm_sec = second;
  t.tm_isdst = -1;
  std::tm copy = t;
  timegm(&copy);  // fills in tm_wday and tm_yday for %a, %A, %j
  t.tm_wday = copy.tm_wday;
  t.tm_yday = copy.tm_yday;
  return [t] { return t; };
}

}  // namespace tk::jinja
