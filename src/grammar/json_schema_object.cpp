// Objects and arrays. Properties come in the schema's order (as llama.cpp and xgrammar generate
// them); optional ones may be skipped, with the commas right. Extra properties, when allowed,
// follow the listed ones and never reuse a listed name (their keys are written without escapes).
#include <map>

#include "json_schema.h"

namespace tk::grammar {
namespace {

struct KeyTrie {
  std::map<uint32_t, int> children;
  bool terminal = false;
};

const CodepointSet kPlainChar = complement_set({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}});

Expr key_trie_expr(const std::vector<KeyTrie>& t, int node) {
  const KeyTrie& n = t[node];
  std::vector<Expr> alts;
  if (!n.terminal) alts.push_back(empty_expr());
  CodepointSet taken;
  for (const auto& [cp, child] : n.children) {
    std::string c;
    append_utf8(c, cp);
    alts.push_back(seq({lit(c), key_trie_expr(t, child)}));
    taken.push_back({cp, cp});
  }
  alts.push_back(seq({cls(subtract_sets(kPlainChar, normalize_set(taken))), star(cls(kPlainChar))}));
  return alt(std::move(alts));
}

Result<int64_t> count_keyword(const Json& s, const char* key, int64_t fallback, int64_t max, const std::string& path) {
  if (!s.contains(key)) return fallback;
  const Json& v = s[key];
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() != static_cast<double>(static_cast<int64_t>(v.get<double>())) ||
      v.get<double>() > static_cast<double>(max)) {
    return invalid_argument(std::string("json schema: ") + key + " must be a whole number from 0 to " + std::to_string(max) +
                            " at " + "#" + path);
  }
  return static_cast<int64_t>(v.get<double>());
}

}  // namespace

int32_t SchemaConverter::named_rule(const std::string& path, const std::string& fallback) {
  static const char* const kKeywords[] = {"properties", "items", "prefixItems", "$defs", "definitions", "anyOf",
                                          "oneOf", "allOf", "additionalProperties", "#"};
  std::string name;
  size_t end = path.size();
  while (end > 0 && name.empty()) {
    size_t slash = path.rfind('/', end - 1);
    std::string seg = path.substr(slash == std::string::npos ? 0 : slash + 1, end - (slash == std::string::npos ? 0 : slash + 1));
    bool keyword = seg.empty() || std::isdigit(static_cast<unsigned char>(seg[0]));
    for (const char* k : kKeywords) keyword = keyword || seg == k;
    if (!keyword) name = seg;
    if (slash == std::string::npos) break;
    end = slash;
  }
  if (name.size() > 40) name.resize(40);
  return b_.reserve_rule(name.empty() ? fallback : name + "-" + fallback);
}

Result<Expr> SchemaConverter::key_not_in(const std::vector<std::string>& names) {
  std::vector<KeyTrie> t(1);
  for (const std::string& name : names) {
    std::vector<uint32_t> cps;
    bool plain = true;
    for (size_t i = 0; i < name.size();) {
      uint32_t cp = 0;
      int len = decode_utf8(name, i, &cp);
      if (len == 0 || !set_contains(kPlainChar, cp)) plain = false;
      i += len ? len : 1;
      cps.push_back(cp);
    }
    if (!plain) continue;  // an extra key (no escapes) can never spell it
    if (cps.size() > 256) return invalid_argument("json schema: a property name over 256 characters with extra properties allowed");
    int node = 0;
    for (uint32_t cp : cps) {
      auto it = t[node].children.find(cp);
      if (it == t[node].children.end()) {
        t.push_back({});
        it = t[node].children.emplace(cp, static_cast<int>(t.size() - 1)).first;
      }
      node = it->second;
    }
    t[node].terminal = true;
  }
  return seq({lit("\""), key_trie_expr(t, 0), lit("\"")});
}

Result<Expr> SchemaConverter::object(const Json& schema, const std::string& path, int depth) {
  std::vector<std::pair<std::string, const Json*>> props;
  if (schema.contains("properties")) {
    if (!schema["properties"].is_object()) return error(path, "properties must be an object");
    for (const auto& [k, v] : schema["properties"].items()) props.push_back({k, &v});
  }
  std::map<std::string, bool> required;
  if (schema.contains("required")) {
    if (!schema["required"].is_array()) return error(path, "required must be an array");
    for (const Json& r : schema["required"]) {
      if (!r.is_string()) return error(path, "required must list strings");
      required[r.get<std::string>()] = true;
    }
  }
  static const Json kAny = Json::object();
  const Json* extra = nullptr;  // schema of extra properties, or none
  const Json* ap = schema.contains("additionalProperties") ? &schema["additionalProperties"] : nullptr;
  if (!ap && schema.contains("unevaluatedProperties")) ap = &schema["unevaluatedProperties"];
  if (ap) {
    if (!ap->is_boolean() && !ap->is_object()) return error(path, "additionalProperties must be a schema");
    if (!(ap->is_boolean() && !ap->get<bool>())) extra = ap->is_boolean() ? &kAny : ap;
  } else if (props.empty() || !opt_.strict) {
    extra = &kAny;
  }
  for (const auto& [name, req] : required) {
    bool listed = false;
    for (const auto& p : props) listed = listed || p.first == name;
    if (listed) continue;
    if (!extra) return error(path, "required property '" + name + "' is not allowed by additionalProperties: the schema matches nothing");
    props.push_back({name, extra});
  }
  TK_ASSIGN_OR_RETURN(int64_t min_p, count_keyword(schema, "minProperties", 0, 1 << 30, path));
  TK_ASSIGN_OR_RETURN(int64_t max_p, count_keyword(schema, "maxProperties", 1 << 30, 1 << 30, path));
  if (min_p > static_cast<int64_t>(required.size())) return unsupported(path, "minProperties");
  if (max_p < (extra ? (1 << 30) : static_cast<int64_t>(props.size()))) return unsupported(path, "maxProperties");

  int32_t rule = named_rule(path, "object");
  std::vector<Expr> kv;
  std::vector<std::string> names;
  for (const auto& [name, sub] : props) {
    TK_ASSIGN_OR_RETURN(Expr value, visit(*sub, path + "/properties/" + name, depth + 1));
    kv.push_back(seq({lit(Json(name).dump(-1, ' ', false, Json::error_handler_t::replace)), key_sep(), std::move(value)}));
    names.push_back(name);
  }
  Expr extra_kv, tail;
  if (extra) {
    Expr key = string_rule();
    if (!names.empty()) {
      TK_ASSIGN_OR_RETURN(key, key_not_in(names));
    }
    TK_ASSIGN_OR_RETURN(Expr value, visit(*extra, path + "/additionalProperties", depth + 1));
    extra_kv = seq({std::move(key), key_sep(), std::move(value)});
    tail = star(seq({sep(','), extra_kv}));
  }
  const size_t n = props.size();
  size_t first_required = n;
  for (size_t i = 0; i < n && first_required == n; ++i) {
    if (required.count(props[i].first)) first_required = i;
  }
  // after(i): the rest once something was written, from property i on. Past the first required
  // property it is written inline; before it each is a rule (two places use it).
  std::vector<Expr> after(n + 1);
  after[n] = tail;
  for (size_t i = n; i-- > 0;) {
    Expr item = seq({sep(','), kv[i]});
    Expr body = seq({required.count(props[i].first) ? item : opt(item), after[i + 1]});
    if (i > first_required || i == 0) {
      after[i] = std::move(body);
    } else {
      int32_t r = b_.add_rule(b_.name(rule) + "-after-" + std::to_string(i), std::move(body));
      after[i] = ref(r);
    }
  }
  std::vector<Expr> firsts;  // the first property written is one up to the first required
  for (size_t i = 0; i < n && i <= first_required; ++i) firsts.push_back(seq({kv[i], after[i + 1]}));
  if (first_required == n && extra) firsts.push_back(seq({extra_kv, tail}));
  Expr body = first_required < n
                  ? seq({lit("{"), ws(), alt(std::move(firsts)), ws(), lit("}")})
                  : seq({lit("{"), ws(), firsts.empty() ? empty_expr() : opt(seq({alt(std::move(firsts)), ws()})), lit("}")});
  b_.set_body(rule, std::move(body));
  return ref(rule);
}

Result<Expr> SchemaConverter::array(const Json& schema, const std::string& path, int depth) {
  std::vector<const Json*> tuple;
  const Json* rest = nullptr;
  static const Json kTrue = true, kFalse = false;
  std::string tuple_key = "prefixItems", rest_key = "items";
  if (schema.contains("prefixItems")) {
    if (!schema["prefixItems"].is_array()) return error(path, "prefixItems must be an array");
    for (const Json& s : schema["prefixItems"]) tuple.push_back(&s);
    if (schema.contains("items")) rest = &schema["items"];
  } else if (schema.contains("items") && schema["items"].is_array()) {
    tuple_key = "items";
    rest_key = "additionalItems";
    for (const Json& s : schema["items"]) tuple.push_back(&s);
    if (schema.contains("additionalItems")) rest = &schema["additionalItems"];
  } else if (schema.contains("items")) {
    rest = &schema["items"];
  }
  if (!rest) rest = (!tuple.empty() && opt_.strict) ? &kFalse : &kTrue;
  TK_ASSIGN_OR_RETURN(int64_t min, count_keyword(schema, "minItems", 0, opt_.limits.max_repeat, path));
  TK_ASSIGN_OR_RETURN(int64_t max, count_keyword(schema, "maxItems", kUnbounded, opt_.limits.max_repeat, path));
  const int64_t k = static_cast<int64_t>(tuple.size());
  bool rest_none = rest->is_boolean() && !rest->get<bool>();
  if (rest_none) max = max == kUnbounded ? k : std::min(max, k);
  if (max != kUnbounded && min > max) return error(path, "minItems above what maxItems/items allow: the schema matches nothing");
  int32_t rule = named_rule(path, "array");
  std::vector<Expr> elems;
  for (int64_t i = 0; i < k && (max == kUnbounded || i < max); ++i) {
    TK_ASSIGN_OR_RETURN(Expr e, visit(*tuple[i], path + "/" + tuple_key + "/" + std::to_string(i), depth + 1));
    elems.push_back(std::move(e));
  }
  Expr more;  // items after the tuple
  int64_t rmin = std::max<int64_t>(0, min - k);
  int64_t rmax = max == kUnbounded ? kUnbounded : std::max<int64_t>(0, max - k);
  if (!rest_none && rmax != 0) {
    TK_ASSIGN_OR_RETURN(Expr item, visit(*rest, path + "/" + rest_key, depth + 1));
    if (k > 0) {
      more = rep(seq({sep(','), item}), rmin, rmax);
    } else {
      Expr tail = rep(seq({sep(','), item}), std::max<int64_t>(rmin - 1, 0), rmax == kUnbounded ? kUnbounded : rmax - 1);
      more = seq({item, std::move(tail)});
      if (rmin == 0) more = opt(std::move(more));
    }
  }
  // Element i may be the last one written once i >= minItems.
  Expr list = std::move(more);
  for (int64_t i = static_cast<int64_t>(elems.size()); i-- > 0;) {
    Expr body = seq({i > 0 ? sep(',') : empty_expr(), elems[i], std::move(list)});
    list = i >= min ? opt(std::move(body)) : std::move(body);
  }
  Expr body;
  if (list.kind == Expr::Kind::kEmpty) {
    body = seq({lit("["), ws(), lit("]")});
  } else if (list.kind == Expr::Kind::kRepeat && list.min == 0 && list.max == 1) {
    body = seq({lit("["), ws(), opt(seq({std::move(list.children[0]), ws()})), lit("]")});
  } else {
    body = seq({lit("["), ws(), std::move(list), ws(), lit("]")});
  }
  b_.set_body(rule, std::move(body));
  return ref(rule);
}

}  // namespace tk::grammar
