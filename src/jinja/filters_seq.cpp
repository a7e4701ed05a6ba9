// Sequence filters (jinja2.filters): first/last/length/list/reverse, sort/dictsort/unique/
// groupby (Python's stable sorted() over Python comparisons), min/max/sum, join, batch/slice,
// items, random.
#include <algorithm>
#include <random>
#include <unordered_set>

#include "filters.h"
#include "pystr.h"
#include "ustr.h"

namespace tk::jinja::detail {

namespace {

Value f_first(Interpreter&, const Value& v, CallArgs& c) {
  Args("first", c, {});
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
}

Value f_last(Interpreter&, const Value& v, CallArgs& c) {
  Args("last", c, {});
  if (v.is_object() || v.is_none() || v.is_number()) type_error("'" + type_name(v) + "' object is not reversible");
  std::vector<Value> items = iterate(v);
  return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
}

Value f_length(Interpreter&, const Value& v, CallArgs& c) {
  Args("length", c, {});
  return Value::integer(length(v));
}

Value f_list(Interpreter&, const Value& v, CallArgs& c) {
  Args("list", c, {});
  return Value::list(iterate(v));
}

Value f_reverse(Interpreter&, const Value& v, CallArgs& c) {
  Args("reverse", c, {});
  if (v.is_string()) {
    std::u32string s = decode_utf8(v.str());
    std::reverse(s.begin(), s.end());
    return Value::string(encode_utf8(s));
  }
  std::vector<Value> items = iterate(v);
  std::reverse(items.begin(), items.end());
  if (v.is_object()) return Value::list(std::move(items));  // reversed() fails; Jinja falls back to a list
  return generator(std::move(items), v.is_dict() ? "dict_reversekeyiterator" : "list_reverseiterator");
}

std::vector<Value> sorted(std::vector<Value> items, const std::function<Value(const Value&)>& key, bool reverse) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t k = 0; k < items.size(); ++k) keyed.emplace_back(key(items[k]), k);
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& a, const auto& b) {
    return reverse ? less_than(b.first, a.first) : less_than(a.first, b.first);
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (const auto& [k, index] : keyed) out.push_back(items[index]);
  return out;
}

Value f_sort(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("sort", c, {"reverse", "case_sensitive", "attribute"});
  const bool lower = !a.get_bool(1, false);
  std::function<Value(const Value&)> key = [lower](const Value& x) { return lower ? ignore_case(x) : x; };
  if (a.has(2) && !a.get(2).is_none()) {
    const Value& attribute = a.get(2);
    std::vector<std::function<Value(const Value&)>> getters;
    if (attribute.is_string()) {
      for (const std::string& part : py_split(attribute.str(), std::string(","), -1)) getters.push_back(attr_getter(interp, Value::string(part), std::nullopt, lower));
    } else {
      getters.push_back(attr_getter(interp, attribute, std::nullopt, lower));
    }
    key = [getters](const Value& x) {
      std::vector<Value> parts;
      for (const auto& g : getters) parts.push_back(g(x));
      return Value::list(std::move(parts));
    };
  }
  return Value::list(sorted(iterate(v), key, a.get_bool(0, false)));
}

Value f_dictsort(Interpreter&, const Value& v, CallArgs& c) {
  Args a("dictsort", c, {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) raise(ErrorKind::kUndefinedError, "'" + type_repr(v) + "' has no attribute 'items'");
  const std::string by = a.get_string(1, "key");
  if (by != "key" && by != "value") raise(ErrorKind::kTemplateRuntimeError, "You can only sort by either \"key\" or \"value\"");
  const size_t pos = by == "key" ? 0 : 1;
  const bool lower = !a.get_bool(0, false);
  std::vector<Value> pairs;
  for (const auto& [k, value] : v.dict().entries()) pairs.push_back(Value::tuple({k, value}));
  auto key = [pos, lower](const Value& pair) { return lower ? ignore_case(pair.items()[pos]) : pair.items()[pos]; };
  return Value::list(sorted(std::move(pairs), key, a.get_bool(2, false)));
}

Value f_unique(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("unique", c, {"case_sensitive", "attribute"});
  auto key = attr_getter(interp, a.get_or(1, Value::none()), std::nullopt, !a.get_bool(0, false));
  std::unordered_set<std::string> seen;
  std::vector<Value> out;
  for (const Value& item : iterate(v)) {
    if (seen.insert(hash_key(key(item))).second) out.push_back(item);
  }
  return generator(std::move(out));
}

Value min_or_max(Interpreter& interp, const Value& v, CallArgs& c, bool want_max) {
  Args a(want_max ? "max" : "min", c, {"case_sensitive", "attribute"});
  std::vector<Value> items = iterate(v);
  if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
  auto key = attr_getter(interp, a.get_or(1, Value::none()), std::nullopt, !a.get_bool(0, false));
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t k = 1; k < items.size(); ++k) {
    Value kk = key(items[k]);
    if (want_max ? less_than(best_key, kk) : less_than(kk, best_key)) best = k, best_key = kk;
  }
  return items[best];
}

Value f_min(Interpreter& interp, const Value& v, CallArgs& c) { return min_or_max(interp, v, c, false); }
Value f_max(Interpreter& interp, const Value& v, CallArgs& c) { return min_or_max(interp, v, c, true); }

Value f_sum(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("sum", c, {"attribute", "start"});
  auto key = attr_getter(interp, a.get_or(0, Value::none()));
  Value total = a.get_or(1, Value::integer(0));
  for (const Value& item : iterate(v)) total = binary_op(BinaryOp::kAdd, total, key(item), interp);
  return total;
}

Value f_join(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("join", c, {"d", "attribute"});
  const std::string sep = a.has(0) ? to_str(a.get(0)) : "";
  auto key = attr_getter(interp, a.get_or(1, Value::none()));
  std::string out;
  bool first = true;
  for (const Value& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += to_str(key(item));
    interp.check_size(static_cast<int64_t>(out.size()));
  }
  return Value::string(std::move(out));
}

Value f_batch(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("batch", c, {"linecount", "fill_with"}, 1);
  const int64_t n = a.get_int(0, 1);
  std::vector<Value> out, cur;
  for (const Value& item : iterate(v)) {
    if (static_cast<int64_t>(cur.size()) == n) out.push_back(Value::list(std::move(cur))), cur.clear();
    cur.push_back(item);
  }
  if (!cur.empty()) {
    if (a.has(1) && !a.get(1).is_none()) {
      interp.count_iterations(n - static_cast<int64_t>(cur.size()));
      while (static_cast<int64_t>(cur.size()) < n) cur.push_back(a.get(1));
    }
    out.push_back(Value::list(std::move(cur)));
  }
  return generator(std::move(out));
}

Value f_slice(Interpreter&, const Value& v, CallArgs& c) {
  Args a("slice", c, {"slices", "fill_with"}, 1);
  const int64_t slices = a.get_int(0, 1);
  if (slices == 0) raise(ErrorKind::kZeroDivisionError, "integer division or modulo by zero");
  if (slices < 0 || slices > 100000) raise(ErrorKind::kValueError, "slice count out of range");
  std::vector<Value> seq = iterate(v), out;
  const int64_t n = static_cast<int64_t>(seq.size()), per = n / slices, extra = n % slices;
  int64_t offset = 0;
  for (int64_t k = 0; k < slices; ++k) {
    const int64_t start = offset + k * per;
    if (k < extra) ++offset;
    const int64_t end = offset + (k + 1) * per;
    std::vector<Value> part(seq.begin() + start, seq.begin() + end);
    if (a.has(1) && !a.get(1).is_none() && k >= extra) part.push_back(a.get(1));
    out.push_back(Value::list(std::move(part)));
  }
  return generator(std::move(out));
}

Value f_groupby(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("groupby", c, {"attribute", "default", "case_sensitive"}, 1);
  std::optional<Value> fallback;
  if (a.has(1) && !a.get(1).is_none()) fallback = a.get(1);
  const bool lower = !a.get_bool(2, false);
  auto key = attr_getter(interp, a.get(0), fallback, lower);
  auto shown = attr_getter(interp, a.get(0), fallback, false);
  std::vector<Value> items = sorted(iterate(v), key, false), groups;
  for (size_t k = 0; k < items.size();) {
    Value group_key = key(items[k]);
    std::vector<Value> members;
    size_t j = k;
    while (j < items.size() && equals(key(items[j]), group_key)) members.push_back(items[j++]);
    Value grouper = lower ? shown(members[0]) : group_key;
    groups.push_back(Value::group_tuple(std::move(grouper), Value::list(std::move(members))));
    k = j;
  }
  return Value::list(std::move(groups));
}

Value f_items(Interpreter&, const Value& v, CallArgs& c) {
  Args("items", c, {});
  if (v.is_undefined()) return generator({});
  if (!v.is_dict()) type_error("Can only get item pairs from a mapping.");
  std::vector<Value> pairs;
  for (const auto& [k, value] : v.dict().entries()) pairs.push_back(Value::tuple({k, value}));
  return generator(std::move(pairs));
}

Value f_random(Interpreter&, const Value& v, CallArgs& c) {
  Args("random", c, {});
  std::vector<Value> items = v.is_dict() ? std::vector<Value>{} : iterate(v);
  if (v.is_dict()) raise(ErrorKind::kKeyError, "0");
  if (items.empty()) return Value::undefined("No random item, sequence was empty.");
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}

}  // namespace

void add_sequence_filters(FilterTable& t) {
  t["first"] = f_first;
  t["last"] = f_last;
  t["length"] = t["count"] = f_length;
  t["list"] = f_list;
  t["reverse"] = f_reverse;
  t["sort"] = f_sort;
  t["dictsort"] = f_dictsort;
  t["unique"] = f_unique;
  t["min"] = f_min;
  t["max"] = f_max;
  t["sum"] = f_sum;
  t["join"] = f_join;
  t["batch"] = f_batch;
  t["slice"] = f_slice;
  t["groupby"] = f_groupby;
  t["items"] = f_items;
  t["random"] = f_random;
}

}  // namespace tk::jinja::detail
