// Python string formatting: `"%s" % x` (the format filter) and str.format() with the format
// spec mini-language, over template values.
#pragma once

#include <string>

#include "value.h"

namespace tk::jinja::detail {

std::string percent_format(const std::string& format, const Value& args);
std::string brace_format(const std::string& format, const CallArgs& args);
// format(value, spec): one replacement field's spec ("05d", ">10", ".2f").
std::string format_spec(const Value& value, const std::string& spec);

}  // namespace tk::jinja::detail
