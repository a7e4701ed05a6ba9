// POST /v1/chat/completions: messages rendered by the chat template (the checkpoint's, or
// --chat-template), tools and chat_template_kwargs passed to it, the assistant's text streamed as
// deltas the openai client reassembles, log-probs in the chat API's shape.
#include <random>

#include "chat_tools.h"
#include "generation.h"
#include "sampling.h"

namespace tk::server {
namespace {

const std::vector<std::string> kKnownFields = {
    "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop",
    "stop_token_ids", "seed", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "logprobs",
    "top_logprobs", "ignore_eos", "min_tokens", "skip_special_tokens", "include_stop_str_in_output", "stream",
    "stream_options", "user", "tools", "tool_choice", "chat_template_kwargs", "add_generation_prompt",
    "continue_final_message", "cache_salt", "parallel_tool_calls", "response_format", "prompt_logprobs",
    "structured_outputs", "guided_json", "guided_regex", "guided_choice", "guided_grammar", "guided_decoding_backend",
    "guided_whitespace_pattern"};

Json chat_logprob(const Tokenizer& tok, int32_t id, float logprob, const std::vector<TokenLogprob>* top) {
  Json e = Json::object();
  const std::string t = token_text(tok, id);
  e["token"] = t, e["logprob"] = logprob, e["bytes"] = token_bytes(t);
  if (top) {
    Json list = Json::array();
    for (const TokenLogprob& x : *top) {
      Json o = Json::object();
      const std::string s = token_text(tok, x.token);
      o["token"] = s, o["logprob"] = x.logprob, o["bytes"] = token_bytes(s);
      list.push_back(o);
    }
    e["top_logprobs"] = list;
  }
  return e;
}

class ChatFormatter final : public Formatter {
 public:
  ChatFormatter(bool stream, bool include_usage, bool logprobs, int top, ChatTools tools)
      : stream_(stream), include_usage_(include_usage), logprobs_(logprobs), top_(top), tools_(std::move(tools)) {}
  void bind(Generation* g) {
    g_ = g;
    lp_.assign(g->prompts().size() * g->params().n, Json::array());
    std::random_device seed;  // call ids
    for (size_t i = 0; i < lp_.size(); ++i) out_.emplace_back(tools_, (uint64_t{seed()} << 32) ^ seed());
  }

  void on_delta(Choice& c, const Delta& d) override {
    const Tokenizer& tok = g_->app().engine.tokenizer();
    Json new_lp = Json::array();
    if (logprobs_)
      for (size_t i = 0; i < d.token_ids.size(); ++i) {
        new_lp.push_back(chat_logprob(tok, d.token_ids[i], d.logprobs.at(i), i < d.top_logprobs.size() ? &d.top_logprobs[i] : &kNoTop));
        lp_[c.index].push_back(new_lp.back());
      }
    if (!stream_) return;
    if (d.first) {
      Json delta = Json::object();
      delta["role"] = "assistant", delta["content"] = "";
      write_chunk(c.index, delta, nullptr, nullptr, nullptr);
    }
    // Content, reasoning and tool-call pieces as the parsers (chat_tools.h) cut them.
    Json delta = out_[c.index].stream(d.text, d.finished);
    if (delta.empty() && !d.finished && new_lp.empty()) return;
    if (delta.empty()) delta["content"] = "";
    Json logprobs = nullptr;
    if (logprobs_) {
      logprobs = Json::object();
      logprobs["content"] = new_lp;
    }
    write_chunk(c.index, delta, logprobs, d.finished ? out_[c.index].finish_reason(c.finish) : Json(nullptr),
                d.finished ? c.stop_reason : Json(nullptr));
  }

  void on_done(const std::vector<Choice>& choices, const std::optional<ApiError>& error) override {
    http::Responder& r = g_->responder();
    if (stream_) {
      if (error) r.write(sse(error_json(*error)));
      if (include_usage_ && !error) {
        Json chunk = head("chat.completion.chunk");
        chunk["choices"] = Json::array();
        chunk["usage"] = usage_json(g_->prompt_tokens(), g_->completion_tokens(), g_->cached_tokens());
        r.write(sse(chunk));
      }
      r.write("data: [DONE]\n\n");
      r.end();
      return;
    }
    if (error) return r.send(error_response(*error));
    Json body = head("chat.completion");
    Json list = Json::array();
    for (const Choice& c : choices) {
      Json message = Json::object();
      message["role"] = "assistant", message["content"] = c.full_text, message["refusal"] = nullptr;
      message["annotations"] = nullptr, message["audio"] = nullptr, message["function_call"] = nullptr;
      message["tool_calls"] = Json::array(), message["reasoning_content"] = nullptr;
      out_[c.index].whole(c.full_text, message);
      Json choice = Json::object();
      choice["index"] = c.index, choice["message"] = message;
      if (logprobs_) {
        Json lp = Json::object();
        lp["content"] = lp_[c.index];
        choice["logprobs"] = lp;
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["finish_reason"] = out_[c.index].finish_reason(c.finish);
      choice["stop_reason"] = c.stop_reason;
      list.push_back(choice);
    }
    body["choices"] = list;
    body["usage"] = usage_json(g_->prompt_tokens(), g_->completion_tokens(), g_->cached_tokens());
    body["prompt_logprobs"] = nullptr;
    r.send(json_response(200, body));
  }

 private:
  static inline const std::vector<TokenLogprob> kNoTop{};
  Json head(const char* object) const {
    Json j = Json::object();
    j["id"] = g_->id(), j["object"] = object, j["created"] = g_->created(), j["model"] = g_->model();
    return j;
  }
  void write_chunk(int index, const Json& delta, const Json& logprobs, const Json& finish, const Json& stop) {
    Json choice = Json::object();
    choice["index"] = index, choice["delta"] = delta, choice["logprobs"] = logprobs;
    choice["finish_reason"] = finish, choice["stop_reason"] = stop;
    Json chunk = head("chat.completion.chunk");
    chunk["choices"] = Json::array({choice});
    if (!g_->responder().write(sse(chunk))) g_->abort_all();
  }

  Generation* g_ = nullptr;
  bool stream_, include_usage_, logprobs_;
  int top_;
  std::vector<Json> lp_;
  ChatTools tools_;
  std::vector<ChatOutput> out_;  // per choice
};

// Objects handed to the chat template are rebuilt key by key (each insert a linear search), so
// messages and chat_template_kwargs are bounded; vLLM's messages have about ten fields.
constexpr size_t kMaxTemplateKeys = 256;

// tools: a list of {"type": "function", "function": {"name": ...}}, as vLLM's
// ChatCompletionToolsParam validates them.
std::optional<ApiError> check_tools(const Json& tools) {
  if (!tools.is_array()) return bad_request("tools: Input should be a valid list", "tools");
  for (const Json& t : tools) {
    if (!t.is_object() || (t.contains("type") && t["type"] != "function"))
      return bad_request("tools: each tool should be an object of type 'function'", "tools");
    if (!t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string())
      return bad_request("tools: each tool needs a 'function' object with a string 'name'", "tools");
  }
  return std::nullopt;
}

// A message's content as the templates want it: text parts joined by newlines, as vLLM's
// "string" content format does.
std::optional<ApiError> normalize_messages(const Json& in, Json& out) {
  if (!in.is_array() || in.empty()) return bad_request("messages must be a non-empty list", "messages");
  out = Json::array();
  for (const Json& m : in) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      return bad_request("each message needs a string 'role'", "messages");
    if (m.size() > kMaxTemplateKeys)
      return bad_request("a message has more than " + std::to_string(kMaxTemplateKeys) + " fields", "messages");
    Json msg = m;
    if (m.contains("content") && m["content"].is_array()) {
      std::string text;
      for (const Json& part : m["content"]) {
        // NOTE: no .value() on client JSON: it throws when the field has another type.
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") ||
            !part["text"].is_string())
          return bad_request("only text content parts are supported", "messages");
        text += (text.empty() ? "" : "\n") + part["text"].get<std::string>();
      }
      msg["content"] = text;
    } else if (m.contains("content") && !m["content"].is_string() && !m["content"].is_null()) {
      return bad_request("message content must be a string or a list of parts", "messages");
    }
    out.push_back(std::move(msg));
  }
  return std::nullopt;
}

}  // namespace

Result<std::string> App::render_chat(const Json& body, Fields& f) const {
  jinja::ChatInputs in;
  if (auto e = normalize_messages(body.value("messages", Json()), in.messages)) {
    f.fail(e->message, "messages");
    return invalid_argument(e->message);
  }
  if (std::string e = tools::prepare_tool_messages(in.messages); !e.empty()) {
    f.fail(e, "messages");
    return invalid_argument(e);
  }
  in.add_generation_prompt = true;
  f.boolean("add_generation_prompt", in.add_generation_prompt);
  f.boolean("continue_final_message", in.continue_final_message);
  if (in.add_generation_prompt && in.continue_final_message && f.has("add_generation_prompt"))
    f.fail("Cannot set both `continue_final_message` and `add_generation_prompt` to True.", "continue_final_message");
  if (in.continue_final_message) in.add_generation_prompt = false;
  if (f.has("tools")) {
    if (auto e = check_tools(body["tools"])) f.fail(e->message, "tools");
    else in.tools = body["tools"];
  }
  if (f.has("chat_template_kwargs")) {
    const Json& kw = body["chat_template_kwargs"];
    if (!kw.is_object()) f.fail("chat_template_kwargs must be an object", "chat_template_kwargs");
    else if (kw.size() > kMaxTemplateKeys)
      f.fail("chat_template_kwargs has more than " + std::to_string(kMaxTemplateKeys) + " keys", "chat_template_kwargs");
    else in.kwargs = kw;
  }
  if (f.error) return invalid_argument(f.error->message);
  ChatTemplateOptions options;
  options.template_override = chat_template.get();
  return render_chat_template(engine.tokenizer(), std::move(in), options);
}

void App::chat_completions(const http::Request& request, std::shared_ptr<http::Responder> responder) {
  auto fail = [&](const ApiError& e) { responder->send(error_response(e)); };
  Json body;
  if (auto e = parse_json_body(request, body)) return fail(*e);
  warn_unknown_fields(body, kKnownFields, "/v1/chat/completions");
  Fields f(body);
  std::string model;
  if (auto e = check_model(f, &model)) return fail(*e);
  if (!body.contains("messages")) return fail(bad_request("messages: Field required", "messages"));
  std::string user;
  f.string("user", user);  // accepted and unused, as in vLLM; still a string
  SamplingParams p;
  read_sampling(f, defaults, p);
  int max_tokens = -1, top = 0;
  bool logprobs = false, stream = false, include_usage = false;
  f.integer("max_tokens", max_tokens, 1, INT32_MAX);
  f.integer("max_completion_tokens", max_tokens, 1, INT32_MAX);
  f.boolean("logprobs", logprobs);
  f.integer("top_logprobs", top, 0, kMaxTopLogprobs);
  if (f.has("top_logprobs") && !logprobs) f.fail("when using `top_logprobs`, `logprobs` must be set to true.", "top_logprobs");
  read_stream_options(f, stream, include_usage);
  if (f.error) return fail(*f.error);
  // Structured output: response_format or vLLM's fields, compiled here (off the engine thread).
  if (auto e = read_structured_output(*this, body, p)) return fail(*e);
  // Tool calling and reasoning (chat_tools.h): a forced tool choice is a grammar too.
  ChatTools chat_tools;
  if (auto e = read_chat_tools(*this, body, chat_tools)) return fail(*e);
  if (auto e = constrain_tool_choice(*this, chat_tools, p)) return fail(*e);
  // Mistral's [TOOL_CALLS] is a control token: the parser must see it (vLLM's adjust_request).
  if (chat_tools.parser == tools::ToolParserKind::kMistral) p.skip_special_tokens = false;
  Result<std::string> text = render_chat(body, f);
  if (f.error) return fail(*f.error);
  if (!text.ok()) return fail(bad_request(text.status().message(), "messages"));
  chat_tools.prompt_opened_think = tools::prompt_opens_think(*text);
  auto ids = engine.tokenizer().encode(*text, /*add_special_tokens=*/false);
  if (!ids.ok()) return fail(bad_request(ids.status().message(), "messages"));
  const int max_len = engine.config().max_model_len, len = static_cast<int>(ids->size());
  if (auto e = check_context(len, max_tokens < 0 ? 1 : max_tokens, max_len,
                             f.has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens"))
    return fail(*e);
  p.max_tokens = max_tokens < 0 ? max_len - len : max_tokens;  // vLLM: the rest of the context
  p.logprobs = logprobs ? top : -1;
  if (Status st = engine.loop().core().validate(*ids, p); !st.ok()) return fail(bad_request(st.message()));
  std::vector<PromptInput> prompts;
  prompts.push_back({std::move(*ids), std::move(*text)});
  auto formatter = std::make_unique<ChatFormatter>(stream, include_usage, logprobs, top, std::move(chat_tools));
  ChatFormatter* fmt = formatter.get();
  auto g = std::make_shared<Generation>(*this, responder, std::move(prompts), std::move(p), std::move(formatter));
  g->set_id(new_id("chatcmpl-"));
  g->set_model(std::move(model));
  fmt->bind(g.get());
  start_generation(g, stream);
}

}  // namespace tk::server
