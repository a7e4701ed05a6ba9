// The template globals: Jinja's range (bounded as the sandbox bounds it), dict, namespace,
// lipsum, cycler, joiner, and transformers' raise_exception and strftime_now.
#include <algorithm>
#include <ctime>

#include "args.h"
#include "interpreter.h"

namespace tk::jinja::detail {

namespace {

Value range_fn(Interpreter& interp, CallArgs& c) {
  if (!c.kwargs.empty()) type_error("range() takes no keyword arguments");
  if (c.args.empty() || c.args.size() > 3) type_error("range expected at most 3 arguments, got " + std::to_string(c.args.size()));
  int64_t start = 0, stop, step = 1;
  auto get = [](const Value& v) { return expect_int(v, "range()"); };
  if (c.args.size() == 1) {
    stop = get(c.args[0]);
  } else {
    start = get(c.args[0]);
    stop = get(c.args[1]);
    if (c.args.size() == 3) step = get(c.args[2]);
  }
  if (step == 0) raise(ErrorKind::kValueError, "range() arg 3 must not be zero");
  const __int128 span = step > 0 ? static_cast<__int128>(stop) - start : static_cast<__int128>(start) - stop;
  const __int128 mag = step > 0 ? step : -static_cast<__int128>(step);
  const __int128 n = span <= 0 ? 0 : (span + mag - 1) / mag;
  const int64_t max = interp.limits().max_range;
  if (n > max) {
    raise(ErrorKind::kOverflowError, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (" + std::to_string(max) + ").");
  }
  std::vector<Value> items;
  items.reserve(static_cast<size_t>(n));
  for (int64_t k = 0, v = start; k < static_cast<int64_t>(n); ++k, v += step) items.push_back(Value::integer(v));
  return Value::list(std::move(items));
}

void dict_update(Dict& d, const Value& source) {
  if (source.is_dict()) {
    for (const auto& [k, v] : source.dict().entries()) d.set(k, v);
    return;
  }
  size_t index = 0;
  for (const Value& pair : iterate(source)) {
    std::vector<Value> kv = iterate(pair);
    if (kv.size() != 2) {
      raise(ErrorKind::kValueError, "dictionary update sequence element #" + std::to_string(index) + " has length " +
                                        std::to_string(kv.size()) + "; 2 is required");
    }
    d.set(kv[0], kv[1]);
    ++index;
  }
}

// The `dict` global: callable, with dict.fromkeys.
class DictType : public Object {
 public:
  std::string type_name() const override { return "type"; }
  std::string repr() const override { return "<class 'dict'>"; }
  bool callable() const override { return true; }
  Value call(Interpreter&, CallArgs& c) override {
    if (c.args.size() > 1) type_error("dict expected at most 1 argument, got " + std::to_string(c.args.size()));
    auto d = std::make_shared<Dict>();
    if (!c.args.empty()) dict_update(*d, c.args[0]);
    for (const auto& [k, v] : c.kwargs) d->set(Value::string(k), v);
    return Value::dict(std::move(d));
  }
  std::optional<Value> get_attr(Interpreter&, const std::string& name) override {
    if (name != "fromkeys") return std::nullopt;
    return make_function("fromkeys", [](Interpreter&, CallArgs& c) {
      Args a("fromkeys", c, {"iterable", "value"}, 1);
      auto d = std::make_shared<Dict>();
      for (const Value& k : iterate(a.get(0))) d->set(k, a.get_or(1, Value::none()));
      return Value::dict(std::move(d));
    });
  }
};

Value namespace_fn(Interpreter&, CallArgs& c) {
  auto ns = std::make_shared<Namespace>();
  if (c.args.size() > 1) type_error("dict expected at most 1 argument, got " + std::to_string(c.args.size()));
  Dict init;
  if (!c.args.empty()) dict_update(init, c.args[0]);
  for (const auto& [k, v] : init.entries()) ns->set(to_str(k), v);
  for (const auto& [k, v] : c.kwargs) ns->set(k, v);
  return Value::object(std::move(ns));
}

class Cycler : public Object {
 public:
  explicit Cycler(std::vector<Value> items) : items_(std::move(items)) {}
  std::string type_name() const override { return "Cycler"; }
  std::string type_repr() const override { return "jinja2.utils.Cycler object"; }
  std::optional<Value> get_attr(Interpreter&, const std::string& name) override {
    if (name == "current") return items_[pos_];
    auto self = std::static_pointer_cast<Cycler>(shared_from_this());  // a bound method keeps its object alive
    if (name == "reset") return make_function("reset", [self](Interpreter&, CallArgs&) { self->pos_ = 0; return Value::none(); });
    if (name == "next") {
      return make_function("next", [self](Interpreter&, CallArgs&) {
        Value v = self->items_[self->pos_];
        self->pos_ = (self->pos_ + 1) % self->items_.size();
        return v;
      });
    }
    return std::nullopt;
  }

 private:
  void release() override { items_ = {Value::none()}; }
  std::vector<Value> items_;
  size_t pos_ = 0;
};

class Joiner : public Object {
 public:
  explicit Joiner(std::string sep) : sep_(std::move(sep)) {}
  std::string type_name() const override { return "Joiner"; }
  std::string type_repr() const override { return "jinja2.utils.Joiner object"; }
  bool callable() const override { return true; }
  Value call(Interpreter&, CallArgs&) override {
    if (!used_) {
      used_ = true;
      return Value::string("");
    }
    return Value::string(sep_);
  }

 private:
  std::string sep_;
  bool used_ = false;
};

Value lipsum_fn(Interpreter& interp, CallArgs& c) {
  Args a("generate_lorem_ipsum", c, {"n", "html", "min", "max"});
  const int64_t n = a.get_int(0, 5), min_words = std::min<int64_t>(a.get_int(2, 20), 100);
  interp.count_iterations(n);
  const bool html = a.get_bool(1, true);
  std::string out;
  for (int64_t p = 0; p < n; ++p) {
    std::string para = "Lorem ipsum dolor sit amet";
    for (int64_t w = 5; w < min_words; ++w) para += " consectetur";
    para += ".";
    if (html) out += (p ? "\n" : "") + std::string("<p>") + para + "</p>";
    else out += (p ? "\n\n" : "") + para;
  }
  return Value::string(std::move(out), html);
}

Value strftime_fn(Interpreter& interp, CallArgs& c) {
  Args a("strftime_now", c, {"format"}, 1);
  const std::string& format = expect_string(a.get(0), "strftime_now() format");
  std::tm now = interp.now();
  std::string buf(format.size() * 8 + 64, '\0');
  size_t n = format.empty() ? 0 : std::strftime(buf.data(), buf.size(), format.c_str(), &now);
  if (n == 0 && !format.empty()) {
    buf.assign(format.size() * 64 + 256, '\0');
    n = std::strftime(buf.data(), buf.size(), format.c_str(), &now);
  }
  buf.resize(n);
  return Value::string(std::move(buf));
}

}  // namespace

void add_globals(Scope& g) {
  g.vars["range"] = make_function("range", range_fn);
  g.vars["dict"] = Value::object(std::make_shared<DictType>());
  g.vars["namespace"] = make_function("namespace", namespace_fn);
  g.vars["lipsum"] = make_function("generate_lorem_ipsum", lipsum_fn);
  g.vars["cycler"] = make_function("cycler", [](Interpreter&, CallArgs& c) {
    if (c.args.empty()) type_error("at least one item has to be provided");
    return Value::object(std::make_shared<Cycler>(c.args));
  });
  g.vars["joiner"] = make_function("joiner", [](Interpreter&, CallArgs& c) {
    Args a("joiner", c, {"sep"});
    return Value::object(std::make_shared<Joiner>(a.get_string(0, ", ")));
  });
  g.vars["raise_exception"] = make_function("raise_exception", [](Interpreter&, CallArgs& c) -> Value {
    Args a("raise_exception", c, {"message"}, 1);
    raise(ErrorKind::kTemplateError, to_str(a.get(0)));
  });
  g.vars["strftime_now"] = make_function("strftime_now", strftime_fn);
}

std::tm Interpreter::now() const {
  if (options_.now) return options_.now();
  std::time_t t = std::time(nullptr);
  std::tm out{};
  localtime_r(&t, &out);
  return out;
}

}  // namespace tk::jinja::detail
