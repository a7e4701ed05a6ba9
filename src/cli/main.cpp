// The tokamak command line: dispatches to subcommands; every user error is one line and exit 2.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli.h"

// The CPU backend's OpenMP threads share the cores with the engine loop, the server's I/O threads
// and other processes: spinning idle workers (libgomp's default) slowed a loaded 2-core machine
// 4-25x. libgomp reads OMP_WAIT_POLICY once, when it loads, so the binary sets it and starts
// itself again; a user's own setting is kept.
static void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: run on as we are
}

int main(int argc, char** argv) {
  prefer_passive_openmp(argv);
  CLI::App app{"tokamak: an LLM inference engine for Hugging Face Llama-family checkpoints"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("tokamak 0.1.0"));
  std::vector<tk::cli::Command> commands = {tk::cli::add_generate(app), tk::cli::add_perplexity(app),
                                            tk::cli::add_tokenize(app), tk::cli::add_bench(app),
                                            tk::cli::add_chat_template(app)};
  auto known = [&](const char* name) {
    for (const auto& c : commands)
      if (c.app->get_name() == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::fprintf(stderr, "tokamak: error: unknown command '%s' (generate, perplexity, tokenize, bench, chat-template; see --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tokamak: error: %s\n", e.what());
    return 2;
  }
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    tk::Status status = c.run();
    if (!status.ok()) {
      std::fflush(stdout);
      std::fprintf(stderr, "tokamak: error: %s\n", status.message().c_str());
      return 2;
    }
  }
  return 0;
}
