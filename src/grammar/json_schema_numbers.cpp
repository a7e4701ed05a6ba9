// Integers and numbers with minimum/maximum as grammar: integer ranges decomposed digit by digit
// (as llama.cpp's converter does), numbers as an integer part with a fraction whose zeroness the
// bounds decide. Bounds that are not whole numbers are rounded inwards (x >= 0.5 becomes x >= 1):
// every output still validates, a few valid values are never produced. Bounded numbers have no
// exponent. Digits stay within the options' limits either way.
#include <cmath>

#include "json_schema.h"

namespace tk::grammar {
namespace {

Expr digits(int64_t n) { return rep(range('0', '9'), n, n); }

bool all_of(const std::string& d, size_t i, char c) {
  for (size_t k = i; k < d.size(); ++k) {
    if (d[k] != c) return false;
  }
  return true;
}

// Strings of length |d| - i that are >= / <= d[i..].
Expr suffix_ge(const std::string& d, size_t i) {
  if (i == d.size()) return empty_expr();
  if (all_of(d, i, '0')) return digits(static_cast<int64_t>(d.size() - i));
  std::vector<Expr> alts = {seq({lit(d.substr(i, 1)), suffix_ge(d, i + 1)})};
  if (d[i] < '9') alts.push_back(seq({range(d[i] + 1, '9'), digits(static_cast<int64_t>(d.size() - i - 1))}));
  return alt(std::move(alts));
}

Expr suffix_le(const std::string& d, size_t i) {
  if (i == d.size()) return empty_expr();
  if (all_of(d, i, '9')) return digits(static_cast<int64_t>(d.size() - i));
  std::vector<Expr> alts = {seq({lit(d.substr(i, 1)), suffix_le(d, i + 1)})};
  if (d[i] > '0') alts.push_back(seq({range('0', d[i] - 1), digits(static_cast<int64_t>(d.size() - i - 1))}));
  return alt(std::move(alts));
}

// Numbers whose digit strings a, b have the same length, a <= b.
Expr same_length(const std::string& a, const std::string& b, size_t i) {
  if (i == a.size()) return empty_expr();
  if (a[i] == b[i]) return seq({lit(a.substr(i, 1)), same_length(a, b, i + 1)});
  int64_t rest = static_cast<int64_t>(a.size() - i - 1);
  std::vector<Expr> alts = {seq({lit(a.substr(i, 1)), suffix_ge(a, i + 1)})};
  if (a[i] + 1 < b[i]) alts.push_back(seq({range(a[i] + 1, b[i] - 1), digits(rest)}));
  alts.push_back(seq({lit(b.substr(i, 1)), suffix_le(b, i + 1)}));
  return alt(std::move(alts));
}

// Non-negative integers in [a, b], written without leading zeros.
Expr nonneg_range(int64_t a, int64_t b) {
  std::vector<Expr> alts;
  int64_t low = 0, high = 9;
  for (int len = 1; len <= 19 && low <= b; ++len) {
    int64_t lo = std::max(a, low), hi = std::min(b, high);
    if (lo <= hi) alts.push_back(same_length(std::to_string(lo), std::to_string(hi), 0));
    low = high + 1;
    if (high > INT64_MAX / 10) break;
    high = high * 10 + 9;
  }
  return alt(std::move(alts));
}

Expr int_range(int64_t lo, int64_t hi) {
  if (hi < 0) return seq({lit("-"), nonneg_range(-hi, -lo)});
  if (lo >= 0) return nonneg_range(lo, hi);
  return alt({seq({lit("-"), nonneg_range(1, -lo)}), nonneg_range(0, hi)});
}

struct Bound {
  bool present = false;
  double value = 0;
  bool strict = false;
};

Status read_bound(const Json& s, const char* inclusive, const char* exclusive, Bound* out, const std::string& where) {
  auto number = [&](const char* key, double* v) -> Status {
    const Json& j = s[key];
    if (!j.is_number() || !std::isfinite(j.get<double>())) {
      return invalid_argument(std::string("json schema: ") + key + " must be a number at " + where);
    }
    *v = j.get<double>();
    return {};
  };
  if (s.contains(inclusive)) {
    TK_RETURN_IF_ERROR(number(inclusive, &out->value));
    out->present = true;
  }
  if (s.contains(exclusive)) {
    const Json& e = s[exclusive];
    if (e.is_boolean()) {  // draft 4: a flag on the inclusive bound
      out->strict = out->present && e.get<bool>();
    } else {
      double v = 0;
      TK_RETURN_IF_ERROR(number(exclusive, &v));
      bool lower = inclusive[1] == 'i';
      if (!out->present || (lower ? v >= out->value : v <= out->value)) {
        *out = Bound{true, v, true};
      }
    }
  }
  return {};
}

}  // namespace

Result<Expr> SchemaConverter::integer(const Json& schema, const std::string& path) {
  Bound lo_b, hi_b;
  std::string where = "#" + path;
  TK_RETURN_IF_ERROR(read_bound(schema, "minimum", "exclusiveMinimum", &lo_b, where));
  TK_RETURN_IF_ERROR(read_bound(schema, "maximum", "exclusiveMaximum", &hi_b, where));
  if (!lo_b.present && !hi_b.present) return unbounded_integer();
  const double lim = std::pow(10.0, opt_.max_integer_digits) - 1;
  double lo = -lim, hi = lim;
  if (lo_b.present) lo = std::max(lo, lo_b.strict && lo_b.value == std::floor(lo_b.value) ? lo_b.value + 1 : std::ceil(lo_b.value));
  if (hi_b.present) hi = std::min(hi, hi_b.strict && hi_b.value == std::floor(hi_b.value) ? hi_b.value - 1 : std::floor(hi_b.value));
  if (lo > hi) return error(path, "no integer within minimum/maximum (and the digit limit): the schema matches nothing");
  return int_range(static_cast<int64_t>(lo), static_cast<int64_t>(hi));
}

Result<Expr> SchemaConverter::number(const Json& schema, const std::string& path) {
  Bound lo_b, hi_b;
  std::string where = "#" + path;
  TK_RETURN_IF_ERROR(read_bound(schema, "minimum", "exclusiveMinimum", &lo_b, where));
  TK_RETURN_IF_ERROR(read_bound(schema, "maximum", "exclusiveMaximum", &hi_b, where));
  if (!lo_b.present && !hi_b.present) return unbounded_number();
  const int64_t lim = static_cast<int64_t>(std::pow(10.0, opt_.max_integer_digits)) - 1;
  // Whole-number bounds: L <= x (or L < x), x <= H (or x < H).
  auto whole = [&](const Bound& b, bool lower, int64_t* v, bool* strict) {
    double r = lower ? std::ceil(b.value) : std::floor(b.value);
    *strict = b.strict && r == b.value;
    *v = static_cast<int64_t>(std::clamp(r, -static_cast<double>(lim), static_cast<double>(lim)));
    if (std::fabs(r) > static_cast<double>(lim)) *strict = false;
  };
  int64_t L = -lim, H = lim;
  bool ls = false, hs = false;
  if (lo_b.present) whole(lo_b, true, &L, &ls);
  if (hi_b.present) whole(hi_b, false, &H, &hs);
  if (L > H || (L == H && (ls || hs))) return error(path, "no number within minimum/maximum: the schema matches nothing");
  const int f = opt_.max_fraction_digits;
  Expr frac_any = opt(seq({lit("."), rep(range('0', '9'), 1, f)}));
  Expr frac_nonzero = seq({lit("."), rep(range('0', '9'), 0, f - 1), range('1', '9')});
  Expr frac_zero = opt(seq({lit("."), rep(lit("0"), 1, f)}));
  // y in [a, b] for a >= 0, written I(.F)?: I = a needs a non-zero fraction when a is excluded,
  // I = b a zero one.
  // Past the digit limit a side is open: its last integer takes any fraction.
  const bool lo_open = !lo_b.present || std::ceil(lo_b.value) < -static_cast<double>(lim);
  const bool hi_open = !hi_b.present || std::floor(hi_b.value) > static_cast<double>(lim);
  auto nonneg = [&](int64_t a, bool a_strict, int64_t b, bool b_strict, bool b_open) {
    std::vector<Expr> alts;
    if (a == b) {
      if (!a_strict && !b_strict) alts.push_back(seq({lit(std::to_string(a)), frac_zero}));
      return alt(std::move(alts));
    }
    alts.push_back(seq({lit(std::to_string(a)), a_strict ? frac_nonzero : frac_any}));
    if (a + 1 <= b - 1) alts.push_back(seq({nonneg_range(a + 1, b - 1), frac_any}));
    if (!b_strict) alts.push_back(seq({lit(std::to_string(b)), b_open ? frac_any : frac_zero}));
    return alt(std::move(alts));
  };
  std::vector<Expr> parts;
  if (H >= 0) parts.push_back(nonneg(L >= 0 ? L : 0, L >= 0 && ls, H, hs, hi_open));
  if (L < 0) parts.push_back(seq({lit("-"), nonneg(H < 0 ? -H : 0, H < 0 ? hs : true, -L, ls, lo_open)}));
  return alt(std::move(parts));
}

}  // namespace tk::grammar
