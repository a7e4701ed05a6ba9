// The `tokamak` binary as a user runs it: outputs on stdout, one error line and exit code 2 for
// every kind of bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout and stderr together
};

CliRun run(const std::string& args) {
  std::string cmd = std::string(TOKAMAK_BINARY_DIR) + "/tokamak " + args + " 2>&1";
  CliRun r;
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

const std::string kModel = std::string(TOKAMAK_TEST_DATA) + "/golden/llama_gqa";

TEST(Cli, GenerateStreamsTextAndReportsFigures) {
  CliRun r = run("generate --model " + kModel + " --prompt 'def main():' --max-tokens 12 --temperature 0 --device cpu");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("prompt tokens: 3, generated tokens: 12"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("time to first token"), std::string::npos);
}

TEST(Cli, SameSeedSameText) {
  const std::string args = "generate --model " + kModel + " --prompt 'def main():' --max-tokens 16 --temperature 1 --seed 5 --device cpu";
  CliRun a = run(args), b = run(args);
  EXPECT_EQ(a.code, 0);
  // The generated text: every line that is not a log line.
  auto text = [](const std::string& s) {
    std::string kept, line;
    for (size_t at = 0; at < s.size();) {
      size_t end = s.find('\n', at);
      if (end == std::string::npos) end = s.size();
      line = s.substr(at, end - at);
      if (line.rfind("[tokamak", 0) != 0 && line.rfind("prompt tokens:", 0) != 0) kept += line + "\n";
      at = end + 1;
    }
    return kept;
  };
  EXPECT_FALSE(text(a.out).empty());
  EXPECT_EQ(text(a.out), text(b.out));
}

TEST(Cli, BadInputIsOneLineAndExitCode2) {
  const std::pair<std::string, std::string> cases[] = {
      {"generate --model /nonexistent/model --prompt hi", "does not exist"},
      {"generate --model " + kModel + " --prompt hi --temperature -1", "temperature"},
      {"generate --model " + kModel + " --prompt hi --top-p 2", "top-p"},
      {"generate --model " + kModel + " --prompt ''", "prompt is empty"},
      {"generate --model " + kModel + " --prompt \"$(printf 'word %.0s' $(seq 1 200))\" --max-model-len 32",
       "--max-model-len"},
      {"generate --model " + kModel + " --prompt hi --device tpu", "device"},
      {"generate --model " + kModel + " --prompt hi --max-tokens abc", "max-tokens"},
      {"generate --prompt hi", "--model"},
      {"perplexity --model " + kModel + " --file /nonexistent.txt", "cannot open"},
      {"tokenize --tokenizer /nonexistent hi", "tokenizer"},
      {"generate --model " + kModel + " --prompt hi --kv-cache-dtype fp8_e5m2", "--kv-cache-dtype"},
      {"frobnicate", "frobnicate"},
  };
  for (const auto& [args, needle] : cases) {
    CliRun r = run(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("tokamak: error:"), std::string::npos) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
  }
}

// --kv-cache-dtype fp8: the cache is FP8 (the log says so, and warns that the checkpoint has no
// scales) and generation runs on it.
TEST(Cli, GenerateWithAnFp8KvCache) {
  CliRun r = run("generate --model " + kModel + " --prompt 'def main():' --max-tokens 8 --device cpu --kv-cache-dtype fp8");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("fp8 e4m3)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no KV cache scales"), std::string::npos) << r.out;
}

TEST(Cli, TokenizeTextAndJsonl) {
  CliRun r = run("tokenize --tokenizer " + kModel + " 'def main():'");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "[533, 2343, 924]\n");  // the golden's prompt_ids for this text
  const std::string in = ::testing::TempDir() + "/tk_in.jsonl", out = ::testing::TempDir() + "/tk_out.jsonl";
  std::ofstream(in) << "{\"text\": \"def main():\", \"id\": 7}\n{\"text\": \"\"}\n";
  r = run("tokenize --tokenizer " + kModel + " --input " + in + " --output " + out);
  EXPECT_EQ(r.code, 0) << r.out;
  std::ifstream f(out);
  std::string line;
  std::getline(f, line);
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["id"], 7);
  EXPECT_EQ(j["ids"], nlohmann::json::array({533, 2343, 924}));
  std::getline(f, line);
  EXPECT_EQ(nlohmann::json::parse(line)["ids"], nlohmann::json::array());
}

TEST(Cli, PerplexityAndLogprobsOut) {
  const std::string lp = ::testing::TempDir() + "/tk_lp.jsonl";
  CliRun r = run("perplexity --model " + kModel + " --file " + std::string(TOKAMAK_TEST_DATA) +
              "/golden/ppl_text.txt --ctx 64 --device cpu --logprobs-out " + lp);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Final estimate: PPL = "), std::string::npos);
  EXPECT_NE(r.out.find("over 465 tokens"), std::string::npos) << r.out;  // 15 windows x 31 scored tokens
  std::ifstream f(lp);
  int lines = 0;
  for (std::string line; std::getline(f, line);) ++lines;
  EXPECT_EQ(lines, 465);
}

TEST(Cli, ChatTemplateRender) {
  const std::string dir = ::testing::TempDir();
  std::ofstream(dir + "/tk_tmpl.jinja") << "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}\n"
                                           "{% endfor %}{% if messages|length > 2 %}{{ raise_exception('too long') }}{% endif %}";
  std::ofstream(dir + "/tk_vars.json") << R"({"bos_token": "<s>", "messages": [{"role": "user", "content": "hi"},
                                            {"role": "assistant", "content": "yo "}]})";
  std::ofstream(dir + "/tk_long.json") << R"({"messages": [{"role": "user"}, {"role": "user"}, {"role": "user"}]})";
  const std::string args = "chat-template render --template " + dir + "/tk_tmpl.jinja --variables ";
  CliRun r = run(args + dir + "/tk_vars.json");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "<s><user>hi\n<assistant>yo \n");
  r = run(args + dir + "/tk_vars.json --continue-final-message");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "<s><user>hi\n<assistant>yo ");
  r = run(args + dir + "/tk_long.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "tokamak: error: " + dir + "/tk_tmpl.jinja:2: TemplateError: too long\n");
  r = run(args + "/nonexistent.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("tokamak: error:"), std::string::npos) << r.out;
}

}  // namespace
