// Python's operators over template values: arithmetic with int/float promotion and Python's
// floor division and modulo, str/list concatenation and repetition (bounded by the output
// limit), comparisons, `in`, indexing and slicing by code point.
#include <algorithm>
#include <cmath>
#include <limits>

#include "interpreter.h"
#include "pyformat.h"
#include "ustr.h"

namespace tk::jinja::detail {

namespace {

const char* op_symbol(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "+";
    case BinaryOp::kSub: return "-";
    case BinaryOp::kMul: return "*";
    case BinaryOp::kDiv: return "/";
    case BinaryOp::kFloorDiv: return "//";
    case BinaryOp::kMod: return "%";
    case BinaryOp::kPow: return "** or pow()";
  }
  return "?";
}

[[noreturn]] void unsupported(BinaryOp op, const Value& a, const Value& b) {
  type_error(std::string("unsupported operand type(s) for ") + op_symbol(op) + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
}

[[noreturn]] void overflow() { raise(ErrorKind::kOverflowError, "integer result does not fit in 64 bits"); }

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

Value int_pow(int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) raise(ErrorKind::kZeroDivisionError, "0.0 cannot be raised to a negative power");
    return Value::number(std::pow(static_cast<double>(base), static_cast<double>(exp)));
  }
  int64_t result = 1;
  while (exp > 0) {
    if (exp & 1) {
      if (__builtin_mul_overflow(result, base, &result)) overflow();
    }
    exp >>= 1;
    if (exp > 0 && __builtin_mul_overflow(base, base, &base)) overflow();
  }
  return Value::integer(result);
}

Value arithmetic(BinaryOp op, const Value& a, const Value& b) {
  const bool floats = a.is_float() || b.is_float();
  if (!floats) {
    int64_t x = a.as_int(), y = b.as_int(), r = 0;
    switch (op) {
      case BinaryOp::kAdd: if (__builtin_add_overflow(x, y, &r)) overflow(); return Value::integer(r);
      case BinaryOp::kSub: if (__builtin_sub_overflow(x, y, &r)) overflow(); return Value::integer(r);
      case BinaryOp::kMul: if (__builtin_mul_overflow(x, y, &r)) overflow(); return Value::integer(r);
      case BinaryOp::kDiv:
        if (y == 0) raise(ErrorKind::kZeroDivisionError, "division by zero");
        return Value::number(static_cast<double>(x) / static_cast<double>(y));
      case BinaryOp::kFloorDiv: case BinaryOp::kMod: {
        if (y == 0) raise(ErrorKind::kZeroDivisionError, op == BinaryOp::kMod ? "integer modulo by zero" : "integer division or modulo by zero");
        if (x == std::numeric_limits<int64_t>::min() && y == -1) overflow();
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          --q;
          m += y;
        }
        return Value::integer(op == BinaryOp::kFloorDiv ? q : m);
      }
      case BinaryOp::kPow: return int_pow(x, y);
    }
  }
  double x = a.as_float(), y = b.as_float();
  switch (op) {
    case BinaryOp::kAdd: return Value::number(x + y);
    case BinaryOp::kSub: return Value::number(x - y);
    case BinaryOp::kMul: return Value::number(x * y);
    case BinaryOp::kDiv:
      if (y == 0) raise(ErrorKind::kZeroDivisionError, "float division by zero");
      return Value::number(x / y);
    case BinaryOp::kFloorDiv: case BinaryOp::kMod: {
      if (y == 0) raise(ErrorKind::kZeroDivisionError, op == BinaryOp::kMod ? "float modulo" : "float floor division by zero");
      // CPython's float_divmod.
      double m = std::fmod(x, y), div = (x - m) / y;
      if (m != 0) {
        if ((y < 0) != (m < 0)) {
          m += y;
          div -= 1.0;
        }
      } else {
        m = std::copysign(0.0, y);
      }
      if (op == BinaryOp::kMod) return Value::number(m);
      double floor_div = std::copysign(0.0, x / y);
      if (div != 0) {
        floor_div = std::floor(div);
        if (div - floor_div > 0.5) floor_div += 1.0;
      }
      return Value::number(floor_div);
    }
    case BinaryOp::kPow:
      if (x == 0 && y < 0) raise(ErrorKind::kZeroDivisionError, "0.0 cannot be raised to a negative power");
      return Value::number(std::pow(x, y));
  }
  return Value();
}

Value repeat(const Value& seq, int64_t times, const Interpreter& interp) {
  if (times < 0) times = 0;
  const __int128 unit = seq.is_string() ? static_cast<__int128>(seq.str().size()) : static_cast<__int128>(seq.items().size()) * 16;
  if (unit * times > (static_cast<__int128>(1) << 62)) interp.check_size(INT64_MAX);
  if (seq.is_string()) {
    interp.check_size(static_cast<int64_t>(seq.str().size()) * times);
    std::string out;
    out.reserve(seq.str().size() * static_cast<size_t>(times));
    for (int64_t k = 0; k < times; ++k) out += seq.str();
    return Value::string(std::move(out), seq.is_markup());
  }
  interp.check_size(static_cast<int64_t>(seq.items().size()) * times * 16);
  std::vector<Value> out;
  for (int64_t k = 0; k < times; ++k) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return seq.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

Value add(const Value& a, const Value& b, const Interpreter& interp) {
  if (a.is_string() && b.is_string()) {
    interp.check_size(static_cast<int64_t>(a.str().size() + b.str().size()));
    if (a.is_markup() || b.is_markup()) {  // Markup escapes what is added to it
      return Value::string((a.is_markup() ? a.str() : html_escape(a.str())) + (b.is_markup() ? b.str() : html_escape(b.str())), true);
    }
    return Value::string(a.str() + b.str());
  }
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return a.is_list() ? Value::list(std::move(items)) : Value::tuple(std::move(items));
  }
  if (a.is_string() || a.is_list() || a.is_tuple()) {
    const std::string self = a.is_string() ? "str" : type_name(a);
    type_error("can only concatenate " + self + " (not \"" + type_name(b) + "\") to " + self);
  }
  unsupported(BinaryOp::kAdd, a, b);
}

}  // namespace

Value binary_op(BinaryOp op, const Value& a, const Value& b, const Interpreter& interp) {
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  if (a.is_number() && b.is_number()) return arithmetic(op, a, b);
  switch (op) {
    case BinaryOp::kAdd: return add(a, b, interp);
    case BinaryOp::kMul:
      if ((a.is_string() || a.is_sequence()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int(), interp);
      if ((b.is_string() || b.is_sequence()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int(), interp);
      if (a.is_string() || a.is_sequence() || b.is_string() || b.is_sequence()) {
        const Value& other = a.is_string() || a.is_sequence() ? b : a;
        type_error("can't multiply sequence by non-int of type '" + type_name(other) + "'");
      }
      break;
    case BinaryOp::kMod:
      if (a.is_string()) {
        std::string s = percent_format(a.str(), b);
        interp.check_size(static_cast<int64_t>(s.size()));
        return Value::string(std::move(s));
      }
      break;
    default: break;
  }
  unsupported(op, a, b);
}

Value negate(const Value& v) {
  if (v.is_undefined()) raise_undefined(v);
  if (v.is_float()) return Value::number(-v.as_float());
  if (v.is_number()) {
    if (v.as_int() == std::numeric_limits<int64_t>::min()) overflow();
    return Value::integer(-v.as_int());
  }
  type_error("bad operand type for unary -: '" + type_name(v) + "'");
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Kind::kUndefined: return false;
    case Kind::kString:
      if (item.is_undefined()) raise_undefined(item);
      if (!item.is_string()) type_error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.str().find(item.str()) != std::string::npos;
    case Kind::kList: case Kind::kTuple:
      for (const Value& v : container.items())
        if (equals(v, item)) return true;
      return false;
    case Kind::kDict: return container.dict().find(item) != nullptr;
    case Kind::kObject:
      if (container.as<Generator>()) {
        for (const Value& v : iterate(container))
          if (equals(v, item)) return true;
        return false;
      }
      break;
    default: break;
  }
  type_error("argument of type '" + type_name(container) + "' is not iterable");
}

namespace {

// Python's a OP b for the ordering operators.
bool ordered(CompareOp op, const Value& a, const Value& b) {
  auto decide = [op](auto x, auto y) {
    switch (op) {
      case CompareOp::kLt: return x < y;
      case CompareOp::kLe: return x <= y;
      case CompareOp::kGt: return x > y;
      default: return x >= y;
    }
  };
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return decide(a.as_float(), b.as_float());
    return decide(a.as_int(), b.as_int());
  }
  if (a.is_string() && b.is_string()) return decide(a.str(), b.str());
  if ((a.is_list() && b.is_list()) || (a.is_tuple() && b.is_tuple())) {
    const auto &x = a.items(), &y = b.items();
    for (size_t k = 0; k < x.size() && k < y.size(); ++k)
      if (!equals(x[k], y[k])) return ordered(op, x[k], y[k]);
    return decide(x.size(), y.size());
  }
  if (a.is_undefined()) raise_undefined(a);
  if (b.is_undefined()) raise_undefined(b);
  const char* sym = op == CompareOp::kLt ? "<" : op == CompareOp::kLe ? "<=" : op == CompareOp::kGt ? ">" : ">=";
  type_error(std::string("'") + sym + "' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

}  // namespace

bool compare_values(CompareOp op, const Value& a, const Value& b) {
  switch (op) {
    case CompareOp::kEq: return equals(a, b);
    case CompareOp::kNe: return !equals(a, b);
    case CompareOp::kIn: return contains(b, a);
    case CompareOp::kNotIn: return !contains(b, a);
    default: return ordered(op, a, b);
  }
}

std::optional<Value> index_item(const Value& seq, int64_t index) {
  if (seq.is_string()) {
    std::u32string cps = decode_utf8(seq.str());
    const int64_t n = static_cast<int64_t>(cps.size());
    if (index < 0) index += n;
    if (index < 0 || index >= n) return std::nullopt;
    std::string out;
    append_utf8(out, cps[static_cast<size_t>(index)]);
    return Value::string(std::move(out));
  }
  const int64_t n = static_cast<int64_t>(seq.items().size());
  if (index < 0) index += n;
  if (index < 0 || index >= n) return std::nullopt;
  return seq.items()[static_cast<size_t>(index)];
}

namespace {

// PySlice_AdjustIndices.
int64_t slice_bound(const Value& v, int64_t fallback, int64_t n, bool negative_step, bool is_start) {
  if (v.is_none() || v.is_undefined()) return fallback;
  if (!v.is_int() && !v.is_bool()) type_error("slice indices must be integers or None or have an __index__ method");
  int64_t i = v.as_int();
  if (i < 0) {
    i += n;
    if (i < 0) i = negative_step ? -1 : 0;
  } else if (i >= n) {
    i = negative_step ? n - 1 : n;
  }
  (void)is_start;
  return i;
}

}  // namespace

Value slice_value(const Value& obj, const Value& start, const Value& stop, const Value& step_value) {
  if (!obj.is_string() && !obj.is_sequence()) {
    return Value::undefined(type_repr(obj) + " has no element slice(" + repr(start) + ", " + repr(stop) + ", " + repr(step_value) + ")");
  }
  int64_t step = 1;
  if (!step_value.is_none() && !step_value.is_undefined()) {
    if (!step_value.is_int() && !step_value.is_bool()) type_error("slice indices must be integers or None or have an __index__ method");
    step = step_value.as_int();
    if (step == 0) raise(ErrorKind::kValueError, "slice step cannot be zero");
  }
  std::u32string cps;
  if (obj.is_string()) cps = decode_utf8(obj.str());
  const int64_t n = obj.is_string() ? static_cast<int64_t>(cps.size()) : static_cast<int64_t>(obj.items().size());
  const bool neg = step < 0;
  int64_t lo = slice_bound(start, neg ? n - 1 : 0, n, neg, true);
  int64_t hi = slice_bound(stop, neg ? -1 : n, n, neg, false);
  std::vector<size_t> picked;
  step = std::clamp<int64_t>(step, -(n + 1), n + 1);  // a longer stride picks the same items, without overflow
  for (int64_t i = lo; neg ? i > hi : i < hi; i += step) picked.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::u32string out;
    for (size_t i : picked) out.push_back(cps[i]);
    return Value::string(encode_utf8(out), obj.is_markup());
  }
  std::vector<Value> out;
  for (size_t i : picked) out.push_back(obj.items()[i]);
  return obj.is_tuple() ? Value::tuple(std::move(out)) : Value::list(std::move(out));
}

}  // namespace tk::jinja::detail
