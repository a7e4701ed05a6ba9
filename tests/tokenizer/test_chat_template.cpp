// Chat templates: the checkpoint's Jinja template (tokenizer_config.json string or named list,
// chat_template.jinja, additional_chat_templates/) rendered through the Jinja engine with the
// tokenizer's bos/eos, transformers' template choice, overrides and errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "test_util.h"

namespace tk::testing {
namespace {

const char* kTiny = R"({"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";

// Meta's Llama 3 template, reduced to plain messages.
const char* kLlama3 =
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' "
    "+ message['content'] | trim + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

const std::vector<ChatMessage> kChat = {
    {"system", "Be brief."}, {"user", "Hi there "}, {"assistant", "Hello!"}, {"user", "2+2?"}};

std::unique_ptr<Tokenizer> tiny(const std::string& config, const std::string& jinja = "") {
  auto tok = Tokenizer::from_json(kTiny, config, jinja);
  EXPECT_TRUE(tok.ok()) << tok.status().to_string();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

TEST(ChatTemplate, Llama3TemplateOverTheLlama3Tokenizer) {
  TK_SKIP_WITHOUT_SHARED();
  const Tokenizer* tok = shared_tokenizer("llama3");
  ASSERT_NE(tok, nullptr);
  auto tmpl = jinja::Template::parse(kLlama3);
  ASSERT_TRUE(tmpl.ok()) << tmpl.status().to_string();
  ChatTemplateOptions options;
  options.template_override = &*tmpl;
  jinja::ChatInputs inputs;
  for (const ChatMessage& m : kChat) inputs.messages.push_back({{"role", m.role}, {"content", m.content}});
  inputs.add_generation_prompt = true;
  inputs.bos_token = "<|begin_of_text|>";
  auto out = render_chat_template(*tok, inputs, options);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out,
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // The rendered prompt encodes its markers as single special tokens.
  auto ids = tok->encode(*out, false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ((*ids)[0], 128000);
}

TEST(ChatTemplate, CheckpointTemplateWithItsSpecialTokens) {
  // The golden Llama checkpoint ships a Llama 3 style template and bos "<|endoftext|>".
  auto tok = Tokenizer::load(std::string(TOKAMAK_SOURCE_DIR) + "/tests/data/golden/llama_gqa");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto out = apply_chat_template(**tok, {{"user", " hi "}}, true);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<|endoftext|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
  auto demo = Tokenizer::load(std::string(TOKAMAK_SOURCE_DIR) + "/models/demo");
  ASSERT_TRUE(demo.ok()) << demo.status().to_string();
  auto chatml = apply_chat_template(**demo, {{"user", "hi"}}, true);
  ASSERT_TRUE(chatml.ok()) << chatml.status().to_string();
  EXPECT_EQ(*chatml, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, NamedTemplatesAndTransformersChoice) {
  auto tok = tiny(R"({"chat_template": [{"name": "default", "template": "D{{ messages|length }}"},
                                        {"name": "tool_use", "template": "T{{ tools|length }}"}]})");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->chat_template_names(), (std::vector<std::string>{"default", "tool_use"}));
  EXPECT_EQ(tok->chat_template("tool_use"), "T{{ tools|length }}");
  EXPECT_FALSE(tok->chat_template("nope").has_value());
  jinja::ChatInputs inputs;
  inputs.messages = jinja::Json::array({{{"role", "user"}, {"content", "x"}}});
  EXPECT_EQ(*render_chat_template(*tok, inputs), "D1");
  inputs.tools = jinja::Json::array({{{"type", "function"}}});
  EXPECT_EQ(*render_chat_template(*tok, inputs), "T1");  // tools given: "tool_use"
  ChatTemplateOptions named;
  named.name = "default";
  EXPECT_EQ(*render_chat_template(*tok, inputs, named), "D1");
  named.name = "missing";
  auto bad = render_chat_template(*tok, inputs, named);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("default, tool_use"), std::string::npos) << bad.status().message();
}

TEST(ChatTemplate, ChatTemplateJinjaTakesPrecedence) {
  auto tok = tiny(R"({"chat_template": "config", "bos_token": "<s>"})", "{{ bos_token }}file");
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(*apply_chat_template(*tok, {}, false), "<s>file");

  // One directory per process: ctest runs this binary twice at once (tokenizer and
  // tokenizer_without_shared), and a shared name let one run read the other's half-written files.
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("tk_chat_template_dir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "additional_chat_templates");
  std::ofstream(dir / "tokenizer.json") << kTiny;
  std::ofstream(dir / "tokenizer_config.json") << R"({"chat_template": "config"})";
  std::ofstream(dir / "chat_template.jinja") << "from file\n";  // one trailing newline is dropped
  std::ofstream(dir / "additional_chat_templates" / "tool_use.jinja") << "tools!";
  auto loaded = Tokenizer::load(dir.string());
  ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
  EXPECT_EQ(*apply_chat_template(**loaded, {}, false), "from file");
  EXPECT_EQ((*loaded)->chat_template("tool_use"), "tools!");
  std::filesystem::remove_all(dir);
}

TEST(ChatTemplate, ToolCallsKwargsAndContinueFinalMessage) {
  auto tok = tiny(R"({"chat_template": "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls[0].function.arguments|tojson }}{% endif %}{% if m.thinking %}[{{ m.thinking }}]{% endif %}</{{ m.role }}>{% endfor %}{% if enable_thinking is defined %}{{ enable_thinking }}{% endif %}", "eos_token": "</s>"})");
  ASSERT_NE(tok, nullptr);
  jinja::ChatInputs inputs;
  inputs.messages = jinja::Json::parse(R"([{"role": "user", "content": "q"},
      {"role": "assistant", "content": "", "reasoning_content": "hmm", "tool_calls": [{"function": {"name": "f", "arguments": {"b": 1, "a": "x"}}}]},
      {"role": "assistant", "content": "Partial ans", "name": null}])");
  inputs.kwargs = {{"enable_thinking", false}};
  auto out = render_chat_template(*tok, inputs);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<user>q</user><assistant>{\"b\": 1, \"a\": \"x\"}[hmm]</assistant><assistant>Partial ans</assistant>False");
  inputs.continue_final_message = true;
  inputs.kwargs = jinja::Json::object();
  auto cont = render_chat_template(*tok, inputs);
  ASSERT_TRUE(cont.ok()) << cont.status().to_string();
  EXPECT_EQ(*cont, "<user>q</user><assistant>{\"b\": 1, \"a\": \"x\"}[hmm]</assistant><assistant>Partial ans");
  inputs.add_generation_prompt = true;
  EXPECT_FALSE(render_chat_template(*tok, inputs).ok());  // transformers refuses both at once
}

TEST(ChatTemplate, TemplateErrorsAreErrorValues) {
  auto strict = tiny(R"({"chat_template": "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{{ m.content }}{% endfor %}"})");
  ASSERT_NE(strict, nullptr);
  jinja::Error error;
  ChatTemplateOptions options;
  options.error = &error;
  auto bad = apply_chat_template(*strict, {{"user", "a"}, {"user", "b"}}, true, options);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(error.type, "TemplateError");
  EXPECT_EQ(error.message, "Conversation roles must alternate user/assistant/user/assistant/...");
  EXPECT_EQ(error.line, 1);

  auto syntax = tiny(R"({"chat_template": "line one\n{% for x in messages %}"})");
  ASSERT_NE(syntax, nullptr);
  auto broken = apply_chat_template(*syntax, {{"user", "a"}}, true);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("TemplateSyntaxError"), std::string::npos) << broken.status().message();
  EXPECT_NE(broken.status().message().find("line 2"), std::string::npos) << broken.status().message();

  auto none = tiny("");
  ASSERT_NE(none, nullptr);
  auto missing = apply_chat_template(*none, {{"user", "hi"}}, true);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("no chat template"), std::string::npos);
}

}  // namespace
}  // namespace tk::testing
