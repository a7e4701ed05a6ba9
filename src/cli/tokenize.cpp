// `tokamak tokenize`: ids for one text, or for every {"text": ...} line of a JSONL file (each
// object written back, its keys in their order, with "ids" added; blank lines kept, so line N of
// the output is line N of the input). "-" is stdin or stdout.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "output.h"

namespace tk::cli {
namespace {

struct TokenizeFlags {
  std::string tokenizer;
  bool add_special_tokens = false;
  std::string input, output, text;
  bool text_given = false;
};

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string line = "[";
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
  return line + "]";
}

Status tokenize_jsonl(const Tokenizer& tok, const TokenizeFlags& f) {
  const bool from_stdin = f.input == "-";
  const std::string name = from_stdin ? "stdin" : f.input;
  std::ifstream file;
  if (!from_stdin) {
    if (is_directory(f.input)) return invalid_argument("--input " + f.input + ": is a directory, not a file");
    file.open(f.input, std::ios::binary);
    if (!file) return io_error("--input " + f.input + ": cannot open: " + std::strerror(errno));
  }
  if (!from_stdin && f.output != "-" && same_file(f.input, f.output))
    return invalid_argument("--output " + f.output + " is the --input file; write the output elsewhere");
  std::istream& in = from_stdin ? std::cin : file;
  TK_ASSIGN_OR_RETURN(std::unique_ptr<OutputFile> out, OutputFile::open(f.output, "--output"));
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    const std::string where = name + ":" + std::to_string(n);
    if (line.find_first_not_of(" \t\r") == std::string::npos) {
      TK_RETURN_IF_ERROR(out->write(line + "\n"));
      continue;
    }
    TK_RETURN_IF_ERROR(check_utf8(line, where));
    nlohmann::ordered_json obj = nlohmann::ordered_json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (obj.is_discarded() || !obj.is_object()) return corrupt(where + ": not a JSON object");
    auto text = obj.find("text");
    if (text == obj.end() || !text->is_string()) return corrupt(where + ": no string field \"text\"");
    TK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok.encode(text->get<std::string>(), f.add_special_tokens));
    obj["ids"] = ids;
    TK_RETURN_IF_ERROR(out->write(obj.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"));
  }
  if (in.bad()) return io_error(name + ": read failed");
  return out->commit();
}

Status run_tokenize(const TokenizeFlags& f) {
  if (!f.input.empty() && f.text_given) return invalid_argument("give a TEXT argument or --input, not both");
  if (f.input.empty() && !f.output.empty()) return invalid_argument("--output needs --input (a TEXT's ids go to stdout)");
  if (!f.input.empty() && f.output.empty()) return invalid_argument("--input needs --output ('-' for stdout)");
  if (f.input.empty() && !f.text_given) return invalid_argument("give a TEXT argument or --input/--output");
  if (f.text_given) TK_RETURN_IF_ERROR(check_utf8(f.text, "TEXT"));
  TK_ASSIGN_OR_RETURN(auto tok, Tokenizer::load(f.tokenizer));
  if (!f.input.empty()) return tokenize_jsonl(*tok, f);
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->encode(f.text, f.add_special_tokens));
  return write_stdout(ids_text(ids) + "\n");
}

}  // namespace

Command add_tokenize(CLI::App& parent) {
  auto f = std::make_shared<TokenizeFlags>();
  CLI::App* app = parent.add_subcommand("tokenize", "token ids of a text or of a JSONL file of texts");
  app->add_option("--tokenizer", f->tokenizer, "directory with tokenizer.json (a model directory works), or the file")
      ->required()
      ->type_name("PATH");
  app->add_flag("--add-special-tokens", f->add_special_tokens, "add BOS/EOS as the tokenizer's post-processor says");
  app->add_option("--input,-i", f->input, "JSONL input, one {\"text\": ...} per line ('-' for stdin)")->type_name("FILE");
  app->add_option("--output,-o", f->output, "JSONL output: each input object with \"ids\" added ('-' for stdout)")
      ->type_name("FILE");
  app->add_option("text", f->text, "text to tokenize")->each([f](const std::string&) { f->text_given = true; });
  return {app, [f] { return run_tokenize(*f); }};
}

}  // namespace tk::cli
