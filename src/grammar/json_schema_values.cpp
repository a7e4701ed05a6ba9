// JSON values as grammar: the bounded whitespace, strings (lengths, patterns, formats) and the
// shared any-value rules. Every run a model could repeat forever is bounded: gaps between tokens,
// number digits, fractional seconds. String contents are bounded only by the schema (maxLength).
#include "json_schema.h"
#include "regex.h"

namespace tk::grammar {
namespace {

Expr hex() { return cls({{'0', '9'}, {'A', 'F'}, {'a', 'f'}}); }
Expr digit() { return range('0', '9'); }

// \uXXXX naming a character: not a lone surrogate (nlohmann and Python reject those), but a
// high-low surrogate pair is one character.
Expr unicode_escape() {
  Expr non_surrogate = alt({seq({cls({{'0', '9'}, {'A', 'C'}, {'a', 'c'}, {'E', 'F'}, {'e', 'f'}}), rep(hex(), 3, 3)}),
                            seq({cls_chars("Dd"), range('0', '7'), rep(hex(), 2, 2)})});
  Expr pair = seq({cls_chars("Dd"), cls({{'8', '9'}, {'A', 'B'}, {'a', 'b'}}), rep(hex(), 2, 2), lit("\\u"),
                   cls_chars("Dd"), cls({{'C', 'F'}, {'c', 'f'}}), rep(hex(), 2, 2)});
  return alt({std::move(non_surrogate), std::move(pair)});
}

Expr two_digits(char lo_tens, char hi_tens, char max_units_at_hi) {
  return alt({seq({range(lo_tens, hi_tens - 1), digit()}), seq({lit(std::string(1, hi_tens)), range('0', max_units_at_hi)})});
}

// Real calendar dates only (no February 29: a grammar cannot know leap years cheaply).
Expr date_expr() {
  Expr year = seq({range('1', '9'), rep(digit(), 3, 3)});
  Expr day28 = alt({seq({lit("0"), range('1', '9')}), seq({lit("1"), digit()}), seq({lit("2"), range('0', '8')})});
  Expr day30 = alt({seq({lit("0"), range('1', '9')}), seq({range('1', '2'), digit()}), lit("30")});
  Expr day31 = alt({seq({lit("0"), range('1', '9')}), seq({range('1', '2'), digit()}), lit("30"), lit("31")});
  Expr md = alt({seq({alt({lit("01"), lit("03"), lit("05"), lit("07"), lit("08"), lit("10"), lit("12")}), lit("-"), day31}),
                 seq({alt({lit("04"), lit("06"), lit("09"), lit("11")}), lit("-"), day30}), seq({lit("02-"), day28})});
  return seq({year, lit("-"), md});
}

Expr time_expr(int max_fraction) {
  Expr hh = two_digits('0', '2', '3');
  Expr mm = seq({range('0', '5'), digit()});
  Expr frac = opt(seq({lit("."), rep(digit(), 1, max_fraction)}));
  Expr zone = alt({lit("Z"), seq({cls_chars("+-"), hh, lit(":"), mm})});
  return seq({hh, lit(":"), mm, lit(":"), mm, frac, zone});
}

Expr label(int max_inner) {
  Expr alnum = cls({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}});
  return seq({alnum, opt(seq({rep(cls({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'-', '-'}}), 0, max_inner), alnum}))});
}

}  // namespace

// Whitespace goes where pretty-printers put it (json.dumps, JSON.stringify, serde_json, Go,
// Jackson): a line break, if any, only after an opening bracket or a comma and before a closing
// bracket; never before a comma; around a colon at most one space. A small model given a gap
// that may hold a newline and an indent everywhere spends its tokens there (measured on the demo
// model: a quarter of the tokens of the outputs that ran to max_tokens were such whitespace).
Expr SchemaConverter::ws() const {
  if (opt_.compact) return empty_expr();
  return alt({empty_expr(), lit(" "), seq({lit("\n"), rep(cls_chars(" \t"), 0, opt_.max_indent)})});
}

Expr SchemaConverter::sep(char c) const { return seq({lit(std::string(1, c)), ws()}); }

Expr SchemaConverter::key_sep() const {
  if (opt_.compact) return lit(":");
  return seq({opt(lit(" ")), lit(":"), opt(lit(" "))});
}

Expr SchemaConverter::json_char() const {
  Expr plain = cls(complement_set({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}));
  Expr escape = seq({lit("\\"), alt({cls_chars("\"\\/bfnrt"), seq({lit("u"), unicode_escape()})})});
  return alt({std::move(plain), std::move(escape)});
}

Expr SchemaConverter::string_rule() {
  if (string_ < 0) string_ = b_.add_rule("string", seq({lit("\""), star(json_char()), lit("\"")}));
  return ref(string_);
}

Expr SchemaConverter::unbounded_integer() const {
  return seq({opt(lit("-")), alt({lit("0"), seq({range('1', '9'), rep(digit(), 0, opt_.max_integer_digits - 1)})})});
}

Expr SchemaConverter::unbounded_number() const {
  return seq({unbounded_integer(), opt(seq({lit("."), rep(digit(), 1, opt_.max_fraction_digits)})),
              opt(seq({cls_chars("eE"), opt(cls_chars("+-")), rep(digit(), 1, opt_.max_exponent_digits)}))});
}

Expr SchemaConverter::value_rule() {
  if (value_ >= 0) return ref(value_);
  value_ = b_.reserve_rule("value");
  Expr body = alt({object_rule(), array_rule(), string_rule(), unbounded_number(), lit("true"), lit("false"), lit("null")});
  b_.set_body(value_, std::move(body));
  return ref(value_);
}

Expr SchemaConverter::object_rule() {
  if (object_ >= 0) return ref(object_);
  object_ = b_.reserve_rule("object");
  Expr kv = seq({string_rule(), key_sep(), value_rule()});
  Expr body = seq({lit("{"), ws(), opt(seq({kv, star(seq({sep(','), kv})), ws()})), lit("}")});
  b_.set_body(object_, std::move(body));
  return ref(object_);
}

Expr SchemaConverter::array_rule() {
  if (array_ >= 0) return ref(array_);
  array_ = b_.reserve_rule("array");
  Expr v = value_rule();
  Expr body = seq({lit("["), ws(), opt(seq({v, star(seq({sep(','), v})), ws()})), lit("]")});
  b_.set_body(array_, std::move(body));
  return ref(array_);
}

Expr SchemaConverter::json_literal(const Json& v) {
  if (v.is_object() || v.is_array()) {
    std::vector<Expr> items;
    for (const auto& [k, x] : v.items()) {
      Expr value = json_literal(x);
      if (v.is_object()) value = seq({lit(Json(k).dump(-1, ' ', false, Json::error_handler_t::replace)), key_sep(), std::move(value)});
      if (!items.empty()) items.push_back(sep(','));
      items.push_back(std::move(value));
    }
    const char* open = v.is_object() ? "{" : "[";
    const char* close = v.is_object() ? "}" : "]";
    if (items.empty()) return seq({lit(open), ws(), lit(close)});
    return seq({lit(open), ws(), seq(std::move(items)), ws(), lit(close)});
  }
  return lit(v.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Result<Expr> SchemaConverter::format(const std::string& name, const std::string& path) {
  (void)path;
  if (name == "date") return date_expr();
  if (name == "time") return time_expr(opt_.max_fraction_seconds);
  if (name == "date-time") return seq({date_expr(), lit("T"), time_expr(opt_.max_fraction_seconds)});
  if (name == "uuid") {
    return seq({rep(hex(), 8, 8), lit("-"), rep(hex(), 4, 4), lit("-"), rep(hex(), 4, 4), lit("-"), rep(hex(), 4, 4),
                lit("-"), rep(hex(), 12, 12)});
  }
  if (name == "email") {
    Expr atom = cls({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}});
    Expr local = seq({atom, opt(seq({rep(cls({{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'.', '.'}, {'_', '_'}, {'+', '+'}, {'-', '-'}}), 0, 30), atom}))});
    return seq({local, lit("@"), label(20), rep(seq({lit("."), label(20)}), 1, 3)});
  }
  if (name == "ipv4") {
    Expr octet = alt({seq({lit("25"), range('0', '5')}), seq({lit("2"), range('0', '4'), digit()}),
                      seq({lit("1"), digit(), digit()}), seq({range('1', '9'), digit()}), digit()});
    return seq({octet, rep(seq({lit("."), octet}), 3, 3)});
  }
  if (name == "hostname") return seq({label(20), rep(seq({lit("."), label(20)}), 0, 4)});
  if (name == "uri") {
    Expr scheme = seq({range('a', 'z'), rep(cls({{'a', 'z'}, {'0', '9'}, {'+', '+'}, {'.', '.'}, {'-', '-'}}), 0, 10)});
    // No '/' inside a segment: each '/' starts the next one, so the automaton stays deterministic
    // (a '/' that could be either would multiply the parses, and the states, per segment).
    Expr path_char = cls({{'A', 'Z'}, {'a', 'z'}, {'0', '9'}, {'-', '.'}, {'_', '_'}, {'~', '~'}, {':', ':'},
                          {'?', '?'}, {'#', '#'}, {'@', '@'}, {'=', '='}, {'&', '&'}, {'%', '%'}, {'+', '+'}});
    return seq({scheme, lit("://"), label(30), rep(seq({lit("."), label(30)}), 0, 4), rep(seq({lit("/"), rep(path_char, 0, 60)}), 0, 8)});
  }
  return empty_expr();  // unknown formats are annotations (JSON Schema's default): any string
}

Result<Expr> SchemaConverter::string(const Json& schema, const std::string& path) {
  int64_t min = 0, max = kUnbounded;
  for (const char* key : {"minLength", "maxLength"}) {
    if (!schema.contains(key)) continue;
    const Json& v = schema[key];
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() != static_cast<double>(static_cast<int64_t>(v.get<double>())) ||
        v.get<double>() > static_cast<double>(opt_.limits.max_repeat)) {
      return error(path, std::string(key) + " must be a whole number from 0 to " + std::to_string(opt_.limits.max_repeat));
    }
    (key[1] == 'i' ? min : max) = static_cast<int64_t>(v.get<double>());
  }
  if (max != kUnbounded && max < min) return error(path, "maxLength below minLength: the schema matches nothing");
  std::optional<Expr> content;
  if (schema.contains("pattern")) {
    if (!schema["pattern"].is_string()) return error(path, "pattern must be a string");
    Expr any_chars = star(cls(complement_set({})));
    Result<RegexParse> re = parse_regex(schema["pattern"].get<std::string>(), false, any_chars, opt_.limits);
    if (!re.ok()) return error(path, "pattern: " + re.status().message());
    content = re->expr;
  } else if (schema.contains("format") && schema["format"].is_string()) {
    TK_ASSIGN_OR_RETURN(Expr f, format(schema["format"].get<std::string>(), path));
    if (f.kind != Expr::Kind::kEmpty) content = std::move(f);
  }
  if (!content) {
    if (min == 0 && max == kUnbounded) return string_rule();
    return seq({lit("\""), rep(json_char(), min, max), lit("\"")});
  }
  // A pattern or format bounds the length itself; minLength/maxLength must then already hold.
  LengthRange r = length_range(*content);
  if (r.min < min || (max != kUnbounded && (r.max < 0 || r.max > max))) {  // the lengths cut the pattern
    Result<Expr> limited = limit_length(*content, min, max, true, b_, b_.name(named_rule(path, "chars")));
    if (!limited.ok()) return error(path, limited.status().message());
    return seq({lit("\""), std::move(limited).value(), lit("\"")});
  }
  return seq({lit("\""), json_encode_chars(*content), lit("\"")});
}

}  // namespace tk::grammar
