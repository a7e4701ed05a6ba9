// Rendering: Python str() reprs, scoping as Jinja's frames, macros and call blocks, loops and
// loop controls, filters, tests, Python methods, the sandbox, undefined values, and the public
// API (errors, chat rendering).
#include "test_util.h"

namespace tk::jinja::testing {
namespace {

const Json kVars = Json::parse(R"({"s": "Hello World", "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "none": null,
  "people": [{"name": "Ann", "age": 30}, {"name": "bob", "age": 25}, {"name": "Cid", "age": 30}]})");

TEST(JinjaRender, PythonReprs) {
  EXPECT_EQ(render("{{ none }} {{ true }} {{ 1.0 }} {{ 1e-5 }} {{ 1e16 }} {{ 0.1 + 0.2 }} {{ -0.0 }}"),
            "None True 1.0 1e-05 1e+16 0.30000000000000004 -0.0");
  EXPECT_EQ(render("{{ d }} {{ l }} {{ (1,) }} {{ () }}", kVars), "{'b': 2, 'a': 1} [3, 1, 2] (1,) ()");
  EXPECT_EQ(render("{{ [\"it's\", 'say \"x\"', 'both \\' \"', '\\n\\t\\x01', '\u200d', '\u00e9'] }}"),
            "[\"it's\", 'say \"x\"', 'both \\' \"', '\\n\\t\\x01', '\\u200d', '\u00e9']");
}

TEST(JinjaRender, ScopingFollowsJinjaFrames) {
  EXPECT_EQ(render("{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}"), "12121");
  EXPECT_EQ(render("{% if true %}{% set q = 3 %}{% endif %}{{ q }}"), "3");
  EXPECT_EQ(render("{% set ns = namespace(c=0) %}{% for i in [1, 2, 3] %}{% set ns.c = ns.c + i %}{% endfor %}{{ ns.c }}"), "6");
  EXPECT_EQ(render("{% with a = 1 %}{{ a }}{% endwith %}[{{ a }}]"), "1[]");
  EXPECT_EQ(render("{% set x %}block {{ 1 + 1 }}{% endset %}{{ x }}{% set y | upper %}up{% endset %}{{ y }}"), "block 2UP");
  EXPECT_EQ(render("{% set a, b = 1, 2 %}{{ a }}{{ b }}"), "12");
  EXPECT_EQ(render("{% set ns = 1 %}{% set ns.x = 2 %}"),
            "ERROR TemplateRuntimeError: cannot assign attribute on non-namespace object @1");
}

TEST(JinjaRender, MacrosAndCallBlocks) {
  EXPECT_EQ(render("{% macro g(n, greeting='Hi') %}{{ greeting }} {{ n }}{% endmacro %}{{ g('A') }}/{{ g('B', 'Yo') }}/{{ g(greeting='Hey', n='C') }}"),
            "Hi A/Yo B/Hey C");
  EXPECT_EQ(render("{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, x=3) }}"), "(1, 2){'x': 3}");
  EXPECT_EQ(render("{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}"),
            "ERROR TypeError: macro 'm' takes not more than 1 argument(s) @1");
  EXPECT_EQ(render("{% macro w(t) %}<{{ t }}>{{ caller(1) }}</{{ t }}>{% endmacro %}{% call(x) w('b') %}in{{ x }}{% endcall %}"),
            "<b>in1</b>");
  EXPECT_EQ(render("{% macro f(n) %}{% if n %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}"), "321");
  EXPECT_EQ(render("{% filter upper %}a{{ 'b' }}{% endfilter %}{% generation %}g{% endgeneration %}"), "ABg");
}

TEST(JinjaRender, LoopsAndLoopControls) {
  EXPECT_EQ(render("{% for x in l %}{{ loop.index }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}|{% endfor %}", kVars),
            "12TrueFalse|21FalseFalse|30FalseTrue|");
  EXPECT_EQ(render("{% for x in l if x > 1 %}{{ x }}/{{ loop.length }} {% else %}none{% endfor %}", kVars), "3/2 2/2 ");
  EXPECT_EQ(render("{% for x in [] %}{% else %}empty{% endfor %}"), "empty");
  EXPECT_EQ(render("{% for x in [1, 2, 3, 4] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}"), "13");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", kVars), "b=2;a=1;");
  EXPECT_EQ(render("{% for x in l %}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}{% endfor %}", kVars), "ab3a1");
  EXPECT_EQ(render("{% for i in [{'c': [{'c': []}]}] recursive %}{{ loop.depth }}{{ loop(i.c) }}{% endfor %}"), "12");
  EXPECT_EQ(render("{% for x in none %}{% endfor %}", kVars), "ERROR TypeError: 'NoneType' object is not iterable @1");
}

TEST(JinjaRender, Filters) {
  EXPECT_EQ(render("{{ l|sort }} {{ l|sort(reverse=true) }} {{ people|sort(attribute='age')|map(attribute='name')|join(',') }}", kVars),
            "[1, 2, 3] [3, 2, 1] bob,Ann,Cid");
  EXPECT_EQ(render("{{ people|selectattr('age', 'eq', 30)|map(attribute='name')|list }} {{ l|select('odd')|list }} {{ l|reject('odd')|list }}", kVars),
            "['Ann', 'Cid'] [3, 1] [2]");
  EXPECT_EQ(render("{% for g in people|groupby('age') %}{{ g.grouper }}:{{ g.list|length }} {% endfor %}", kVars), "25:1 30:2 ");
  EXPECT_EQ(render("{{ d|dictsort }} {{ [1, 2, 1]|unique|list }} {{ l|min }} {{ l|max }} {{ l|sum }} {{ l|first }} {{ l|last }}", kVars),
            "[('a', 1), ('b', 2)] [1, 2] 1 3 6 3 2");
  EXPECT_EQ(render("{{ s|upper }} {{ s|lower }} {{ 'hi there'|title }} {{ '  x '|trim }} {{ s|replace('o', '0') }} {{ s|length }}", kVars),
            "HELLO WORLD hello world Hi There x Hell0 W0rld 11");
  EXPECT_EQ(render("{{ 'a\nb'|indent(2, true) }}|{{ 'abc'|center(7) }}|{{ 'a b c d e'|truncate(5, leeway=0) }}|{{ '%s=%d'|format('x', 3) }}"),
            "  a\n  b|  abc  |a...|x=3");
  EXPECT_EQ(render("{{ x|default('d') }} {{ ''|default('e', true) }} {{ '42'|int + 1 }} {{ '2.5'|float }} {{ 2.5|round }} {{ 2.567|round(2) }}"),
            "d e 43 2.5 2.0 2.57");
  EXPECT_EQ(render("{{ '<b>'|e }} {{ ('<b>'|safe) + '<i>' }} {{ [1, 2, 3, 4, 5]|batch(2)|list }}"),
            "&lt;b&gt; <b>&lt;i&gt; [[1, 2], [3, 4], [5]]");
}

TEST(JinjaRender, TransformersToJson) {
  EXPECT_EQ(render("{{ d|tojson }} {{ '\u00e9\"<'|tojson }} {{ '\u00e9'|tojson(ensure_ascii=true) }} {{ (1, none)|tojson }}", kVars),
            "{\"b\": 2, \"a\": 1} \"\u00e9\\\"<\" \"\\u00e9\" [1, null]");
  EXPECT_EQ(render("{{ {'a': [1], 'b': {}}|tojson(indent=2) }}"), "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
  EXPECT_EQ(render("{{ d|tojson(sort_keys=true, separators=(',', ':')) }}", kVars), "{\"a\":1,\"b\":2}");
  EXPECT_EQ(render("{{ x|tojson }}"), "ERROR TypeError: Object of type Undefined is not JSON serializable @1");
  EXPECT_EQ(render("{{ [1]|map('string')|tojson }}"), "ERROR TypeError: Object of type generator is not JSON serializable @1");
}

TEST(JinjaRender, Tests) {
  EXPECT_EQ(render("{{ x is defined }} {{ none is none }} {{ 1 is number }} {{ true is integer }} {{ 'a' is string }} {{ d is mapping }}", kVars),
            "False True True False True True");
  EXPECT_EQ(render("{{ l is sequence }} {{ l is iterable }} {{ 1 is iterable }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 2 is in l }}", kVars),
            "True True False True True True");
  EXPECT_EQ(render("{{ 1 is eq 1 }} {{ 3 is gt 2 }} {{ 'ab' is lower }} {{ 'upper' is filter }} {{ 'odd' is test }} {{ range is callable }}"),
            "True True True True True True");
}

TEST(JinjaRender, PythonMethods) {
  EXPECT_EQ(render("{{ s.split() }} {{ 'a,b'.split(',') }} {{ ' x '.strip() }} {{ 'xyx'.strip('x') }} {{ s.startswith(('x', 'H')) }}", kVars),
            "['Hello', 'World'] ['a', 'b'] x y True");
  EXPECT_EQ(render("{{ s.replace('l', 'L', 1) }} {{ s.find('o') }} {{ s.count('l') }} {{ '-'.join(['a', 'b']) }} {{ '{}:{:>3}'.format('a', 1) }}", kVars),
            "HeLlo World 4 3 a-b a:  1");
  EXPECT_EQ(render("{{ d.get('a') }} {{ d.get('z', 0) }} {{ d.keys()|list }} {{ l.index(1) }} {{ '12'.isdigit() }} {{ 'ab'.upper() }}", kVars),
            "1 0 ['b', 'a'] 1 True AB");
  EXPECT_EQ(render("{{ '\u00e9t\u00e9'[1:] }} {{ '\u65e5\u672c'|length }} {{ '\u00e9'.upper() }}"), "t\u00e9 2 \u00c9");
}

TEST(JinjaRender, SandboxRefusesMutationAndPrivateAttributes) {
  EXPECT_EQ(render("{{ l.append(4) }}", kVars), "ERROR SecurityError: access to attribute 'append' of 'list' object is unsafe. @1");
  EXPECT_EQ(render("{{ d.update({}) }}", kVars), "ERROR SecurityError: access to attribute 'update' of 'dict' object is unsafe. @1");
  EXPECT_EQ(render("{{ s.__class__ }}|{{ s.__class__.x }}", kVars),
            "ERROR SecurityError: access to attribute '__class__' of 'str' object is unsafe. @1");
  EXPECT_EQ(render("[{{ l.append }}]", kVars), "[]");  // unsafe values only fail when used
}

TEST(JinjaRender, UndefinedSemantics) {
  EXPECT_EQ(render("[{{ x }}][{{ x|length }}][{% for i in x %}i{% endfor %}][{{ x is defined }}][{{ 'a' ~ x }}]"), "[][0][][False][a]");
  EXPECT_EQ(render("{{ x.y }}"), "ERROR UndefinedError: 'x' is undefined @1");
  EXPECT_EQ(render("\n{{ d.zz.y }}", kVars), "ERROR UndefinedError: 'dict object' has no attribute 'zz' @2");
  EXPECT_EQ(render("{{ l[10].x }}", kVars), "ERROR UndefinedError: list object has no element 10 @1");
  EXPECT_EQ(render("{{ 'a' + x }}"), "ERROR UndefinedError: 'x' is undefined @1");
  EXPECT_EQ(render("{{ s.items() }}", kVars), "ERROR UndefinedError: 'str object' has no attribute 'items' @1");
}

TEST(JinjaRender, TypeErrorsCarryPythonMessages) {
  EXPECT_EQ(render("{{ 'a' + [1] }}"), "ERROR TypeError: can only concatenate str (not \"list\") to str @1");
  EXPECT_EQ(render("{{ 1 + 'a' }}"), "ERROR TypeError: unsupported operand type(s) for +: 'int' and 'str' @1");
  EXPECT_EQ(render("{{ 'abc'|items|list }}"), "ERROR TypeError: Can only get item pairs from a mapping. @1");
  EXPECT_EQ(render("{{ 1 / 0 }}"), "ERROR ZeroDivisionError: division by zero @1");
  EXPECT_EQ(render("{{ [1, 'a']|sort }}"), "ERROR TypeError: '<' not supported between instances of 'str' and 'int' @1");
}

TEST(JinjaRender, GlobalsAndRaiseException) {
  EXPECT_EQ(render("{{ range(3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1) }} {{ dict.fromkeys(['x'], 0) }}"),
            "[0, 1, 2] [5, 3, 1] {'a': 1} {'x': 0}");
  EXPECT_EQ(render("{% set c = cycler('a', 'b') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{% set j = joiner('+') %}{{ j() }}x{{ j() }}y"),
            "abax+y");
  RenderOptions fixed;
  fixed.now = fixed_clock(2024, 7, 26);
  EXPECT_EQ(render("{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%B %d, %Y %A') }}", Json::object(), fixed),
            "2024-07-26 26 Jul 2024 July 26, 2024 Friday");
  Error error;
  auto tmpl = Template::parse("line\n{{ raise_exception('Roles must alternate: ' ~ n) }}");
  ASSERT_TRUE(tmpl.ok());
  auto out = tmpl->render({{"n", 2}}, {}, &error);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(error.type, "TemplateError");
  EXPECT_EQ(error.message, "Roles must alternate: 2");
  EXPECT_EQ(error.line, 2);
  EXPECT_EQ(out.status().message(), "TemplateError: Roles must alternate: 2 (template line 2)");
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
}

TEST(JinjaApi, VariablesMustBeAnObjectAndKeyOrderIsKept) {
  auto tmpl = Template::parse("{% for k in d %}{{ k }}{% endfor %}{{ d|tojson }}");
  ASSERT_TRUE(tmpl.ok());
  EXPECT_FALSE(tmpl->render(Json::array()).ok());
  auto out = tmpl->render(Json::parse(R"({"d": {"z": 1, "a": 2, "m": 3}})"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "zam{\"z\": 1, \"a\": 2, \"m\": 3}");
  EXPECT_EQ(tmpl->source(), "{% for k in d %}{{ k }}{% endfor %}{{ d|tojson }}");
}

TEST(JinjaApi, ChatVariablesAsTransformersPreparesThem) {
  ChatInputs in;
  in.messages = Json::parse(R"([{"role": "assistant", "content": "x", "name": null, "reasoning": "why"}])");
  in.kwargs = {{"enable_thinking", true}};
  in.bos_token = "<s>";
  const Json vars = chat_variables(in);
  EXPECT_EQ(vars["messages"][0].dump(), R"({"thinking":"why","role":"assistant","content":"x","reasoning":"why","reasoning_content":"why"})");
  EXPECT_TRUE(vars["tools"].is_null());
  EXPECT_TRUE(vars.contains("documents"));
  EXPECT_EQ(vars["bos_token"], "<s>");
  EXPECT_FALSE(vars.contains("eos_token"));
  EXPECT_EQ(vars["enable_thinking"], true);
}

TEST(JinjaApi, ContinueFinalMessage) {
  auto tmpl = Template::parse("{% for m in messages %}<{{ m.role }}>{{ m.content|trim }}</s>{% endfor %}");
  ASSERT_TRUE(tmpl.ok());
  ChatInputs in;
  in.messages = Json::parse(R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "Partial "}])");
  in.continue_final_message = true;
  auto out = render_chat(*tmpl, in);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<user>q</s><assistant>Partial");  // the tag lost its space to trim: cut and rstrip
  in.messages = Json::parse(R"([{"role": "assistant", "content": [{"type": "text", "text": "A"}, {"type": "image"}]}])");
  auto parts = render_chat(*Template::parse("{{ messages[0].content[0].text }}!"), in);
  ASSERT_TRUE(parts.ok()) << parts.status().to_string();
  EXPECT_EQ(*parts, "A");
  auto no_content = Template::parse("{{ messages|length }}");
  Error error;
  EXPECT_FALSE(render_chat(*no_content, in, {}, &error).ok());
  EXPECT_EQ(error.type, "ValueError");
}

}  // namespace
}  // namespace tk::jinja::testing
