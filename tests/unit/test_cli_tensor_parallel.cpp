// `tokamak generate -tp N` as a user runs it: the demo model split over 2 CPU ranks writes the
// same greedy text as unsharded; the ranks share the CPU threads however they were chosen; a
// split the model's heads do not allow is one error line.
#include "cli_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

// The generated text: every line but the log lines and the figures line.
std::string generated_text(const CliRun& r) {
  std::string kept;
  for (size_t at = 0; at < r.out.size();) {
    size_t end = r.out.find('\n', at);
    if (end == std::string::npos) end = r.out.size();
    const std::string line = r.out.substr(at, end - at);
    if (line.rfind("[tokamak", 0) != 0 && line.rfind("prompt tokens:", 0) != 0) kept += line + "\n";
    at = end + 1;
  }
  return kept;
}

TEST(CliTensorParallel, GenerateGreedyTextIsTheSameAtTp2) {
  const std::string args = "generate --model " + kDemo +
                           " --prompt 'Once upon a time' --max-tokens 24 --temperature 0 --ignore-eos --device cpu";
  const CliRun one = run_cli(args + " -tp 1"), two = run_cli(args + " -tp 2");
  const CliRun two_long = run_cli(args + " --tensor-parallel-size=2");
  for (const CliRun* r : {&one, &two, &two_long}) {
    ASSERT_EQ(r->code, 0) << r->out;
    EXPECT_NE(r->out.find("generated tokens: 24"), std::string::npos) << r->out;
  }
  EXPECT_GT(generated_text(one).size(), 20u) << one.out;
  EXPECT_EQ(generated_text(two), generated_text(one));
  EXPECT_EQ(generated_text(two_long), generated_text(one));
}

// --threads, or OMP_NUM_THREADS's count when only it is set, split over the ranks: the first
// ranks take the remainder; fewer threads than ranks give each rank one, with a warning.
TEST(CliTensorParallel, RanksShareTheThreads) {
  const std::string args = "generate --model " + kDemo + " --prompt hi --max-tokens 2 --device cpu -tp 2";
  const CliRun threads = run_cli(args + " --threads 3"), omp = run_cli(args, "OMP_NUM_THREADS=3");
  const CliRun one = run_cli(args + " --threads 1");
  for (const CliRun* r : {&threads, &omp, &one}) ASSERT_EQ(r->code, 0) << r->out;
  EXPECT_NE(threads.out.find("2 ranks on the CPU, 2+1 threads"), std::string::npos) << threads.out;
  EXPECT_NE(omp.out.find("2 ranks on the CPU, 2+1 threads"), std::string::npos) << omp.out;
  EXPECT_NE(one.out.find("2 ranks on the CPU, 1+1 threads"), std::string::npos) << one.out;
  EXPECT_NE(one.out.find("1 CPU thread for --tensor-parallel-size 2: each rank runs 1"), std::string::npos) << one.out;
  EXPECT_EQ(threads.out.find("each rank runs 1"), std::string::npos) << threads.out;
}

TEST(CliTensorParallel, SplitsTheModelCannotTakeAreOneErrorLine) {
  // The demo model has 6 attention heads: 4 ranks cannot split them.
  expect_one_error(run_cli("generate --model " + kDemo + " --prompt hi --max-tokens 2 --device cpu -tp 4"),
                   "6 attention heads", "-tp 4");
  expect_one_error(run_cli("generate --model " + kDemo + " --prompt hi --max-tokens 2 --device cpu -tp 0"),
                   "--tensor-parallel-size", "-tp 0");
}

}  // namespace
}  // namespace tk::test
