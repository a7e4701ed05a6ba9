// Encode throughput of the tokenizer on one core, the number to hold against HF `tokenizers`
// (the bar is 10 MB/s for Llama 3). Corpora are read from this machine:
//   english: the parity texts plus plain-text files under /usr/share/doc (copyright/license texts,
//            READMEs, *.txt), capped at --max-mb;
//   code:    Python standard-library sources (*.py) from --code-dir, capped at --max-mb.
// Each file is one encode() call, as a server sees one prompt per request. The first pass runs
// with an empty word cache ("cold"); the best of the following passes is "warm". Times are the
// thread's CPU time, so other processes on the machine do not skew the figure.
//
//   bench_tokenizer [--tokenizer DIR] [--doc-dir DIR] [--code-dir DIR] [--max-mb N] [--passes N]
#include <time.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;

// CPU time of this thread: "MB/s on one core" without the noise of other processes sharing it.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Options {
  std::string tokenizer = std::string(TOKAMAK_SHARED_DIR) + "/data/tokenizers/llama3";
  std::string doc_dir = "/usr/share/doc";
  std::string code_dir = "/root/.pyenv/versions/3.11.7/lib/python3.11";
  double max_mb = 8;
  int passes = 4;
};

struct Corpus {
  std::string name;
  std::vector<std::string> docs;
  size_t bytes = 0;
  size_t files = 0;
};

bool add_doc(Corpus& c, std::string text, double max_mb) {
  if (c.bytes >= max_mb * 1e6) return false;
  if (text.empty()) return true;
  c.bytes += text.size();
  c.docs.push_back(std::move(text));
  ++c.files;
  return true;
}

// Recursively collects files accepted by `want`, in sorted order for reproducibility.
void add_files(Corpus& c, const std::string& dir, bool (*want)(const fs::path&), double max_mb) {
  std::vector<fs::path> paths;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec) && want(it->path())) paths.push_back(it->path());
  }
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    auto text = tk::read_text_file(p.string());
    if (text.ok() && !add_doc(c, std::move(text).value(), max_mb)) break;
  }
}

bool is_doc_text(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "copyright" || name == "README" || p.extension() == ".txt";
}
bool is_python(const fs::path& p) {
  return p.extension() == ".py" && p.string().find("site-packages") == std::string::npos;
}

std::vector<std::string> parity_texts(const std::string& tokenizer_name) {
  std::vector<std::string> texts;
  gzFile f = gzopen((std::string(TOKAMAK_SHARED_DIR) + "/data/tokenizers/parity.jsonl.gz").c_str(), "rb");
  if (!f) return texts;
  std::string all;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(f, buffer, sizeof(buffer))) > 0) all.append(buffer, n);
  gzclose(f);
  for (size_t pos = 0, end; pos < all.size(); pos = end + 1) {
    end = all.find('\n', pos);
    if (end == std::string::npos) end = all.size();
    auto j = nlohmann::json::parse(all.substr(pos, end - pos), nullptr, false);
    if (!j.is_discarded() && j.value("tokenizer", "") == tokenizer_name) texts.push_back(j.value("text", ""));
  }
  return texts;
}

// Seconds for one pass over the corpus; -1 on an encode error.
double encode_pass(const tk::Tokenizer& tok, const Corpus& c, size_t* tokens) {
  const double t0 = cpu_seconds();
  size_t count = 0;
  for (const std::string& doc : c.docs) {
    auto ids = tok.encode(doc, false);
    if (!ids.ok()) {
      std::fprintf(stderr, "encode failed: %s\n", ids.status().to_string().c_str());
      return -1;
    }
    count += ids->size();
  }
  *tokens = count;
  return cpu_seconds() - t0;
}

double decode_pass(const tk::Tokenizer& tok, const Corpus& c, size_t* out_bytes) {
  std::vector<std::vector<int32_t>> all;
  for (const std::string& doc : c.docs) all.push_back(tok.encode(doc, false).value());
  const double t0 = cpu_seconds();
  size_t bytes = 0;
  for (const auto& ids : all) bytes += tok.decode(ids, false).size();
  *out_bytes = bytes;
  return cpu_seconds() - t0;
}

int run(const Options& opt) {
  const double t0 = tk::now_seconds();
  auto loaded = tk::Tokenizer::load(opt.tokenizer);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().to_string().c_str());
    return 1;
  }
  const tk::Tokenizer& tok = **loaded;
  std::printf("tokenizer %s: vocab %d, loaded in %.2f s\n", opt.tokenizer.c_str(), tok.vocab_size(), tk::now_seconds() - t0);
  Corpus english{"english"}, code{"code"};
  for (std::string& t : parity_texts(fs::path(opt.tokenizer).filename().string())) add_doc(english, std::move(t), opt.max_mb);
  add_files(english, opt.doc_dir, is_doc_text, opt.max_mb);
  add_files(code, opt.code_dir, is_python, opt.max_mb);
  for (const Corpus* c : {&english, &code}) {
    if (c->docs.empty()) continue;
    size_t tokens = 0;
    const double cold = encode_pass(tok, *c, &tokens);
    if (cold < 0) return 1;
    double warm = 1e30;
    for (int p = 1; p < opt.passes; ++p) warm = std::min(warm, encode_pass(tok, *c, &tokens));
    size_t decoded = 0;
    const double dec = decode_pass(tok, *c, &decoded);
    std::printf("%-8s %6zu docs %7.2f MB %8zu tokens (%.2f B/token) | encode cold %6.1f MB/s, warm %6.1f MB/s | decode %6.1f MB/s\n",
                c->name.c_str(), c->files, c->bytes / 1e6, tokens, double(c->bytes) / tokens, c->bytes / 1e6 / cold,
                c->bytes / 1e6 / warm, decoded / 1e6 / dec);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--tokenizer") opt.tokenizer = value;
    else if (flag == "--doc-dir") opt.doc_dir = value;
    else if (flag == "--code-dir") opt.code_dir = value;
    else if (flag == "--max-mb") opt.max_mb = std::atof(value.c_str());
    else if (flag == "--passes") opt.passes = std::max(2, std::atoi(value.c_str()));
    else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  return run(opt);
}
