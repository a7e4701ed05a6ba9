// Small templates over every feature, with what jinja2 3.1.6 renders for them in transformers'
// configuration (tests/jinja/data/jinja_cases.json, made by tools/jinja_cases.py): the output,
// or the exception class and message.
#include <gtest/gtest.h>

#include <fstream>

#include "jinja/jinja.h"

namespace tk::jinja {
namespace {

// Messages that differ from Python's on purpose (ours say more, or Python's name internals).
bool message_may_differ(const std::string& type) { return type == "TemplateSyntaxError" || type == "SyntaxError"; }

TEST(JinjaCases, MatchJinja2) {
  std::ifstream in(std::string(TOKAMAK_SOURCE_DIR) + "/tests/jinja/data/jinja_cases.json");
  ASSERT_TRUE(in) << "tests/jinja/data/jinja_cases.json is missing";
  const Json data = Json::parse(in);
  RenderOptions options;
  options.now = fixed_clock(2024, 7, 26);
  int failures = 0;
  for (const Json& c : data["cases"]) {
    const std::string src = c["template"].get<std::string>();
    Error error;
    Result<std::string> out = invalid_argument("not rendered");
    auto tmpl = Template::parse(src, &error);
    if (tmpl.ok()) out = tmpl->render(c["variables"], options, &error);
    if (c.contains("expected")) {
      if (!out.ok()) {
        ADD_FAILURE() << Json(src).dump() << "\n  want: " << Json(c["expected"]).dump() << "\n  got error " << error.to_string();
        ++failures;
      } else if (*out != c["expected"].get<std::string>()) {
        ADD_FAILURE() << Json(src).dump() << "\n  want: " << Json(c["expected"]).dump() << "\n  got:  " << Json(*out).dump();
        ++failures;
      }
      continue;
    }
    const std::string type = c["error_type"].get<std::string>(), message = c["error"].get<std::string>();
    const std::string want_type = type == "SyntaxError" ? "TemplateSyntaxError" : type;
    if (out.ok()) {
      ADD_FAILURE() << Json(src).dump() << "\n  want " << type << ": " << message << "\n  got:  " << Json(*out).dump();
      ++failures;
    } else if (error.type != want_type ||
               (!message_may_differ(type) && c.value("same_message", true) && error.message != message)) {
      ADD_FAILURE() << Json(src).dump() << "\n  want " << type << ": " << message << "\n  got  " << error.to_string();
      ++failures;
    }
  }
  EXPECT_EQ(failures, 0) << "of " << data["cases"].size() << " cases";
}

}  // namespace
}  // namespace tk::jinja
