// Built-in chat templates for the three families, picked from the template text or special tokens.
#include <gtest/gtest.h>

#include "test_util.h"

namespace tk::testing {
namespace {

const std::vector<ChatMessage> kChat = {
    {"system", "Be brief."}, {"user", "Hi there "}, {"assistant", "Hello!"}, {"user", "2+2?"}};

TEST(ChatTemplate, Llama3FromSpecialTokens) {
  const Tokenizer* tok = shared_tokenizer("llama3");
  ASSERT_NE(tok, nullptr);
  auto out = apply_chat_template(*tok, kChat, true);
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

TEST(ChatTemplate, ChatMlFromSpecialTokens) {
  const Tokenizer* tok = shared_tokenizer("qwen2-style");
  ASSERT_NE(tok, nullptr);
  auto out = apply_chat_template(*tok, {{"user", "hi"}}, true);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, ChatMlQwenDefaultSystemFromTemplateText) {
  const std::string json = R"({"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
  const std::string config = R"({"chat_template": "{% for m in messages %}<|im_start|>... You are a helpful assistant. ..."})";
  auto tok = Tokenizer::from_json(json, config);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto out = apply_chat_template(**tok, {{"user", "hi"}}, false);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n");
}

TEST(ChatTemplate, MistralFromSpecialTokens) {
  const Tokenizer* tok = shared_tokenizer("mistral-v3-legacy");
  ASSERT_NE(tok, nullptr);
  auto out = apply_chat_template(*tok, kChat, true);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<s>[INST] Be brief.\n\nHi there  [/INST]Hello!</s>[INST] 2+2? [/INST]");
  auto bad = apply_chat_template(*tok, {{"user", "a"}, {"user", "b"}}, true);
  EXPECT_FALSE(bad.ok());
}

TEST(ChatTemplate, UnknownTemplateIsAnError) {
  const std::string json = R"({"added_tokens": [], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})";
  auto with_template = Tokenizer::from_json(json, R"({"chat_template": "{{ messages }}"})");
  ASSERT_TRUE(with_template.ok());
  auto out = apply_chat_template(**with_template, {{"user", "hi"}}, true);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
  auto bare = Tokenizer::from_json(json, "");
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(apply_chat_template(**bare, {{"user", "hi"}}, true).ok());
}

}  // namespace
}  // namespace tk::testing
