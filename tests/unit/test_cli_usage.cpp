// Usability (issue 13, item 5): help with defaults, usage for bare commands, quiet runs, why
// generation stopped, prompts from files and stdin, tokenize's JSONL kept line for line.
#include <nlohmann/json.hpp>

#include "cli_util.h"

namespace tk::test {
namespace {

const std::string kGen = "generate --model " + kModel + " --device cpu --temperature 0 ";

TEST(CliUsage, HelpShowsDefaults) {
  const CliRun r = run_cli("generate --help");
  EXPECT_EQ(r.code, 0);
  for (const std::string want : {"--max-num-seqs INT=256", "--max-num-batched-tokens INT=2048", "--page-size,--block-size INT=16",
                                 "--device auto|cpu|cuda=auto", "--gpu-memory-utilization FLOAT=0.90",
                                 "max_new_tokens, else 128", "--seed INT=random", "default: the model's max_position_embeddings",
                                 "--presence-penalty FLOAT=0"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  EXPECT_NE(run_cli("bench latency --help").out.find("--prompt-len INT=128"), std::string::npos);
}

TEST(CliUsage, BareCommandsAndHelpPrintUsage) {
  CliRun r = run_cli("");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Usage: tokamak [OPTIONS] [SUBCOMMAND]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("generate"), std::string::npos);
  EXPECT_NE(r.out.find("tokamak help COMMAND"), std::string::npos);
  r = run_cli("bench");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Usage: tokamak bench"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("latency"), std::string::npos) << r.out;
  r = run_cli("help generate");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("Usage: tokamak generate [OPTIONS]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--prompt-file"), std::string::npos);
  r = run_cli("help bench latency");
  EXPECT_NE(r.out.find("Usage: tokamak bench latency"), std::string::npos) << r.out;
  EXPECT_EQ(run_cli("help").out, run_cli("").out);
  expect_one_error(run_cli("help frobnicate"), "help: unknown command 'frobnicate'", "help frobnicate");
  expect_one_error(run_cli("frobnicate"), "unknown command 'frobnicate'", "frobnicate");
}

TEST(CliUsage, QuietAndSilentDropTheLoadingLines) {
  const std::string args = kGen + "--prompt hi -n 3";
  const CliRun loud = run_cli(args);
  EXPECT_NE(loud.out.find("[tokamak info] loading weights"), std::string::npos) << loud.out;
  EXPECT_NE(loud.out.find("prompt tokens:"), std::string::npos) << loud.out;
  for (const auto& [extra, env] : {std::pair<std::string, std::string>{"--quiet", ""}, {"-q", ""}, {"", "TOKAMAK_LOG_LEVEL=silent"},
                                   {"", "TOKAMAK_LOG_LEVEL=warning"}}) {
    const CliRun r = run_cli(args + " " + extra, env);
    EXPECT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.find("[tokamak"), std::string::npos) << extra << env << "\n" << r.out;
    EXPECT_EQ(r.out.find("prompt tokens:"), std::string::npos) << extra << env << "\n" << r.out;
    EXPECT_EQ(generated_text(r.out), generated_text(loud.out));
  }
  expect_one_error(run_cli(args, "TOKAMAK_LOG_LEVEL=loud"), "TOKAMAK_LOG_LEVEL=loud: not one of", "bad level");
}

TEST(CliUsage, GenerateSaysWhyItStopped) {
  // The golden model's greedy continuation of 'def main():' is 587 587 1674 ... (golden.json).
  const std::string prompt = "--prompt 'def main():' ";
  EXPECT_NE(run_cli(kGen + prompt + "-n 3").out.find("generated tokens: 3, stopped by: max tokens (3)"), std::string::npos);
  const CliRun context = run_cli(kGen + prompt + "-n 50 --max-model-len 8");
  EXPECT_NE(context.out.find("generated tokens: 5, stopped by: context limit (--max-model-len 8)"), std::string::npos)
      << context.out;
  const CliRun stop = run_cli(kGen + prompt + "-n 12 --stop derr");
  EXPECT_NE(stop.out.find("stopped by: stop string \"derr\""), std::string::npos) << stop.out;
  EXPECT_EQ(generated_text(stop.out), " | |\n");
  TempDir dir("eos");
  model_with_generation_config(kModel, dir, R"({"eos_token_id": 1674})");
  const CliRun eos = run_cli("generate --model " + dir.path + " --device cpu --temperature 0 " + prompt + "-n 12");
  EXPECT_NE(eos.out.find("generated tokens: 3, stopped by: end of sequence (token 1674"), std::string::npos) << eos.out;
}

TEST(CliUsage, PromptFromAFileOrStdin) {
  TempDir dir("prompt");
  write_file(dir.file("p.txt"), "def main():");
  const CliRun inline_prompt = run_cli(kGen + "--prompt 'def main():' -n 6");
  const CliRun file = run_cli(kGen + "--prompt-file " + dir.file("p.txt") + " -n 6");
  const CliRun stdin_prompt = run_cli(kGen + "-f - -n 6 < " + dir.file("p.txt"));
  EXPECT_EQ(file.code, 0) << file.out;
  EXPECT_EQ(stdin_prompt.code, 0) << stdin_prompt.out;
  EXPECT_NE(file.out.find("prompt tokens: 3,"), std::string::npos) << file.out;
  EXPECT_EQ(generated_text(file.out), generated_text(inline_prompt.out));
  EXPECT_EQ(generated_text(stdin_prompt.out), generated_text(inline_prompt.out));
  expect_one_error(run_cli(kGen + "-n 6"), "give --prompt TEXT or --prompt-file FILE", "no prompt");
  expect_one_error(run_cli(kGen + "-f - -n 6 < /dev/null"), "stdin: the prompt is empty", "empty stdin");
}

TEST(CliUsage, TokenizeKeepsKeyOrderBlankLinesAndTakesStdio) {
  TempDir dir("jsonl");
  const std::string in = dir.file("in.jsonl"), out = dir.file("out.jsonl");
  write_file(in, "{\"z\": 1, \"text\": \"def main():\", \"a\": [2]}\n\n   \n{\"text\": \"\", \"b\": null}\n");
  const std::string want =
      "{\"z\":1,\"text\":\"def main():\",\"a\":[2],\"ids\":[533,2343,924]}\n\n   \n{\"text\":\"\",\"b\":null,\"ids\":[]}\n";
  const std::string tok = "tokenize --tokenizer " + kModel + " ";
  EXPECT_EQ(run_cli(tok + "--input " + in + " --output " + out).code, 0);
  EXPECT_EQ(read_file(out), want);
  CliRun r = run_cli(tok + "--input - --output - < " + in, "", "2>/dev/null");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, want);
  r = run_cli(tok + "--input " + in + " -o -", "", "2>/dev/null");
  EXPECT_EQ(r.out, want);
  expect_one_error(run_cli(tok + "--input " + in), "--input needs --output", "no --output");
}

}  // namespace
}  // namespace tk::test
