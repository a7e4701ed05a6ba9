// Request reading both generation endpoints share. Private to src/server.
#pragma once

#include <string>
#include <vector>

#include "app.h"

namespace tk::server {

// The sampling fields (defaults: generation_config.json's, unless --generation-config vllm).
void read_sampling(Fields& fields, const SamplingParams& defaults, SamplingParams& params);
// `stream` and `stream_options.include_usage` (an error without stream, as vLLM).
void read_stream_options(Fields& fields, bool& stream, bool& include_usage);
// Structured output (structured.cpp): at most one of response_format (json_object,
// json_schema), structured_outputs {json, regex, choice, grammar, json_object}, guided_json,
// guided_regex, guided_choice, guided_grammar, compiled into params.grammar. A second constraint,
// a wrong type, or a grammar or schema the grammar engine rejects is a 400 with the engine's
// message (naming the keyword).
std::optional<ApiError> read_structured_output(App& app, const Json& body, SamplingParams& params);
// vLLM's 400s for a prompt that leaves no room, naming both numbers.
std::optional<ApiError> check_context(int prompt_len, int max_tokens, int max_model_len, const char* param);
// vLLM accepts and logs fields it does not know.
void warn_unknown_fields(const Json& body, const std::vector<std::string>& known, const char* endpoint);

std::string token_text(const Tokenizer& tok, int32_t id);
Json token_bytes(const std::string& s);
Json usage_json(int prompt_tokens, int completion_tokens, int cached_tokens);
std::string sse(const Json& j);  // "data: {...}\n\n"

}  // namespace tk::server
