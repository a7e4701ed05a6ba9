// tokamak grammar: constrained decoding for structured outputs. A grammar (GBNF text, a regex, a
// JSON schema, a choice list) is compiled against a model's vocabulary once; a Matcher per
// sequence then gives, before each step, the bitmask of token ids that can continue the grammar
// (applied to the logits by the GPU sampler) and advances by the sampled token. Host only: the
// mask is computed while the device runs the forward. The algorithm is described in tables.h,
// set_automaton.h and docs/ARCHITECTURE.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace tk::grammar {

struct GrammarIR;  // rules as expression trees (ir.h); opaque to users

// Bounds on what a user-supplied grammar or schema may cost. Exceeding one is an error that names
// it, never a crash or an unbounded allocation.
struct Limits {
  size_t max_input_bytes = 4 << 20;  // GBNF / regex / schema text
  int max_nesting = 200;             // parentheses, regex groups, schema depth while parsing
  int max_rules = 20000;
  int64_t max_repeat = 1 << 30;      // the n of {m,n}; large bounds are counted, not unrolled
  size_t max_fsm_nodes = 2 << 20;    // automaton size after compilation
  int max_stack_depth = 2000;        // matcher: nesting at run time; a deeper parse path dies
  int max_parallel_parses = 4096;    // matcher: ambiguity bound; beyond it the matcher errs
};

// A parsed grammar: immutable, cheap to copy (shared).
class Grammar {
 public:
  Grammar() = default;
  explicit Grammar(std::shared_ptr<const GrammarIR> ir) : ir_(std::move(ir)) {}
  bool empty() const { return ir_ == nullptr; }
  // The grammar in GBNF (parse_gbnf of the text gives the same language).
  std::string to_gbnf() const;
  const GrammarIR& ir() const { return *ir_; }

 private:
  std::shared_ptr<const GrammarIR> ir_;
};

// llama.cpp's GBNF: `name ::= alternatives`, `|`, sequences, `( )`, `* + ? {m} {m,} {m,n}`,
// "literals" and [classes] with ranges, negation and escapes (\n \r \t \\ \" \] \xHH \uHHHH
// \UHHHHHHHH), `.` (any character), `#` comments; UTF-8 throughout. A rule ends where the next
// `name ::=` begins. Errors give line:column.
Result<Grammar> parse_gbnf(std::string_view text, std::string_view root_rule = "root", const Limits& limits = {});

// A regular expression (ECMAScript subset: | ( ) (?: ) * + ? {m,n} (lazy forms too), . [ ] [^ ]
// \d \w \s \D \W \S, escapes, ^ $ at the ends) that the whole output must match.
Result<Grammar> regex_to_grammar(std::string_view regex, const Limits& limits = {});

// One of the given strings, exactly.
Result<Grammar> choice_grammar(const std::vector<std::string>& choices, const Limits& limits = {});

struct JsonSchemaOptions {
  // No whitespace at all between JSON tokens. Otherwise whitespace goes where a pretty-printer
  // writes it: after [ { , and before ] } nothing, one space, or a newline and at most
  // `max_indent` spaces/tabs; around a key's colon at most one space each side; none before a comma.
  bool compact = false;
  int max_indent = 40;
  // additionalProperties / items left unsaid mean "none" (OpenAI strict mode, xgrammar's
  // strict_mode); false follows JSON Schema (any extra property or item allowed).
  bool strict = true;
  // Digits of an unbounded number: integer part, fraction, exponent (so a weak model cannot loop).
  int max_integer_digits = 16;
  int max_fraction_digits = 16;
  int max_exponent_digits = 2;  // 16 digits and e99 stay far inside a double (e999 overflows parsers)
  int max_fraction_seconds = 9;  // the fractional seconds of a date-time / time
  Limits limits;
};

// A JSON schema (draft 4 to 2020-12 as real schemas use them, with OpenAPI's `nullable`).
// Unsupported keywords are an error naming the keyword and where it sits.
Result<Grammar> json_schema_to_grammar(std::string_view schema_json, const JsonSchemaOptions& options = {});
// Any JSON object (response_format json_object) / any JSON value.
Grammar json_object_grammar(const JsonSchemaOptions& options = {});
Grammar json_value_grammar(const JsonSchemaOptions& options = {});

// ---------------------------------------------------------------------------------------------
// The vocabulary: each token id's bytes. Built once per model and shared by every grammar.

// GPT-2 byte-level BPE pieces ("Ġthe", "Ċ") back to bytes; nullopt if a character is outside the
// byte alphabet (e.g. an added token written in plain text).
std::optional<std::string> byte_level_piece_bytes(std::string_view piece);
// SentencePiece pieces: "▁" is a space, "<0x0A>" a single byte.
std::string sentencepiece_piece_bytes(std::string_view piece);

class Vocabulary {
 public:
  struct Token {
    std::string bytes;
    bool special = false;  // control/added tokens: never allowed by a grammar
  };
  // mask_size: the logits' width (>= tokens.size(); ids past the tokens are never allowed).
  // eos_ids end a grammar: allowed exactly when the grammar may end.
  static Result<std::shared_ptr<const Vocabulary>> create(std::vector<Token> tokens, std::vector<int32_t> eos_ids,
                                                          int32_t mask_size = -1);
  ~Vocabulary();
  int32_t size() const;       // number of token ids with bytes
  int32_t mask_size() const;  // bits in a mask
  int32_t mask_words() const { return (mask_size() + 31) / 32; }
  const std::string& token_bytes(int32_t id) const;
  bool is_special(int32_t id) const;
  const std::vector<int32_t>& eos_ids() const;
  struct Trie;  // token bytes in a prefix tree, laid out in preorder (vocab.cpp)
  const Trie& trie() const { return *trie_; }

 private:
  Vocabulary() = default;
  std::vector<Token> tokens_;
  std::vector<int32_t> eos_ids_;
  int32_t mask_size_ = 0;
  std::unique_ptr<Trie> trie_;
};

// ---------------------------------------------------------------------------------------------
// Compilation and matching.

struct CompiledGrammarImpl;

struct CompileOptions {
  Limits limits;
  // Compute every state's token table now instead of on first use (tables are shared by all
  // matchers of this grammar either way).
  bool precompute = false;
  int precompute_threads = 1;  // threads computing them (each table is independent)
};

struct CompileStats {
  int64_t rules = 0, nodes = 0, byte_edges = 0, call_edges = 0;
  int64_t tables = 0;            // token tables computed so far
  int64_t uncertain_tokens = 0;  // tokens left to the run-time check, summed over the tables
  double table_ms = 0;           // time spent computing them
  int64_t table_bytes = 0;       // memory they hold
};

// Immutable and thread-safe: any number of matchers on any threads share it (token tables are
// filled on first use under a per-state once-flag).
class CompiledGrammar {
 public:
  static Result<std::shared_ptr<const CompiledGrammar>> compile(const Grammar& grammar,
                                                                std::shared_ptr<const Vocabulary> vocab,
                                                                const CompileOptions& options = {});
  ~CompiledGrammar();
  const Vocabulary& vocabulary() const;
  CompileStats stats() const;
  // Fills every token table not yet computed (what CompileOptions::precompute does), on the
  // calling thread and threads - 1 more; matchers may run meanwhile. Returns early once *stop.
  void precompute_tables(const std::atomic<bool>* stop = nullptr, int threads = 1) const;
  const CompiledGrammarImpl& impl() const { return *impl_; }

 private:
  CompiledGrammar() = default;
  std::unique_ptr<CompiledGrammarImpl> impl_;
};

struct MatcherState;

// One per sequence, used by one thread at a time. Bitmask layout: token t is allowed iff
// bit (t % 32) of word t / 32 is set, mask_words() 32-bit words (xgrammar's layout).
class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const CompiledGrammar> grammar);
  ~Matcher();
  Matcher(Matcher&&) noexcept;
  Matcher& operator=(Matcher&&) noexcept;

  // Writes the mask of tokens that may come next (eos ids when the grammar may end). Returns
  // false when no token is allowed (the engine should then end the sequence).
  bool fill_next_token_bitmask(uint32_t* bitmask);
  // Advances by one token; false (state unchanged) when the token cannot continue the grammar.
  bool accept_token(int32_t token_id);
  // Advances by raw bytes (a forced prefix, tests); false (state unchanged) when they cannot.
  bool accept_bytes(std::string_view bytes);
  // Undoes the last n accepted tokens / byte strings (speculative decoding); false if fewer.
  bool rollback(int n);
  void reset();

  bool can_end() const;        // what was accepted is a complete sentence: eos is allowed
  bool must_end() const;       // complete and nothing may follow: only eos is allowed
  bool is_terminated() const;  // an eos token was accepted
  int num_accepted() const;    // steps that rollback can undo
  // Not ok after the grammar's ambiguity bound was hit (the request should fail with it).
  const Status& status() const;

 private:
  std::shared_ptr<const CompiledGrammar> grammar_;
  std::unique_ptr<MatcherState> state_;
};

// ---------------------------------------------------------------------------------------------
// A cache of compiled grammars for one vocabulary, keyed by what the grammar is made from and
// its options (the server sees the same schema again and again). Thread-safe; bounded (the least
// recently used entry goes first); a key asked for by several threads at once is compiled once.
// Errors are not cached. With background_tables, a worker thread fills each new grammar's token
// tables right after compiling it, so a request starts at once (lazy tables) and its later masks
// find the tables ready.

struct GrammarSpec {
  enum class Kind { kGbnf, kRegex, kJsonSchema, kJsonObject, kJsonValue, kChoice };
  Kind kind = Kind::kJsonSchema;
  std::string text;                  // GBNF text, regex or schema JSON (unused for json_object/value)
  std::string root_rule = "root";    // GBNF
  std::vector<std::string> choices;  // kChoice
  JsonSchemaOptions json;            // schema / json_object / json_value; its limits serve all kinds
};

// The grammar itself (no vocabulary): what the cache compiles.
Result<Grammar> make_grammar(const GrammarSpec& spec);

class GrammarCache {
 public:
  struct Options {
    size_t max_entries = 256;
    // Token tables grow as they fill (a large schema's reach tens of MB): past this total, the
    // least recently used grammars go first, checked at each get().
    int64_t max_table_bytes = int64_t{2} << 30;
    CompileOptions compile;        // precompute there blocks get(); background_tables does not
    bool background_tables = true;
    int background_threads = 1;    // threads of the worker's table filling (one grammar at a time)
  };
  explicit GrammarCache(std::shared_ptr<const Vocabulary> vocab);
  GrammarCache(std::shared_ptr<const Vocabulary> vocab, Options options);
  ~GrammarCache();  // stops the worker (a table in progress finishes)
  GrammarCache(const GrammarCache&) = delete;
  GrammarCache& operator=(const GrammarCache&) = delete;

  Result<std::shared_ptr<const CompiledGrammar>> get(const GrammarSpec& spec);

  struct Stats {
    int64_t hits = 0, misses = 0, evictions = 0, entries = 0;
    int64_t table_bytes = 0;  // over the entries
  };
  Stats stats() const;

 private:
  struct State;  // grammar_cache.cpp
  std::unique_ptr<State> state_;
};

}  // namespace tk::grammar
