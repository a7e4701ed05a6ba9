// JSON schema grammars on the corpus (data/schemas.jsonl, made and checked by make_corpus.py):
// instances that validate are accepted (pretty and compact), instances that do not are rejected;
// random walks through each grammar produce JSON that parses and validates; masks match brute
// force; unsupported keywords are errors naming the keyword.
#include <fstream>

#include "test_util.h"
#include "validator.h"

namespace tk::grammar::testing {
namespace {

struct Entry {
  std::string name;
  OJson schema;
  std::vector<OJson> valid, invalid;
};

const std::vector<Entry>& corpus() {
  static const std::vector<Entry> entries = [] {
    std::vector<Entry> out;
    std::ifstream in(test_data_dir() + "/schemas.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      OJson j = OJson::parse(line);
      out.push_back({j["name"], j["schema"], {j["valid"].begin(), j["valid"].end()}, {j["invalid"].begin(), j["invalid"].end()}});
    }
    return out;
  }();
  return entries;
}

std::shared_ptr<const CompiledGrammar> schema_grammar(const OJson& schema, bool compact,
                                                      std::shared_ptr<const Vocabulary> vocab = nullptr) {
  JsonSchemaOptions o;
  o.compact = compact;
  auto g = json_schema_to_grammar(schema.dump(), o);
  if (!g.ok()) {
    ADD_FAILURE() << g.status().to_string();
    return nullptr;
  }
  return compile_or_die(g.value(), vocab);
}

TEST(JsonSchema, CorpusIsLargeEnough) {
  size_t valid = 0, invalid = 0;
  for (const Entry& e : corpus()) {
    valid += e.valid.size();
    invalid += e.invalid.size();
  }
  EXPECT_GE(corpus().size(), 100u);
  EXPECT_GE(valid, 200u);
  EXPECT_GE(invalid, 200u);
}

TEST(JsonSchema, ValidatorAgreesWithTheCorpus) {
  for (const Entry& e : corpus()) {
    for (const OJson& x : e.valid) EXPECT_EQ(validate_instance(e.schema, x), "") << e.name << ": " << x.dump();
    for (const OJson& x : e.invalid) EXPECT_NE(validate_instance(e.schema, x), "") << e.name << ": " << x.dump();
  }
}

TEST(JsonSchema, AcceptsValidAndRejectsInvalidInstances) {
  for (const Entry& e : corpus()) {
    auto pretty = schema_grammar(e.schema, false), compact = schema_grammar(e.schema, true);
    if (!pretty || !compact) continue;
    for (const OJson& x : e.valid) {
      EXPECT_TRUE(matches(pretty, x.dump())) << e.name << " rejects " << x.dump();
      EXPECT_TRUE(matches(pretty, x.dump(2))) << e.name << " rejects " << x.dump(2);
      EXPECT_TRUE(matches(pretty, x.dump(4))) << e.name << " rejects " << x.dump(4);
      EXPECT_TRUE(matches(compact, x.dump())) << e.name << " (compact) rejects " << x.dump();
      if (x.dump(2) != x.dump()) EXPECT_FALSE(matches(compact, x.dump(2))) << e.name << " (compact) accepts " << x.dump(2);
    }
    for (const OJson& x : e.invalid) {
      EXPECT_FALSE(matches(pretty, x.dump())) << e.name << " accepts " << x.dump();
      EXPECT_FALSE(matches(pretty, x.dump(2))) << e.name << " accepts " << x.dump(2);
    }
  }
}

TEST(JsonSchema, RandomWalksProduceValidJson) {
  std::mt19937 rng(2024);
  int finished = 0, total = 0;
  std::ofstream dump;
  if (const char* path = std::getenv("TOKAMAK_GRAMMAR_DUMP")) dump.open(path);
  for (const Entry& e : corpus()) {
    auto g = schema_grammar(e.schema, false, small_vocab());
    if (!g) continue;
    int done = 0;
    for (int i = 0; i < 12; ++i) {
      ++total;
      std::optional<std::string> text = random_sentence(g, rng, 800);
      if (!text) continue;
      ++done;
      OJson x = OJson::parse(*text, nullptr, false);
      ASSERT_FALSE(x.is_discarded()) << e.name << ": not JSON: " << *text;
      EXPECT_EQ(validate_instance(e.schema, x), "") << e.name << ": " << *text;
      if (dump.is_open()) dump << OJson{{"name", e.name}, {"schema", e.schema}, {"instance", x}}.dump() << "\n";
    }
    EXPECT_GT(done, 0) << e.name << ": no random walk finished";
    finished += done;
  }
  EXPECT_GT(finished, total / 2);
}

TEST(JsonSchema, MasksMatchBruteForce) {
  int i = 0;
  for (const Entry& e : corpus()) {
    if (i++ % 5 != 0) continue;
    auto g = schema_grammar(e.schema, i % 2 == 0, small_vocab());
    check_masks_on_walks(g, 99 + i, 2, 60);
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "schema " << e.name;
      return;
    }
  }
}

std::string schema_error(const std::string& schema) {
  auto g = json_schema_to_grammar(schema);
  if (!g.ok()) return g.status().message();
  auto c = CompiledGrammar::compile(g.value(), byte_vocab());
  return c.ok() ? "" : c.status().message();
}

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  EXPECT_EQ(schema_error(R"({"not": {"type": "string"}})"), "json schema: unsupported keyword 'not' at #");
  EXPECT_EQ(schema_error(R"({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 3}}})"),
            "json schema: unsupported keyword 'multipleOf' at #/properties/a");
  EXPECT_EQ(schema_error(R"({"type": "array", "uniqueItems": true})"), "json schema: unsupported keyword 'uniqueItems' at #");
  EXPECT_EQ(schema_error(R"({"if": {}, "then": {}})"), "json schema: unsupported keyword 'if' at #");
  EXPECT_EQ(schema_error(R"({"type": "object", "patternProperties": {"^a": {}}})"), "json schema: unsupported keyword 'patternProperties' at #");
  EXPECT_EQ(schema_error(R"({"type": "object", "minProperties": 2})"), "json schema: unsupported keyword 'minProperties' at #");
  EXPECT_EQ(schema_error(R"({"$ref": "http://example.com/s.json"})"),
            "json schema: only local $refs (\"#...\") are supported, not 'http://example.com/s.json' at #");
  EXPECT_EQ(schema_error(R"({"$ref": "#/$defs/missing"})"), "json schema: $ref '#/$defs/missing' points to nothing at #");
  EXPECT_EQ(schema_error(R"j({"type": "string", "pattern": "a(?=b)"})j"),
            "json schema: pattern: regex: lookaround and other (? groups are not supported at offset 2 at #");
  EXPECT_EQ(schema_error(R"({"type": "integer", "minimum": 5, "maximum": 4})"),
            "json schema: no integer within minimum/maximum (and the digit limit): the schema matches nothing at #");
  EXPECT_EQ(schema_error(R"({"type": "strin"})"), "json schema: unknown type \"strin\" at #");
  EXPECT_EQ(schema_error(R"({"type": "string", "minLength": -1})"), "json schema: minLength must be a whole number from 0 to 1073741824 at #");
  EXPECT_EQ(schema_error(R"({"allOf": [{"type": "string"}, {"type": "integer"}]})"),
            "json schema: allOf: no type is in both: the schema matches nothing at #/allOf/1");
  EXPECT_EQ(schema_error(R"({"type": "string", "pattern": "^a{5}$", "maxLength": 3})"),
            "json schema: no string matches both the pattern/format and minLength/maxLength (the schema matches nothing) at #");
  EXPECT_EQ(schema_error("{\"type\": "), "json schema: not valid JSON: [json.exception.parse_error.101] parse error at line 1, column 10: syntax error while parsing value - unexpected end of input; expected '[', '{', or a literal");
  EXPECT_EQ(schema_error(R"({"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}, {"type": "null"}]}}, "$ref": "#/$defs/a"})"),
            "left recursion in the grammar: a -> a");
  EXPECT_EQ(schema_error(R"({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"})"),
            "the grammar matches nothing (rule 'root' cannot complete)");
  EXPECT_EQ(schema_error(R"({"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]})"),
            "the grammar matches nothing (rule 'root' cannot complete)");
  EXPECT_EQ(schema_error(R"({"type": "string", "description": "annotations are fine", "x-custom": 1, "unknownKeyword": 2})"), "");
}

TEST(JsonSchema, WhitespaceIsBoundedAndCompactHasNone) {
  auto pretty = schema_grammar(OJson::parse(R"({"type": "object", "properties": {"a": {"type": "integer"}}})"), false);
  EXPECT_TRUE(matches(pretty, "{\n" + std::string(40, ' ') + "\"a\": 1}"));
  EXPECT_FALSE(matches(pretty, "{\n" + std::string(41, ' ') + "\"a\": 1}"));
  EXPECT_FALSE(matches(pretty, "{\n\n\"a\": 1}"));
  EXPECT_FALSE(matches(pretty, "{  \"a\": 1}"));
  EXPECT_TRUE(matches(pretty, "{ \"a\" : 1 }"));
  // Where pretty-printers put whitespace: line breaks after { [ , and before } ], a space around
  // a key's colon, nothing before a comma.
  EXPECT_TRUE(matches(pretty, "{\n  \"a\": 1\n}"));
  EXPECT_TRUE(matches(pretty, "{\"a\":1}"));
  EXPECT_FALSE(matches(pretty, "{\"a\"\n: 1}"));
  EXPECT_FALSE(matches(pretty, "{\"a\":\n  1}"));
  EXPECT_FALSE(matches(pretty, "{\"a\"  : 1}"));
  auto list = schema_grammar(OJson::parse(R"({"type": "array", "items": {"type": "integer"}})"), false);
  EXPECT_TRUE(matches(list, "[\n  1,\n  2\n]"));
  EXPECT_TRUE(matches(list, "[1, 2]"));
  EXPECT_FALSE(matches(list, "[1 , 2]"));
  EXPECT_FALSE(matches(list, "[1\n, 2]"));
  auto number = schema_grammar(OJson::parse(R"({"type": "number"})"), true);
  EXPECT_TRUE(matches(number, "1234567890123456.1234567890123456e12"));
  EXPECT_FALSE(matches(number, "12345678901234567"));
  EXPECT_FALSE(matches(number, "1.12345678901234567"));
  EXPECT_FALSE(matches(number, "1e123"));
  auto dt = schema_grammar(OJson::parse(R"({"type": "string", "format": "date-time"})"), true);
  EXPECT_TRUE(matches(dt, "\"2024-01-01T00:00:00.123456789Z\""));
  EXPECT_FALSE(matches(dt, "\"2024-01-01T00:00:00.1234567890Z\""));
  JsonSchemaOptions o;
  o.max_indent = 2;
  auto g = json_schema_to_grammar(R"({"type": "array"})", o);
  ASSERT_TRUE(g.ok());
  auto c = compile_or_die(g.value());
  EXPECT_TRUE(matches(c, "[\n  1,\n  2\n]"));
  EXPECT_FALSE(matches(c, "[\n   1]"));
}

TEST(JsonSchema, PatternsWithLengths) {
  auto g = schema_grammar(OJson::parse(R"({"type": "string", "pattern": "^a+$", "maxLength": 3})"), true);
  EXPECT_TRUE(matches(g, "\"aaa\""));
  EXPECT_FALSE(matches(g, "\"aaaa\""));
  EXPECT_FALSE(matches(g, "\"\""));
  g = schema_grammar(OJson::parse(R"({"type": "string", "pattern": "^[a-z\"]*$", "minLength": 2, "maxLength": 4})"), true);
  EXPECT_TRUE(matches(g, "\"\\\"a\""));  // an escaped quote is one character
  EXPECT_FALSE(matches(g, "\"a\""));
  EXPECT_FALSE(matches(g, "\"abcde\""));
  g = schema_grammar(OJson::parse(R"({"type": "string", "format": "uuid", "minLength": 36})"), true);
  EXPECT_TRUE(matches(g, "\"123e4567-e89b-12d3-a456-426614174000\""));
  g = schema_grammar(OJson::parse(R"({"type": "string", "pattern": "x", "minLength": 3, "maxLength": 5})"), true);
  EXPECT_TRUE(matches(g, "\"abxc\""));
  EXPECT_FALSE(matches(g, "\"abcd\""));
  EXPECT_FALSE(matches(g, "\"xx\""));
}

TEST(JsonSchema, JsonObjectModeAndNonStrict) {
  auto obj = compile_or_die(json_object_grammar());
  EXPECT_TRUE(matches(obj, "{}"));
  EXPECT_TRUE(matches(obj, "{\"a\": [1, {\"b\": null}], \"c\": \"\\u00e9\\n\"}"));
  EXPECT_FALSE(matches(obj, "[]"));
  EXPECT_FALSE(matches(obj, "\"x\""));
  EXPECT_FALSE(matches(obj, "{\"a\": \"\\ud800\"}"));  // a lone surrogate
  EXPECT_TRUE(matches(obj, "{\"a\": \"\\ud83d\\ude00\"}"));
  auto any = compile_or_die(json_value_grammar());
  EXPECT_TRUE(matches(any, "[true, false, null, -0.5e-3]"));
  JsonSchemaOptions loose;
  loose.strict = false;
  auto g = json_schema_to_grammar(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]})", loose);
  ASSERT_TRUE(g.ok());
  auto c = compile_or_die(g.value());
  EXPECT_TRUE(matches(c, "{\"a\": 1, \"b\": [2]}"));
  EXPECT_FALSE(matches(c, "{\"a\": 1, \"a\": 2}"));  // an extra key never repeats a listed one
}

}  // namespace
}  // namespace tk::grammar::testing
