// Resource limits: a template and its variables are user input, so huge ranges, runaway loops,
// infinite recursion, string blow-ups and deep data fail with an error instead of exhausting the
// machine.
#include <atomic>
#include <thread>

#include "test_util.h"

namespace tk::jinja::testing {
namespace {

TEST(JinjaLimits, RangeIsBoundedAsInTheSandbox) {
  EXPECT_EQ(render("{{ range(10**9)|length }}"),
            "ERROR OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000). @1");
  EXPECT_EQ(render("{{ range(100000)|length }}"), "100000");
}

TEST(JinjaLimits, LoopIterationsAreCounted) {
  RenderOptions o;
  o.limits.max_loop_iterations = 10000;
  EXPECT_EQ(error_type("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", Json::object(), o), "LimitError");
  EXPECT_EQ(render("{% for i in range(100) %}{% for j in range(99) %}{% endfor %}{% endfor %}ok", Json::object(), o), "ok");
}

TEST(JinjaLimits, InfiniteRecursionIsARecursionError) {
  EXPECT_EQ(error_type("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), "RecursionError");
  EXPECT_EQ(error_type("{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}"), "RecursionError");
}

TEST(JinjaLimits, OutputAndStringSizes) {
  RenderOptions o;
  o.limits.max_output_bytes = 1 << 20;
  EXPECT_EQ(error_type("{{ 'x' * 10**9 }}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{{ 'ab'|center(10**9) }}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{% for i in range(100000) %}{{ 'abcdefghijklmnopqrstuvwxyz' }}{% endfor %}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", Json::object(), o),
            "LimitError");
  EXPECT_EQ(error_type("{{ 2 ** 100 }}"), "OverflowError");  // integers are 64-bit
  EXPECT_EQ(error_type("{{ 'abcd' * 4611686018427387904 }}", Json::object(), o), "LimitError");  // no size overflow
  EXPECT_EQ(error_type("{{ ('x' * 1000)|replace('', 'y' * 5000) }}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{{ ('a\n' * 1000)|indent('x' * 10000) }}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{{ [[[[[1]]]]]|tojson(indent=100000) }}", Json::object(), o), "LimitError");
  EXPECT_EQ(error_type("{{ [1]|batch(10**15, 0)|list }}", Json::object(), o), "LimitError");
  EXPECT_EQ(render("{{ 'abc'[::9223372036854775807] }}{{ 'abc'[::-9223372036854775807] }}"), "ac");
}

TEST(JinjaLimits, DeepValuesAreRefused) {
  // Millions of levels would overflow the stack when the value is destroyed: nesting stops at 400.
  EXPECT_EQ(error_type("{% set ns = namespace(v=[]) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}{% endfor %}"),
            "RecursionError");
  EXPECT_EQ(error_type("{% set ns = namespace(v=1) %}{% for i in range(100000) %}{% set ns.v = namespace(v=ns.v) %}{% endfor %}"),
            "RecursionError");
  EXPECT_EQ(error_type("{% set ns = namespace(v=[]) %}{% for i in range(100000) %}{% set ns.v = [ns.v]|select %}{% endfor %}"),
            "RecursionError");
  EXPECT_EQ(render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me is defined }}"), "True");
  std::string deep = std::string(1000, '[') + std::string(1000, ']');
  EXPECT_EQ(error_type("{{ v }}", Json::parse("{\"v\": " + deep + "}")), "ValueError");
}

TEST(JinjaLimits, OneTemplateRendersOnManyThreads) {
  auto tmpl = Template::parse("{% for m in messages %}{{ m.content|upper }}{% endfor %}");
  ASSERT_TRUE(tmpl.ok());
  const Json vars = Json::parse(R"({"messages": [{"content": "a"}, {"content": "b"}]})");
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < 200; ++k) good += *tmpl->render(vars) == "AB";
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 800);
}

}  // namespace
}  // namespace tk::jinja::testing
