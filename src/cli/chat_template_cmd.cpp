// `tokamak chat-template render`: renders a Jinja chat template with variables from a JSON file,
// exactly as transformers' apply_chat_template(tokenize=False) would, to check a template (or a
// --chat-template override) without loading a model.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <ctime>

#include "cli.h"
#include "jinja/jinja.h"
#include "output.h"

namespace tk::cli {
namespace {

struct ChatTemplateFlags {
  std::string template_path;
  std::string variables_path;
  bool continue_final_message = false;
  std::string date;  // YYYY-MM-DD for strftime_now; empty = today
};

Result<jinja::Json> read_variables(const std::string& path) {
  TK_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  jinja::Json vars = jinja::Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (vars.is_discarded()) return corrupt(path + ": not valid JSON");
  if (!vars.is_object()) return invalid_argument(path + ": the variables must be a JSON object");
  return vars;
}

// "FILE:LINE: Type: message", the one error line the CLI prints.
Status template_error(const std::string& path, const jinja::Error& e) {
  std::string where = path + (e.line > 0 ? ":" + std::to_string(e.line) : "");
  return invalid_argument(where + ": " + e.type + ": " + e.message);
}

Status run_render(const ChatTemplateFlags& f) {
  TK_ASSIGN_OR_RETURN(std::string source, read_text_file(f.template_path));
  TK_ASSIGN_OR_RETURN(jinja::Json vars, read_variables(f.variables_path));
  jinja::RenderOptions options;
  if (!f.date.empty()) {
    int y = 0, m = 0, d = 0;
    if (std::sscanf(f.date.c_str(), "%4d-%2d-%2d", &y, &m, &d) != 3 || m < 1 || m > 12 || d < 1 || d > 31) {
      return invalid_argument("--date must be YYYY-MM-DD, got '" + f.date + "'");
    }
    options.now = jinja::fixed_clock(y, m, d);
  }
  jinja::Error error;
  auto tmpl = jinja::Template::parse(source, &error);
  if (!tmpl.ok()) return template_error(f.template_path, error);
  auto out = jinja::render_chat_variables(*tmpl, vars, f.continue_final_message, options, &error);
  if (!out.ok()) return template_error(f.template_path, error);
  return write_stdout(*out);
}

}  // namespace

Command add_chat_template(CLI::App& parent) {
  auto f = std::make_shared<ChatTemplateFlags>();
  CLI::App* app = parent.add_subcommand("chat-template", "check a Jinja chat template without a model");
  app->require_subcommand(0, 1);
  CLI::App* render = app->add_subcommand("render", "render a template with variables as transformers does");
  render->add_option("--template", f->template_path, "the template file (.jinja)")->required();
  render->add_option("--variables", f->variables_path,
                     "JSON object of template variables (messages, tools, add_generation_prompt, bos_token, ...)")
      ->required();
  render->add_flag("--continue-final-message", f->continue_final_message,
                   "end the render inside the last message, as apply_chat_template(continue_final_message=True)");
  render->add_option("--date", f->date, "the date strftime_now() sees, YYYY-MM-DD (default: today)");
  return {app, [f, app, render]() { return render->parsed() ? run_render(*f) : write_stdout(app->help("tokamak")); }};
}

}  // namespace tk::cli
