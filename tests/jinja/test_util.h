// Helpers for the Jinja unit tests: render a template string with JSON variables.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "jinja/jinja.h"

namespace tk::jinja::testing {

// ../shared/data/chat_templates (the transformers corpus), or under $TOKAMAK_SHARED_DIR: CI checks
// that the tests needing it skip, naming it, when it is absent (a lone clone).
inline std::string corpus_dir() {
  const char* env = std::getenv("TOKAMAK_SHARED_DIR");
  return std::string(env && *env ? env : TOKAMAK_SHARED_DIR) + "/data/chat_templates";
}
#define TK_SKIP_WITHOUT_CORPUS(path)                                                                  \
  do {                                                                                               \
    if (!std::filesystem::exists(path))                                                              \
      GTEST_SKIP() << "needs the shared test data " << ::tk::jinja::testing::corpus_dir()           \
                   << " (../shared beside the repository), which is absent";                         \
  } while (0)

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
