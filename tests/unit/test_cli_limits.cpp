// Resource-sizing values against the machine (issue 13, item 1): each command that used to
// segfault, abort in an allocation or run for minutes gives one error line naming the flag, the
// value, what it needs and what is available, fast; or runs, sized to what it uses.
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "cli_util.h"

namespace tk::test {
namespace {

const std::string kGen = "generate --model " + kDemo + " --prompt hi -n 3 --device cpu ";

double available_gib() {
  std::ifstream in("/proc/meminfo");
  for (std::string key; in >> key;) {
    double kb = 0;
    in >> kb;
    if (key == "MemAvailable:") return kb / (1 << 20);
    in.ignore(1 << 10, '\n');
  }
  return 0;
}

TEST(CliLimits, SizingValuesBeyondTheMachineAreOneErrorLine) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  struct Case {
    std::string args, env, needle;
  };
  const Case cases[] = {
      {kGen + "--threads 100000", "", "--threads 100000: too many threads, at most "},
      {kGen + "--threads 30000", "", "--threads 30000: too many threads"},
      {kGen + "--threads " + std::to_string(4 * cpus + 1), "", "4 per usable CPU"},
      {kGen, "TOKAMAK_NUM_THREADS=100000", "TOKAMAK_NUM_THREADS=100000: too many threads"},
      {kGen, "TOKAMAK_NUM_THREADS=abc", "TOKAMAK_NUM_THREADS=abc: not a whole number"},
      {kGen, "TOKAMAK_NUM_THREADS=0", "TOKAMAK_NUM_THREADS=0: must be at least 1"},
      {kGen + "--max-num-seqs 2147483647", "", "--max-num-seqs 2147483647: "},
      {kGen + "--max-num-batched-tokens 2000000", "", "--max-num-batched-tokens 2000000: must be in [16, 1048576]"},
      {kGen + "--max-model-len 4096", "", "--max-model-len 4096: longer than the model's context, 512"},
      {kGen + "--gpu-memory-utilization 0", "", "--gpu-memory-utilization: must be in (0, 1], got 0"},
      {"bench latency --model " + kDemo + " --batch 4096 --prompt-len 1048576", "",
       "--prompt-len 1048576 + --gen-len 256 = 1048832 tokens: longer than the model's context, 512"},
  };
  for (const Case& c : cases) {
    const CliRun r = run_cli(c.args, c.env);
    expect_one_error(r, c.needle, c.env + " " + c.args);
    EXPECT_LT(r.seconds, 10) << c.args;
  }
  // The memory error says what the flag needs and what is available.
  const CliRun r = run_cli(kGen + "--max-num-seqs 2147483647");
  EXPECT_NE(r.out.find("would take"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("is left of the"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TiB"), std::string::npos) << r.out;
}

// Values within the flags' ranges that used to grow memory for what the flag allows, not for what
// runs: they run in well under 10 s and a few hundred MB, or, on a smaller machine, give one
// error line naming the flag and what is available.
TEST(CliLimits, LargeButValidSizesRunSizedToWhatRuns) {
  for (const std::string flag : {"--max-num-seqs 100000", "--max-num-batched-tokens 1048576"}) {
    const CliRun r = run_cli(kGen + flag + " --temperature 0");
    if (r.code == 2) {
      expect_one_error(r, flag + ": ", flag);
      EXPECT_NE(r.out.find("available"), std::string::npos) << r.out;
    } else {
      EXPECT_EQ(r.code, 0) << flag << "\n" << r.out;
      EXPECT_NE(r.out.find("generated tokens: 3"), std::string::npos) << r.out;
    }
    EXPECT_LT(r.seconds, 10) << flag;
  }
  struct rusage usage {};
  getrusage(RUSAGE_CHILDREN, &usage);
  EXPECT_LT(usage.ru_maxrss, 2L << 20) << "KB: a child grew past 2 GB";
}

TEST(CliLimits, RandomWeightsTooLargeForTheHost) {
  if (available_gib() > 30) GTEST_SKIP() << "this machine holds llama-3-8b in float32 (30 GiB): the command would run";
  const CliRun r = run_cli("bench latency --model-config llama-3-8b --random-weights --device cpu");
  expect_one_error(r, "--model-config llama-3-8b: its weights (8.03B parameters in float32 on the CPU) would take 29.9 GiB", "");
  EXPECT_NE(r.out.find("of memory is available"), std::string::npos) << r.out;
  EXPECT_LT(r.seconds, 10);
}

TEST(CliLimits, ThreadsWithinTheBoundRun) {
  const CliRun r = run_cli(kGen + "--threads 2 --temperature 0", "TOKAMAK_NUM_THREADS=1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("generated tokens: 3"), std::string::npos) << r.out;
}

// With every CPU kept busy by another process the default is one thread, not one per core (which
// waits at every barrier for a core another process holds: a collapse on a loaded machine).
TEST(CliLimits, DefaultThreadsLeaveBusyCpusAlone) {
  cpu_set_t set;
  CPU_ZERO(&set);
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cpus = CPU_COUNT(&set);  // the CPUs tokamak may use, as it counts them
  if (cpus > 16) GTEST_SKIP() << cpus << " CPUs: too many to keep busy from a test";
  std::atomic<bool> stop{false};
  std::vector<std::thread> spinners;
  for (int i = 0; i < cpus; ++i)
    spinners.emplace_back([&stop] {
      for (volatile uint64_t x = 0; !stop.load(std::memory_order_relaxed);) x = x + 1;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const CliRun r = run_cli(kGen + "--temperature 0");
  stop = true;
  for (std::thread& t : spinners) t.join();
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("CPU backend: 1 thread (" + std::to_string(cpus) + " CPUs, "), std::string::npos) << r.out;
  // An explicit count is kept whatever the load.
  EXPECT_EQ(run_cli(kGen + "--threads 2 --temperature 0").out.find("CPU backend:"), std::string::npos);
}

// A window may fill the model's whole context (a prompt as long as the context is a request's
// limit, as in vLLM), not more.
TEST(CliLimits, PerplexityWindowsMayFillTheContext) {
  const std::string ppl = "perplexity --model " + kModel + " --device cpu --file " + std::string(TOKAMAK_TEST_DATA) +
                          "/golden/ppl_text.txt ";
  const CliRun full = run_cli(ppl + "--ctx 256");  // the golden model's max_position_embeddings
  EXPECT_EQ(full.code, 0) << full.out;
  EXPECT_NE(full.out.find("3 windows of 256"), std::string::npos) << full.out;
  EXPECT_NE(full.out.find("over 381 tokens"), std::string::npos) << full.out;  // 3 x 127 scored
  expect_one_error(run_cli(ppl + "--ctx 257"), "--ctx 257: longer than the context, 256 (max_position_embeddings of", "257");
  expect_one_error(run_cli(ppl + "--ctx 200 --max-model-len 100"), "--ctx 200: longer than the context, 100 (--max-model-len)",
                   "--max-model-len");
}

}  // namespace
}  // namespace tk::test
