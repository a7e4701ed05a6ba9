// The tokamak command line: dispatches to subcommands; every user error is one line and exit 2.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli.h"

int main(int argc, char** argv) {
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
