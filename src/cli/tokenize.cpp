// `tokamak tokenize`: ids for one text, or for every {"text": ...} line of a JSONL file (each
// object written back with "ids" added).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace tk::cli {
namespace {

struct TokenizeFlags {
  std::string tokenizer;
  bool add_special_tokens = false;
  std::string input, output, text;
  bool text_given = false;
};

Status tokenize_jsonl(const Tokenizer& tok, const TokenizeFlags& f) {
  std::ifstream in(f.input);
  if (!in) return io_error(f.input + ": cannot open");
  std::ofstream out(f.output);
  if (!out) return io_error(f.output + ": cannot write");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json obj = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const std::string where = f.input + ":" + std::to_string(n);
    if (obj.is_discarded() || !obj.is_object()) return corrupt(where + ": not a JSON object");
    auto text = obj.find("text");
    if (text == obj.end() || !text->is_string()) return corrupt(where + ": no string field \"text\"");
    TK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(text->get<std::string>(), f.add_special_tokens));
    obj["ids"] = ids;
    out << obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  }
  if (!out) return io_error(f.output + ": write failed");
  return Status::ok_status();
}

Status run_tokenize(const TokenizeFlags& f) {
  TK_ASSIGN_OR_RETURN(auto tok, Tokenizer::load(f.tokenizer));
  if (!f.input.empty()) {
    if (f.output.empty()) return invalid_argument("--input needs --output");
    return tokenize_jsonl(*tok, f);
  }
  if (!f.text_given) return invalid_argument("give a TEXT argument or --input/--output");
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->encode(f.text, f.add_special_tokens));
  std::string line = "[";
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
  std::printf("%s]\n", line.c_str());
  return Status::ok_status();
}

}  // namespace

Command add_tokenize(CLI::App& parent) {
  auto f = std::make_shared<TokenizeFlags>();
  CLI::App* app = parent.add_subcommand("tokenize", "token ids of a text or of a JSONL file of texts");
  app->add_option("--tokenizer", f->tokenizer, "directory with tokenizer.json (a model directory works)")->required();
  app->add_flag("--add-special-tokens", f->add_special_tokens, "add BOS/EOS as the tokenizer's post-processor says");
  app->add_option("--input,-i", f->input, "JSONL input, one {\"text\": ...} per line");
  app->add_option("--output,-o", f->output, "JSONL output: each input object with \"ids\" added");
  app->add_option("text", f->text, "text to tokenize")->each([f](const std::string&) { f->text_given = true; });
  return {app, [f] { return run_tokenize(*f); }};
}

}  // namespace tk::cli
