// Robustness: the corpus templates, mutated at random (bytes dropped, changed, Jinja fragments
// inserted), must parse or fail cleanly and render or fail cleanly, never crash or hang. Under
// -fsanitize=address,undefined this is also a memory-safety check.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "jinja/jinja.h"
#include "test_util.h"

namespace tk::jinja {
namespace {

const std::string kCorpus = testing::corpus_dir();

TEST(JinjaMutations, MutatedTemplatesNeverCrash) {
  TK_SKIP_WITHOUT_CORPUS(kCorpus + "/templates");
  std::vector<std::string> sources;
  for (const auto& entry : std::filesystem::directory_iterator(kCorpus + "/templates")) {
    std::ifstream in(entry.path());
    std::stringstream ss;
    ss << in.rdbuf();
    sources.push_back(ss.str());
  }
  std::sort(sources.begin(), sources.end());
  std::vector<Json> variables;
  std::ifstream records(kCorpus + "/expected.jsonl");
  for (std::string line; variables.size() < 40 && std::getline(records, line);) variables.push_back(Json::parse(line)["variables"]);
  ASSERT_FALSE(sources.empty());
  ASSERT_FALSE(variables.empty());
  static const char* const kFragments[] = {
      "{{", "}}", "{%", "%}", "{#", "#}", "(", ")", "[", "]", "|", " is ", " in ", "loop", "'", "-", "**", "~", ".",
      "range(99999)", "recursive", "{% endfor %}", "{% endif %}", " if ", " else ", "namespace(", "caller()", "\\",
      "{% macro m(x) %}{{ m(x) }}{% endmacro %}{{ m(1) }}", "|tojson(indent=3)", "|sort", "|map('string')", "[::-1]",
      "9223372036854775807", "-9223372036854775808", "1e308*10", "{% set ns.x = ns %}", " not ", "\n"};
  std::mt19937 rng(1234);
  RenderOptions options;
  options.now = fixed_clock(2024, 7, 26);
  options.limits.max_loop_iterations = 100000;
  options.limits.max_output_bytes = 1 << 22;
  int parsed = 0, rendered = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string s = sources[rng() % sources.size()];
    for (int m = 0, n = 1 + static_cast<int>(rng() % 4); m < n; ++m) {
      const size_t pos = s.empty() ? 0 : rng() % s.size();
      switch (rng() % 3) {
        case 0: s.erase(pos, rng() % 8); break;
        case 1: s.insert(pos, kFragments[rng() % (sizeof kFragments / sizeof *kFragments)]); break;
        default: if (!s.empty()) s[pos] = static_cast<char>(rng() % 256);
      }
    }
    auto tmpl = Template::parse(s);
    if (!tmpl.ok()) continue;
    ++parsed;
    rendered += render_chat_variables(*tmpl, variables[rng() % variables.size()], rng() % 5 == 0, options).ok();
  }
  EXPECT_GT(parsed, 500);
  EXPECT_GT(rendered, 300);
}

}  // namespace
}  // namespace tk::jinja
