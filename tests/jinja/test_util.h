// Helpers for the Jinja unit tests: render a template string with JSON variables.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "jinja/jinja.h"

namespace tk::jinja::testing {

// The render, or "ERROR <type>: <message> @<line>" so that failures read well in EXPECT_EQ.
inline std::string render(const std::string& source, const Json& vars = Json::object(), const RenderOptions& options = {}) {
  Error error;
  auto tmpl = Template::parse(source, &error);
  if (!tmpl.ok()) return "ERROR " + error.type + ": " + error.message + " @" + std::to_string(error.line);
  auto out = tmpl->render(vars, options, &error);
  if (!out.ok()) return "ERROR " + error.type + ": " + error.message + " @" + std::to_string(error.line);
  return *out;
}

inline std::string error_type(const std::string& source, const Json& vars = Json::object(), const RenderOptions& options = {}) {
  std::string out = render(source, vars, options);
  if (out.rfind("ERROR ", 0) != 0) return "(rendered: " + out + ")";
  return out.substr(6, out.find(':') - 6);
}

}  // namespace tk::jinja::testing
