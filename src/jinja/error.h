// The one exception type of the interpreter. Errors unwind the tree walk as exceptions (the
// natural shape for a recursive evaluator) and are turned into tk::Status at the public API;
// the kind names the Python exception class Jinja would raise, so messages read the same.
#pragma once

#include <exception>
#include <string>

namespace tk::jinja::detail {

enum class ErrorKind {
  kTemplateSyntaxError,
  kTemplateAssertionError,
  kTemplateRuntimeError,
  kTemplateError,  // raise_exception()
  kUndefinedError,
  kSecurityError,
  kTypeError,
  kValueError,
  kKeyError,
  kIndexError,
  kAttributeError,
  kAssertionError,
  kZeroDivisionError,
  kOverflowError,
  kRecursionError,
  kLimitError,  // a tokamak resource limit (output size, loop iterations)
};

const char* error_kind_name(ErrorKind kind);

struct JinjaError : std::exception {
  JinjaError(ErrorKind k, std::string m, int l = 0) : kind(k), message(std::move(m)), line(l) {}
  const char* what() const noexcept override { return message.c_str(); }
  ErrorKind kind;
  std::string message;
  int line;  // 1-based template line; 0 until the evaluator knows it
};

[[noreturn]] inline void raise(ErrorKind kind, std::string message) { throw JinjaError(kind, std::move(message)); }
[[noreturn]] inline void type_error(std::string message) { raise(ErrorKind::kTypeError, std::move(message)); }

}  // namespace tk::jinja::detail
