// No output lost silently, values parsed and not coerced, messages that name the culprit
// (issue 13, items 2-4), through the `tokamak` binary.
#include "cli_util.h"

namespace tk::test {
namespace {

const std::string kGen = "generate --model " + kModel + " --device cpu --temperature 0 ";

// ---- item 2: no silent data loss

TEST(CliOutputs, TokenizeRefusesToOverwriteItsInput) {
  TempDir dir("overwrite");
  const std::string in = dir.file("in.jsonl"), text = "{\"text\": \"def main():\"}\n";
  write_file(in, text);
  for (const std::string& out : {in, dir.path + "/./in.jsonl"}) {
    expect_one_error(run_cli("tokenize --tokenizer " + kModel + " --input " + in + " --output " + out),
                     "is the --input file", out);
    EXPECT_EQ(read_file(in), text);
  }
}

TEST(CliOutputs, FullDiskAndClosedStdoutAreErrorsNamingThem) {
  const std::string ppl = "perplexity --model " + kModel + " --file " + std::string(TOKAMAK_TEST_DATA) +
                          "/golden/ppl_text.txt --ctx 64 --device cpu";
  for (const std::string& redirect : {"2>&1 >/dev/full", "2>&1 >&-"}) {
    for (const std::string& args : {kGen + "--prompt hi -n 4", "tokenize --tokenizer " + kModel + " hi", ppl,
                                    std::string("--help"), std::string("--version"), std::string("help generate"),
                                    std::string("")}) {
      const CliRun r = run_cli(args, "", redirect);
      EXPECT_NE(r.code, 0) << args << " " << redirect << "\n" << r.out;
      EXPECT_NE(r.out.find("tokamak: error: stdout: write failed"), std::string::npos) << args << " " << redirect << "\n" << r.out;
    }
  }
  // The same commands succeed when stdout can be written.
  EXPECT_EQ(run_cli("tokenize --tokenizer " + kModel + " hi", "", "2>&1 >/dev/null").code, 0);
}

TEST(CliOutputs, OutputFilesAreNamedOnFailureAndNeverHalfWritten) {
  TempDir dir("outputs");
  const std::string in = dir.file("in.jsonl"), out = dir.file("out.jsonl");
  const std::string tok = "tokenize --tokenizer " + kModel + " --input " + in + " --output ";
  write_file(in, "{\"text\": \"a\"}\n{\"text\": \"b\"}\n");
  expect_one_error(run_cli(tok + "/dev/full"), "/dev/full: write failed: No space left on device", "/dev/full");
  expect_one_error(run_cli(tok + dir.file("missing/out.jsonl")), "cannot write in " + dir.file("missing"), "missing dir");
  expect_one_error(run_cli(tok + dir.path), "is a directory", "directory");
  // A failure after some lines leaves the old output whole, and no temporary file.
  write_file(out, "old\n");
  write_file(in, "{\"text\": \"a\"}\nnot json\n");
  expect_one_error(run_cli(tok + out), in + ":2: not a JSON object", "bad line 2");
  EXPECT_EQ(read_file(out), "old\n");
  const std::string ppl = "perplexity --model " + kModel + " --device cpu --ctx 64 --file ";
  write_file(dir.file("short.txt"), "too short for a window");
  expect_one_error(run_cli(ppl + dir.file("short.txt") + " --logprobs-out " + out), "fewer than one window", "ppl");
  EXPECT_EQ(read_file(out), "old\n");
  expect_one_error(run_cli(ppl + std::string(TOKAMAK_TEST_DATA) + "/golden/ppl_text.txt --logprobs-out /dev/full"),
                   "/dev/full: write failed", "ppl /dev/full");
  const auto files = std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator());
  EXPECT_EQ(files, 3) << "a temporary file was left behind";
  // A success replaces it whole.
  write_file(in, "{\"text\": \"a\"}\n");
  EXPECT_EQ(run_cli(tok + out).code, 0);
  EXPECT_EQ(read_file(out), "{\"text\":\"a\",\"ids\":[65]}\n");
}

// ---- item 3: values are parsed, not coerced

TEST(CliValues, NumbersAreParsedNotCoerced) {
  const std::pair<std::string, std::string> cases[] = {
      {"--seed -5", "--seed: must be at least 0, got -5"},
      {"--seed ''", "--seed: expected a number, got an empty value"},
      {"--seed=", "--seed: expected a number, got an empty value"},
      {"--seed 18446744073709551616", "--seed: must be at most 18446744073709551615, got 18446744073709551616"},
      {"--seed 1e3", "--seed: '1e3' is not a whole number"},
      {"-n abc", "--max-tokens: 'abc' is not a number"},
      {"-n 1.5", "--max-tokens: '1.5' is not a whole number"},
      {"-n 0", "--max-tokens: must be at least 1, got 0"},
      {"-n 99999999999", "--max-tokens: must be at most 2147483647, got 99999999999"},
      {"--max-num-seqs 0", "--max-num-seqs: must be at least 1, got 0"},
      {"--max-num-seqs x", "--max-num-seqs: 'x' is not a number"},
      {"--top-p 0", "--top-p: must be in (0, 1], got 0"},
      {"--top-p 1.01", "--top-p: must be in (0, 1], got 1.01"},
      {"--top-k -2", "--top-k: must be at least -1, got -2"},
      {"--temperature nan", "--temperature: 'nan' is not a finite number"},
      {"--temperature -1", "--temperature: must be in [0, 100], got -1"},
      {"--page-size 7", "--page-size: must be one of 1, 8, 16, 32, 64, got 7"},
      {"--device tpu", "--device: 'tpu' is not one of auto|cpu|cuda"},
  };
  for (const auto& [flag, message] : cases) {
    const CliRun r = run_cli(kGen + "--prompt hi " + flag);
    expect_one_error(r, message, flag);
    EXPECT_EQ(r.out.find("17976931348623157"), std::string::npos) << flag << ": " << r.out;  // no 309-digit range
  }
  for (const std::string seed : {"0", "18446744073709551615"})
    EXPECT_EQ(run_cli(kGen + "--prompt hi -n 2 --seed " + seed).code, 0) << seed;
}

TEST(CliValues, TopPHelpAgreesWithItsCheck) {
  const CliRun help = run_cli("generate --help");
  const size_t at = help.out.find("--top-p");
  ASSERT_NE(at, std::string::npos);
  EXPECT_NE(help.out.substr(at, 300).find("in (0, 1]"), std::string::npos) << help.out;
}

TEST(CliValues, EmptyEqualsValueDoesNotSwallowTheNextArgument) {
  expect_one_error(run_cli(kGen + "--prompt= -n 3"), "--prompt: the prompt is empty", "--prompt=");
  expect_one_error(run_cli(kGen + "-p '' -n 3"), "--prompt: the prompt is empty", "-p ''");
}

TEST(CliValues, TopKMinusOneIsOffAndLlamaCppSpellingsWork) {
  const std::string base = "generate --model " + kModel + " --device cpu --prompt 'def main():' -n 8 ";
  const CliRun off = run_cli(base + "--temperature 1 --seed 3 --top-k 0"), minus = run_cli(base + "--temperature 1 --seed 3 --top-k -1");
  EXPECT_EQ(off.code, 0) << off.out;
  EXPECT_EQ(minus.code, 0) << minus.out;
  EXPECT_EQ(generated_text(off.out), generated_text(minus.out));
  const CliRun vllm = run_cli(base + "--temperature 0.7 --seed 9 --max-model-len 64 --repetition-penalty 1.2");
  const CliRun llama = run_cli(base + "--temp 0.7 -s 9 -c 64 --repeat-penalty 1.2");
  const CliRun other = run_cli(base + "--temp 0.7 -s 10 -c 64 --repeat-penalty 1.2");
  EXPECT_EQ(llama.code, 0) << llama.out;
  EXPECT_EQ(generated_text(vllm.out), generated_text(llama.out));
  EXPECT_NE(generated_text(llama.out), generated_text(other.out));  // -s is the seed
}

// ---- item 4: messages that name the real culprit

TEST(CliMessages, GenerationConfigValuesNameTheFileAndTheField) {
  TempDir dir("genconfig");
  model_with_generation_config(kModel, dir, R"({"temperature": -1})");
  expect_one_error(run_cli("generate --model " + dir.path + " --prompt hi --device cpu"),
                   dir.file("generation_config.json") + ": temperature must be in [0, 100], got -1", "temperature");
}

TEST(CliMessages, FilesAndDirectoriesAreNotMistaken) {
  TempDir dir("kinds");
  expect_one_error(run_cli("generate --model " + kModel + "/config.json --prompt hi"), "config.json: is a file, not a directory",
                   "--model file");
  expect_one_error(run_cli("perplexity --model " + kModel + " --file " + dir.path), dir.path + ": is a directory, not a file",
                   "--file dir");
  expect_one_error(run_cli(kGen + "--prompt-file " + dir.path), dir.path + ": is a directory, not a file", "--prompt-file dir");
  expect_one_error(run_cli("tokenize --tokenizer " + kModel + " --input " + dir.path + " --output -"), "is a directory",
                   "--input dir");
  expect_one_error(run_cli("perplexity --model " + kModel + " --file " + kModel + "/config.json --logprobs-out " + dir.path),
                   "--logprobs-out " + dir.path + ": is a directory", "--logprobs-out dir");
}

TEST(CliMessages, InvalidUtf8NamesTheSourceAndTheByte) {
  TempDir dir("utf8");
  const std::string bad = dir.file("bad.txt");
  write_file(bad, "hello \xC3(");
  write_file(dir.file("bad.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \"x\xFF\"}\n");
  const std::string tok = "tokenize --tokenizer " + kModel + " ";
  expect_one_error(run_cli(kGen + "--prompt \"$(printf 'ab\\377')\""), "--prompt: invalid UTF-8 at byte 2", "--prompt");
  expect_one_error(run_cli(kGen + "--prompt-file " + bad), bad + ": invalid UTF-8 at byte 6", "--prompt-file");
  expect_one_error(run_cli(kGen + "-f - < " + bad), "stdin: invalid UTF-8 at byte 6", "-f -");
  expect_one_error(run_cli("perplexity --model " + kModel + " --file " + bad), bad + ": invalid UTF-8 at byte 6", "perplexity");
  expect_one_error(run_cli(tok + "\"$(printf '\\355\\240\\200')\""), "TEXT: invalid UTF-8 at byte 0", "surrogate");
  expect_one_error(run_cli(tok + "--input " + dir.file("bad.jsonl") + " --output -"), "bad.jsonl:2: invalid UTF-8 at byte 11",
                   "jsonl");
}

TEST(CliMessages, IgnoredInputsAreRefusedOrWarnedAbout) {
  TempDir dir("ignored");
  write_file(dir.file("in.jsonl"), "{\"text\": \"a\"}\n");
  const std::string tok = "tokenize --tokenizer " + kModel + " ";
  expect_one_error(run_cli(tok + "--input " + dir.file("in.jsonl") + " --output - hi"), "give a TEXT argument or --input, not both",
                   "TEXT and --input");
  expect_one_error(run_cli(tok + "-o " + dir.file("out.jsonl") + " hi"), "--output needs --input", "-o alone");
  expect_one_error(run_cli("bench latency --model " + kModel + " --model-config llama-3-8b --random-weights"),
                   "one of them", "--model and --model-config");
  expect_one_error(run_cli("bench latency --model " + kModel + " --random-weights"), "--random-weights is for --model-config",
                   "--random-weights with --model");
  expect_one_error(run_cli(kGen + "--prompt hi --prompt-file " + dir.file("in.jsonl")), "not both", "--prompt and -f");
  const CliRun dtype = run_cli(kGen + "--prompt hi -n 2 --dtype bfloat16");
  EXPECT_EQ(dtype.code, 0) << dtype.out;
  EXPECT_NE(dtype.out.find("[tokamak warning] --dtype bfloat16 is ignored: the CPU backend computes in float32"),
            std::string::npos) << dtype.out;
  // generation_config.json's max_new_tokens is the default --max-tokens, as in vLLM.
  TempDir model("max_new_tokens");
  model_with_generation_config(kModel, model, R"({"max_new_tokens": 5})");
  const CliRun five = run_cli("generate --model " + model.path + " --device cpu --prompt hi --ignore-eos");
  EXPECT_NE(five.out.find("generated tokens: 5,"), std::string::npos) << five.out;
  const CliRun two = run_cli("generate --model " + model.path + " --device cpu --prompt hi --ignore-eos -n 2");
  EXPECT_NE(two.out.find("generated tokens: 2,"), std::string::npos) << two.out;
}

}  // namespace
}  // namespace tk::test
