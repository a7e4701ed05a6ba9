// Helpers for the tests that run the `tokamak` binary as a user does (through the shell).
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace tk::test {

struct CliRun {
  int code = -1;    // the exit status; -1 when killed by a signal
  std::string out;  // what `redirect` captured (stdout and stderr by default)
  double seconds = 0;
};

// Runs `env tokamak args redirect` in a shell.
inline CliRun run_cli(const std::string& args, const std::string& env = "", const std::string& redirect = "2>&1") {
  const std::string cmd = env + (env.empty() ? "" : " ") + std::string(TOKAMAK_BINARY_DIR) + "/tokamak " + args + " " + redirect;
  CliRun r;
  const auto start = std::chrono::steady_clock::now();
  FILE* p = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline int count_of(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// Exit code 2, exactly one error line, no fatal or crash, and `needle` in it.
inline void expect_one_error(const CliRun& r, const std::string& needle, const std::string& what) {
  EXPECT_EQ(r.code, 2) << what << "\n" << r.out;
  EXPECT_EQ(count_of(r.out, "tokamak: error: "), 1) << what << "\n" << r.out;
  EXPECT_EQ(r.out.find("fatal"), std::string::npos) << what << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << what << ": wanted '" << needle << "' in\n" << r.out;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

// A fresh directory under the test temp dir, removed at the end.
struct TempDir {
  explicit TempDir(const std::string& name) : path(::testing::TempDir() + "/tk_" + name) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

// A copy of a model directory (its files linked) with generation_config.json replaced.
inline void model_with_generation_config(const std::string& model, const TempDir& dir, const std::string& generation) {
  for (const auto& entry : std::filesystem::directory_iterator(model))
    if (entry.path().filename() != "generation_config.json")
      std::filesystem::create_symlink(entry.path(), dir.file(entry.path().filename().string()));
  write_file(dir.file("generation_config.json"), generation);
}

const std::string kModel = std::string(TOKAMAK_TEST_DATA) + "/golden/llama_gqa";
const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

// The text generate printed: every line that is not a log line or the figures.
inline std::string generated_text(const std::string& s) {
  std::string kept;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("[tokamak", 0) != 0 && line.rfind("prompt tokens:", 0) != 0) kept += line + "\n";
  return kept;
}

}  // namespace tk::test
