// `tokamak bench`: benchmarks that need no checkpoint. Kernels and end-to-end latency live in the
// CUDA backend; without one the command says so.
#include <CLI/CLI.hpp>

#include "cli.h"

namespace tk::cli {

Command add_bench(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("bench", "benchmarks (kernels, latency)");
  app->require_subcommand(1);
  CLI::App* kernels = app->add_subcommand("kernels", "time every GPU kernel against the device's ceilings");
  CLI::App* latency = app->add_subcommand("latency", "time to first token and decode tokens/s");
  (void)kernels;
  (void)latency;
  return {app, [] { return unsupported("tokamak bench needs the CUDA backend, which is not built yet"); }};
}

}  // namespace tk::cli
