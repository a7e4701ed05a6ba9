// tokamak jinja: a Jinja2 template engine for chat templates. It renders a checkpoint's
// `chat_template` exactly as Hugging Face transformers does: Jinja 3.1 semantics in
// transformers' configuration (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, the `generation` tag, transformers' tojson, raise_exception, strftime_now) over
// values with Python's behaviour (str() reprs, str/list/dict methods, comparisons).
//
// A template and its variables are user input: every failure is an error value, never a crash.
// Resource limits (Limits) bound what one render may cost.
#pragma once

#include <cstdint>
#include <ctime>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/core.h"

namespace tk::jinja {

using Json = nlohmann::ordered_json;

namespace detail {
struct Program;
}

// What a render may cost. Exceeding one fails the render with a LimitError (RecursionError for
// depth, OverflowError for range(), as Jinja's sandbox says).
struct Limits {
  int max_depth = 500;                         // nested macro calls, recursive loops, statements, expressions
  int64_t max_output_bytes = 64ll << 20;       // the output, and any one string the template builds
  int64_t max_loop_iterations = 5'000'000;     // all loop iterations (and filter items) of one render
  int64_t max_range = 100'000;                 // range() length, Jinja's sandbox MAX_RANGE
};

struct RenderOptions {
  // The clock of strftime_now(); unset = the local time now.
  std::function<std::tm()> now;
  Limits limits;
};

// Why parsing or rendering failed: `type` is the Python exception class Jinja raises
// (TemplateSyntaxError, UndefinedError, TypeError, TemplateError for raise_exception, ...),
// `message` its text (raise_exception's argument verbatim), `line` the template line (0 = none).
struct Error {
  std::string type;
  std::string message;
  int line = 0;
  // "TemplateError: message (template line 12)"; the Status of a failure carries this text.
  std::string to_string() const;
};

class Template {
 public:
  // `error`, when given, receives the details of a failure.
  static Result<Template> parse(std::string_view source, Error* error = nullptr);
  // `variables` must be a JSON object: its members become the template's variables.
  Result<std::string> render(const Json& variables, const RenderOptions& options = {}, Error* error = nullptr) const;
  const std::string& source() const;

 private:
  explicit Template(std::shared_ptr<const detail::Program> program) : program_(std::move(program)) {}
  std::shared_ptr<const detail::Program> program_;
};

// ---------------------------------------------------------------------------------------------
// transformers' apply_chat_template(tokenize=False).

struct ChatInputs {
  Json messages = Json::array();  // [{role, content, tool_calls, ...}], key order kept
  Json tools = nullptr;           // list of tool schemas, or null
  Json documents = nullptr;
  bool add_generation_prompt = false;
  bool continue_final_message = false;  // the render ends inside the last (assistant) message
  Json kwargs = Json::object();         // extra variables: enable_thinking, ...
  std::optional<std::string> bos_token, eos_token;  // unset = the variable is undefined
};

// The variables transformers renders with: each message with its null-valued keys dropped and
// reasoning (`reasoning_content`, `thinking` or `reasoning`, the first non-null) given as both
// `thinking` (first key) and `reasoning_content`; tools, documents, add_generation_prompt,
// bos_token, eos_token and the kwargs.
Json chat_variables(const ChatInputs& inputs);

Result<std::string> render_chat(const Template& tmpl, const ChatInputs& inputs, const RenderOptions& options = {},
                                Error* error = nullptr);

// Renders already-prepared variables; with continue_final_message, appends transformers' tag
// to the last message's content and cuts the render at it (what apply_chat_template does).
Result<std::string> render_chat_variables(const Template& tmpl, const Json& variables, bool continue_final_message,
                                          const RenderOptions& options = {}, Error* error = nullptr);

// A clock for strftime_now fixed at the given local time (tests, reproducible renders).
std::function<std::tm()> fixed_clock(int year, int month, int day, int hour = 0, int minute = 0, int second = 0);

}  // namespace tk::jinja
