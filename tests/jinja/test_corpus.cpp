// The acceptance test: every record of ../shared/data/chat_templates/expected.jsonl (54 real
// chat templates x 21 conversations, rendered by transformers) reproduced byte for byte, and
// every error record failing (with raise_exception's message verbatim).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "jinja/jinja.h"
#include "test_util.h"

namespace tk::jinja {
namespace {

const std::string kCorpus = testing::corpus_dir();

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first position where two strings differ, with some context, for failure messages.
std::string show_difference(const std::string& want, const std::string& got) {
  size_t k = 0;
  while (k < want.size() && k < got.size() && want[k] == got[k]) ++k;
  const size_t from = k > 60 ? k - 60 : 0;
  return "first difference at byte " + std::to_string(k) + "\n  want: " + Json(want.substr(from, 160)).dump() +
         "\n  got:  " + Json(got.substr(from, 160)).dump();
}

TEST(JinjaCorpus, EveryRecordMatchesTransformers) {
  TK_SKIP_WITHOUT_CORPUS(kCorpus + "/expected.jsonl");
  std::ifstream in(kCorpus + "/expected.jsonl");
  ASSERT_TRUE(in) << kCorpus << "/expected.jsonl";
  RenderOptions options;
  options.now = fixed_clock(2024, 7, 26);
  std::map<std::string, Result<Template>> templates;
  int total = 0, passed = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const Json record = Json::parse(line);
    ++total;
    const std::string name = record["template"].get<std::string>();
    auto it = templates.find(name);
    if (it == templates.end()) it = templates.emplace(name, Template::parse(read_file(kCorpus + "/templates/" + name))).first;
    const std::string where = name + " / " + record["case"].get<std::string>();
    if (!it->second.ok()) {
      ADD_FAILURE() << where << ": parse failed: " << it->second.status().message();
      continue;
    }
    Error error;
    auto out = render_chat_variables(*it->second, record["variables"], record.value("continue_final_message", false),
                                     options, &error);
    if (record.contains("error")) {
      const bool raised = record["error_type"] == "TemplateError";
      if (out.ok()) {
        ADD_FAILURE() << where << ": expected " << record["error_type"] << " (" << record["error"] << "), rendered fine";
      } else if (raised && (error.type != "TemplateError" || error.message != record["error"].get<std::string>())) {
        ADD_FAILURE() << where << ": expected TemplateError " << record["error"] << ", got " << error.to_string();
      } else {
        ++passed;
      }
      continue;
    }
    if (!out.ok()) {
      ADD_FAILURE() << where << ": " << out.status().message();
      continue;
    }
    const std::string expected = record["expected"].get<std::string>();
    if (*out != expected) {
      ADD_FAILURE() << where << ": " << show_difference(expected, *out);
      continue;
    }
    ++passed;
  }
  EXPECT_EQ(total, 1134);
  EXPECT_EQ(passed, total) << passed << " of " << total << " records reproduced";
  std::printf("[corpus] %d of %d records reproduced\n", passed, total);
}

}  // namespace
}  // namespace tk::jinja
