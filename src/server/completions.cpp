// POST /v1/completions: prompts as text, token ids or lists of either; echo; log-probs as the
// legacy completions API returns them; streamed as vLLM streams them.
#include "generation.h"
#include "sampling.h"

namespace tk::server {
namespace {

const std::vector<std::string> kKnownFields = {
    "model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "stop_token_ids", "seed",
    "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "logprobs", "echo", "prompt_logprobs",
    "ignore_eos", "min_tokens", "skip_special_tokens", "include_stop_str_in_output", "stream", "stream_options", "user",
    "cache_salt", "best_of", "suffix", "response_format", "structured_outputs", "guided_json", "guided_regex",
    "guided_choice", "guided_grammar", "guided_decoding_backend", "guided_whitespace_pattern"};

// The legacy logprobs object of one choice, built token by token.
struct LegacyLogprobs {
  Json tokens = Json::array(), token_logprobs = Json::array(), top_logprobs = Json::array(), text_offset = Json::array();
  int offset = 0;
  void add(const std::string& token, Json logprob, Json top) {
    tokens.push_back(token);
    token_logprobs.push_back(std::move(logprob));
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    offset += static_cast<int>(token.size());
  }
  Json json() const {
    Json j = Json::object();
    j["text_offset"] = text_offset, j["token_logprobs"] = token_logprobs, j["tokens"] = tokens, j["top_logprobs"] = top_logprobs;
    return j;
  }
};

Json top_dict(const Tokenizer& tok, int32_t chosen, float chosen_lp, const std::vector<TokenLogprob>& top) {
  Json d = Json::object();
  for (const TokenLogprob& t : top) d[token_text(tok, t.token)] = t.logprob;
  const std::string c = token_text(tok, chosen);
  if (!d.contains(c)) d[c] = chosen_lp;
  return d;
}

class CompletionFormatter final : public Formatter {
 public:
  CompletionFormatter(bool stream, bool include_usage, bool echo, int logprobs)
      : stream_(stream), include_usage_(include_usage), echo_(echo), logprobs_(logprobs) {}
  void bind(Generation* g) {
    g_ = g;
    legacy_.resize(g->prompts().size() * g->params().n);
  }

  void on_delta(Choice& c, const Delta& d) override {
    const Tokenizer& tok = g_->app().engine.tokenizer();
    std::string text = d.text;
    LegacyLogprobs& lp = legacy_[c.index];
    const size_t first_new = lp.tokens.size();
    if (d.first && echo_) {
      text = g_->prompts()[c.prompt].text + text;
      if (logprobs_ >= 0) add_prompt_logprobs(c.prompt, lp);
    }
    if (logprobs_ >= 0)
      for (size_t i = 0; i < d.token_ids.size(); ++i)
        lp.add(token_text(tok, d.token_ids[i]), d.logprobs.at(i),
               top_dict(tok, d.token_ids[i], d.logprobs[i], i < d.top_logprobs.size() ? d.top_logprobs[i] : std::vector<TokenLogprob>{}));
    if (!stream_) return;
    if (text.empty() && !d.finished && logprobs_ < 0) return;
    Json choice = Json::object();
    choice["index"] = c.index;
    choice["text"] = text;
    choice["logprobs"] = logprobs_ >= 0 ? slice(lp, first_new) : Json(nullptr);
    choice["finish_reason"] = d.finished ? Json(finish_reason_json(c.finish)) : Json(nullptr);
    choice["stop_reason"] = d.finished ? c.stop_reason : Json(nullptr);
    Json chunk = head();
    chunk["choices"] = Json::array({choice});
    if (!g_->responder().write(sse(chunk))) g_->abort_all();
  }

  void on_done(const std::vector<Choice>& choices, const std::optional<ApiError>& error) override {
    http::Responder& r = g_->responder();
    if (stream_) {
      if (error) r.write(sse(error_json(*error)));
      if (include_usage_ && !error) {
        Json chunk = head();
        chunk["choices"] = Json::array();
        chunk["usage"] = usage_json(g_->prompt_tokens(), g_->completion_tokens(), g_->cached_tokens());
        r.write(sse(chunk));
      }
      r.write("data: [DONE]\n\n");
      r.end();
      return;
    }
    if (error) return r.send(error_response(*error));
    Json body = head();
    Json list = Json::array();
    for (const Choice& c : choices) {
      Json choice = Json::object();
      choice["index"] = c.index;
      choice["text"] = (echo_ ? g_->prompts()[c.prompt].text : "") + c.full_text;
      choice["logprobs"] = logprobs_ >= 0 ? legacy_[c.index].json() : Json(nullptr);
      choice["finish_reason"] = finish_reason_json(c.finish);
      choice["stop_reason"] = c.stop_reason;
      choice["prompt_logprobs"] = prompt_logprobs_json(c.prompt);
      list.push_back(choice);
    }
    body["choices"] = list;
    body["usage"] = usage_json(g_->prompt_tokens(), g_->completion_tokens(), g_->cached_tokens());
    r.send(json_response(200, body));
  }

 private:
  Json head() const {
    Json j = Json::object();
    j["id"] = g_->id(), j["object"] = "text_completion", j["created"] = g_->created(), j["model"] = g_->model();
    return j;
  }
  static Json slice(const LegacyLogprobs& lp, size_t from) {
    LegacyLogprobs s;
    for (size_t i = from; i < lp.tokens.size(); ++i) {
      s.tokens.push_back(lp.tokens[i]), s.token_logprobs.push_back(lp.token_logprobs[i]);
      s.top_logprobs.push_back(lp.top_logprobs[i]), s.text_offset.push_back(lp.text_offset[i]);
    }
    return s.json();
  }
  void add_prompt_logprobs(int prompt, LegacyLogprobs& lp) const {
    const Tokenizer& tok = g_->app().engine.tokenizer();
    const std::vector<int32_t>& ids = g_->prompts()[prompt].ids;
    const auto& plp = g_->prompt_logprobs(prompt);
    const auto& top = g_->prompt_top(prompt);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i == 0 || i - 1 >= plp.size()) {
        lp.add(token_text(tok, ids[i]), nullptr, nullptr);
        continue;
      }
      lp.add(token_text(tok, ids[i]), plp[i - 1], top_dict(tok, ids[i], plp[i - 1], i - 1 < top.size() ? top[i - 1] : std::vector<TokenLogprob>{}));
    }
  }
  // vLLM's prompt_logprobs: null for the first token, then {token_id: {logprob, rank, decoded_token}}.
  Json prompt_logprobs_json(int prompt) const {
    if (g_->params().prompt_logprobs_from < 0 || echo_) return nullptr;
    const Tokenizer& tok = g_->app().engine.tokenizer();
    const std::vector<int32_t>& ids = g_->prompts()[prompt].ids;
    const auto& plp = g_->prompt_logprobs(prompt);
    const auto& top = g_->prompt_top(prompt);
    Json list = Json::array({nullptr});
    for (size_t i = 0; i < plp.size() && i + 1 < ids.size(); ++i) {
      Json d = Json::object();
      auto entry = [&](int32_t id, float logprob, Json rank) {
        Json e = Json::object();
        e["logprob"] = logprob, e["rank"] = std::move(rank), e["decoded_token"] = token_text(tok, id);
        d[std::to_string(id)] = e;
      };
      Json rank = nullptr;
      if (i < top.size())
        for (size_t r = 0; r < top[i].size(); ++r)
          if (top[i][r].token == ids[i + 1]) rank = static_cast<int>(r + 1);
      entry(ids[i + 1], plp[i], rank);
      if (i < top.size())
        for (size_t r = 0; r < top[i].size(); ++r) entry(top[i][r].token, top[i][r].logprob, static_cast<int>(r + 1));
      list.push_back(d);
    }
    return list;
  }

  Generation* g_ = nullptr;
  bool stream_, include_usage_, echo_;
  int logprobs_;
  std::vector<LegacyLogprobs> legacy_;
};

// The prompt field: a string, a list of strings, a list of token ids, or a list of such lists.
std::optional<ApiError> read_prompts(const Json& body, const Tokenizer& tok, std::vector<PromptInput>& out) {
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null()) return bad_request("prompt: Field required", "prompt");
  auto add_text = [&](const std::string& text) -> std::optional<ApiError> {
    if (text.empty()) return bad_request("prompt cannot be empty", "prompt");
    auto ids = tok.encode(text, /*add_special_tokens=*/true);
    if (!ids.ok()) return bad_request("prompt: " + ids.status().message(), "prompt");
    out.push_back({std::move(*ids), text});
    return std::nullopt;
  };
  auto add_ids = [&](const Json& list) -> std::optional<ApiError> {
    PromptInput p;
    for (const Json& t : list) {
      const std::optional<int64_t> id = json_integer(t);
      if (!id || *id < 0 || *id > INT32_MAX) return bad_request("prompt: token ids must be non-negative integers", "prompt");
      p.ids.push_back(static_cast<int32_t>(*id));
    }
    if (p.ids.empty()) return bad_request("prompt cannot be empty", "prompt");
    p.text = tok.decode(p.ids, false);
    out.push_back(std::move(p));
    return std::nullopt;
  };
  if (it->is_string()) return add_text(it->get<std::string>());
  if (!it->is_array() || it->empty()) return bad_request("prompt must be a string, a list of strings or token ids", "prompt");
  if ((*it)[0].is_number()) return add_ids(*it);
  for (const Json& p : *it) {
    std::optional<ApiError> e;
    if (p.is_string()) e = add_text(p.get<std::string>());
    else if (p.is_array()) e = add_ids(p);
    else e = bad_request("prompt must be a string, a list of strings or token ids", "prompt");
    if (e) return e;
  }
  return std::nullopt;
}

}  // namespace

void App::completions(const http::Request& request, std::shared_ptr<http::Responder> responder) {
  auto fail = [&](const ApiError& e) { responder->send(error_response(e)); };
  Json body;
  if (auto e = parse_json_body(request, body)) return fail(*e);
  warn_unknown_fields(body, kKnownFields, "/v1/completions");
  Fields f(body);
  std::string model;
  if (auto e = check_model(f, &model)) return fail(*e);
  if (f.has("suffix")) return fail(bad_request("suffix is not supported", "suffix"));
  std::string user;
  f.string("user", user);  // accepted and unused, as in vLLM; still a string
  SamplingParams p;
  read_sampling(f, defaults, p);
  // vLLM: max_tokens left out is 16 (checked against the context); null is what the context leaves.
  int max_tokens = 16, logprobs = -1, prompt_logprobs = -1;
  const bool max_null = body.contains("max_tokens") && body["max_tokens"].is_null();
  f.integer("max_tokens", max_tokens, 1, INT32_MAX);
  f.integer("logprobs", logprobs, 0, kMaxTopLogprobs);
  f.integer("prompt_logprobs", prompt_logprobs, 0, kMaxTopLogprobs);
  bool echo = false, stream = false, include_usage = false;
  f.boolean("echo", echo);
  read_stream_options(f, stream, include_usage);
  if (f.error) return fail(*f.error);
  if (auto e = read_structured_output(*this, body, p)) return fail(*e);
  std::vector<PromptInput> prompts;
  if (auto e = read_prompts(body, engine.tokenizer(), prompts)) return fail(*e);
  const int max_len = engine.config().max_model_len;
  for (const PromptInput& pr : prompts)
    if (auto e = check_context(static_cast<int>(pr.ids.size()), max_null ? 1 : max_tokens, max_len, "max_tokens")) return fail(*e);
  p.max_tokens = max_null ? 0 : max_tokens;
  p.logprobs = logprobs;
  if (prompt_logprobs >= 0 || (echo && logprobs >= 0)) {
    p.prompt_logprobs_from = 1;
    p.prompt_top_logprobs = std::max(prompt_logprobs, std::max(logprobs, 0));
  }
  for (const PromptInput& pr : prompts)
    if (Status st = engine.loop().core().validate(pr.ids, params_for_prompt(p, pr.ids.size(), max_len)); !st.ok())
      return fail(bad_request(st.message()));
  auto formatter = std::make_unique<CompletionFormatter>(stream, include_usage, echo, logprobs);
  CompletionFormatter* fmt = formatter.get();
  auto g = std::make_shared<Generation>(*this, responder, std::move(prompts), std::move(p), std::move(formatter));
  g->set_id(new_id("cmpl-"));
  g->set_model(std::move(model));
  fmt->bind(g.get());
  start_generation(g, stream);
}

}  // namespace tk::server
