// The tokamak command line: dispatches to subcommands; every user error is one line and exit 2.
// Bare `tokamak` (and `tokamak help [command]`) prints the usage; stdout is closed and checked
// last, so no output is lost silently.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cli.h"
#include "flags.h"
#include "output.h"

// The CPU backend's OpenMP threads share the cores with the engine loop, the server's I/O threads
// and other processes: spinning idle workers (libgomp's default) slowed a loaded 2-core machine
// 4-25x. libgomp reads OMP_WAIT_POLICY once, when it loads, so the binary sets it and starts
// itself again; a user's own setting is kept.
static void prefer_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  setenv("OMP_WAIT_POLICY", "passive", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: run on as we are
}

static int fail(const tk::Status& status) {
  std::fflush(stdout);
  std::fprintf(stderr, "tokamak: error: %s\n", status.message().c_str());
  return 2;
}

// Prints the usage of the command that `words` name ("bench latency"); 0, or 2 for an unknown one.
static int print_help(CLI::App& app, const std::vector<std::string>& words) {
  CLI::App* at = &app;
  std::string parents;  // "tokamak bench" above "latency"
  for (const std::string& w : words) {
    CLI::App* sub = nullptr;
    for (CLI::App* s : at->get_subcommands({}))
      if (s->get_name() == w) sub = s;
    if (!sub) return fail(tk::invalid_argument("help: unknown command '" + w + "'"));
    parents += parents.empty() ? "tokamak" : " " + at->get_name();
    at = sub;
  }
  const tk::Status written = tk::cli::write_stdout(at->help(parents));
  return written.ok() ? 0 : fail(written);
}

int main(int argc, char** argv) {
  prefer_passive_openmp(argv);
  CLI::App app{"tokamak: an LLM inference engine for Hugging Face Llama-family checkpoints", "tokamak"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("tokamak 0.1.0"));
  std::vector<tk::cli::Command> commands = {tk::cli::add_generate(app), tk::cli::add_perplexity(app),
                                            tk::cli::add_tokenize(app), tk::cli::add_bench(app),
                                            tk::cli::add_chat_template(app), tk::cli::add_serve(app)};
  app.footer("`tokamak help COMMAND` or `tokamak COMMAND --help` for a command's flags.");
  std::string names;
  for (const auto& c : commands) names += (names.empty() ? "" : ", ") + c.app->get_name();
  if (const auto& level = tk::env_flags().log_level; level && !tk::parse_log_level(*level))
    return fail(tk::invalid_argument("TOKAMAK_LOG_LEVEL=" + *level + ": not one of debug, info, warning, error, silent"));
  std::vector<std::string> args = tk::cli::normalize_args(argc, argv);
  if (args.size() >= 2 && args[1] == "help") {
    if (int code = print_help(app, std::vector<std::string>(args.begin() + 2, args.end())); code != 0) return code;
    const tk::Status closed = tk::cli::close_stdout();
    return closed.ok() ? 0 : fail(closed);
  }
  auto known = [&](const std::string& name) {
    for (const auto& c : commands)
      if (c.app->get_name() == name) return true;
    return false;
  };
  if (args.size() > 1 && args[1][0] != '-' && !known(args[1]))
    return fail(tk::invalid_argument("unknown command '" + args[1] + "' (" + names + ", help; see --help)"));
  std::vector<char*> ptrs;
  for (std::string& a : args) ptrs.push_back(a.data());
  try {
    app.parse(static_cast<int>(ptrs.size()), ptrs.data());
  } catch (const CLI::Success& e) {  // --help, --help-all, --version: printed to stdout
    app.exit(e);
    const tk::Status closed = tk::cli::close_stdout();
    return closed.ok() ? 0 : fail(closed);
  } catch (const CLI::ParseError& e) {
    return fail(tk::invalid_argument(e.what()));
  }
  bool ran = false;
  for (auto& c : commands) {
    if (!c.app->parsed()) continue;
    ran = true;
    if (tk::Status status = c.run(); !status.ok()) return fail(status);
  }
  if (!ran)
    if (tk::Status written = tk::cli::write_stdout(app.help()); !written.ok()) return fail(written);
  if (tk::Status closed = tk::cli::close_stdout(); !closed.ok()) return fail(closed);
  return 0;
}
