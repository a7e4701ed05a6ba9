#!/usr/bin/env python3
"""Makes tests/jinja/data/jinja_cases.json: small templates rendered by jinja2 in transformers'
configuration (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, the
generation tag, transformers' tojson, raise_exception, strftime_now at 2024-07-26 00:00:00).
Each case is {"template", "variables", "expected"} or {"template", "variables", "error_type"}.

    python3 tools/jinja_cases.py   # needs jinja2 (pip install jinja2==3.1.6)

Known differences, not in the cases: integers are 64-bit (Python's big integers overflow into
an OverflowError), and the repr of functions and generators shows no address.
"""
import json
import os
import sys
from datetime import datetime

import jinja2
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment


class GenerationTag(Extension):
    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_generation", []), [], [], body).set_lineno(lineno)

    def _generation(self, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda f: datetime(2024, 7, 26).strftime(f)
    return env


V = {"s": "Hello World", "n": 3, "f": 2.5, "l": [3, 1, 2], "d": {"b": 2, "a": 1}, "none": None, "t": True,
     "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "x": None}],
     "words": ["b", "A", "c", "a"], "uni": "héllo wörld ß 日本 😀", "nested": {"a": {"b": [10, 20, {"c": "deep"}]}},
     "people": [{"name": "Ann", "age": 30, "city": "Paris"}, {"name": "bob", "age": 25, "city": "Rome"},
                {"name": "Cid", "age": 30, "city": "paris"}]}

CASES = [
    # output, literals, reprs
    "{{ 'a' }}{{ \"b\" }}{{ 1 }}{{ 1.0 }}{{ 1e-5 }}{{ 1e16 }}{{ 0.1 + 0.2 }}{{ -0.0 }}{{ 1_000 }}{{ 0x1F }}{{ 0b101 }}{{ 0o17 }}",
    "{{ none }}|{{ None }}|{{ true }}|{{ False }}|{{ [] }}|{{ {} }}|{{ () }}|{{ (1,) }}|{{ (1, 'a') }}",
    "{{ l }} {{ d }} {{ msgs }} {{ nested }}",
    "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'tab\\there', 'nl\\n', 'back\\\\slash', '\\x01\\x7f'] }}",
    "{{ ['é', '\u200d', '\u00a0', '\u2028', '😀', '\\u0085'] }}",
    "{{ 'a' 'b' \"c\" }}|{{ '\\u00e9\\x41\\101\\q' }}|{{ 'line\\\nnext' }}",
    "{{ 1, 2 }}|{{ (1, 2) }}",
    "{{ 10 / 4 }} {{ 10 // 4 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
    "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ not 1 == 2 }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }}",
    "{{ 'ab' * 3 }} {{ 3 * 'ab' }} {{ [1] * 3 }} {{ 'x' * 0 }} {{ 'x' * -1 }} {{ True + 1 }} {{ True * 'ab' }}",
    "{{ 'a' ~ 1 ~ none ~ undefined_thing ~ [1] }}",
    "{{ 1 if true }}|{{ 1 if false }}|{{ 1 if false else 2 }}|{{ 'a' if none else 'b' if 0 else 'c' }}",
    "{{ 0 or 'x' }} {{ 1 and 'y' }} {{ none or none }} {{ [] and 1 }} {{ '' or [] }}",
    "{{ 'b' in 'abc' }} {{ 2 in l }} {{ 'a' in d }} {{ 'z' not in d }} {{ 1 in [1.0] }} {{ 'x' in undefined_thing }}",
    "{{ 1 == 1.0 }} {{ 'a' == 'a' }} {{ [1, 2] == [1, 2] }} {{ (1, 2) == [1, 2] }} {{ {'a': 1} == {'a': 1} }} {{ none == none }} {{ undefined_thing == undefined_other }}",
    "{{ [1, 2] < [1, 3] }} {{ 'abc' < 'abd' }} {{ (1, 2) <= (1, 2) }} {{ 2 >= 2.0 }}",
    # subscripts and slices
    "{{ s[0] }}{{ s[-1] }}{{ s[1:4] }}{{ s[::-1] }}{{ s[::2] }}{{ s[-3:] }}{{ s[:-3] }}{{ l[1:] }}{{ l[::-1] }}{{ uni[1] }}{{ uni[-1] }}{{ uni[2:8] }}",
    "{{ d.a }}{{ d['b'] }}{{ nested.a.b[2].c }}{{ nested['a']['b'][1] }}{{ l.0 }}{{ l[5] }}|{{ d.zz }}|{{ d.items is defined }}",
    "{{ msgs[0].role }} {{ msgs[-1]['content'] }} {{ (msgs|last).role }}",
    # whitespace control
    "a\n  {% if true %}\n  b\n  {% endif %}\n  c\n",
    "a  {%- if true -%}  b  {%- endif -%}  c",
    "a\n    {%+ if true %}b{% endif %}\n",
    "x {{- ' y ' -}} z\n{{ 1 }}\n",
    "  {# comment #}\nline\n  {#- c2 -#}   after\n{#+ c3 +#}\nend",
    "{% raw %}{{ not a var }}{% endraw %}|{%- raw -%}  {{x}}  {%- endraw -%}|",
    "  {% for i in [1, 2] %}\n    {{ i }}\n  {% endfor %}\n",
    "{% for i in [1, 2] %}{{ i }}{% endfor +%}\nkeep\n{% if true %}\n\nx{% endif %}",
    "line1\r\nline2\rline3\n",
    "{% if true %}yes{% endif %}\n\n",
    "  {{ 'v' }}  \n  {% set x = 1 %}  after\n",
    # control flow
    "{% if n > 5 %}big{% elif n > 2 %}mid{% elif n > 0 %}small{% else %}none{% endif %}",
    "{% for x in l %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}|{% endfor %}",
    "{% for x in l %}{{ loop.previtem }}-{{ loop.nextitem }}-{{ loop.cycle('a', 'b') }}-{{ loop.depth }}{{ loop.depth0 }};{% endfor %}",
    "{% for x in [] %}a{% else %}empty{% endfor %}{% for x in l if x > 1 %}{{ x }}{{ loop.length }}{% else %}no{% endfor %}",
    "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %}",
    "{% for a, b in [(1, 2), [3, 4], 'xy'] %}{{ a }}{{ b }}{% endfor %}",
    "{% for x in [1, 2, 3, 4, 5] %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
    "{% for x in [1, 2] %}{% for y in [1, 2] %}{% if y == 2 %}{% break %}{% endif %}{{ x }}{{ y }}{{ loop.index }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% for x in [1, 2, 1, 3] %}{% if loop.changed(x) %}{{ x }}{% endif %}{% endfor %}",
    "{% for item in [{'n': 1, 'c': [{'n': 2, 'c': []}]}] recursive %}{{ item.n }}{{ loop.depth }}[{{ loop(item.c) }}]{% endfor %}",
    "{% for x in none %}{% endfor %}",
    "{% for x in 5 %}{% endfor %}",
    "{% for x in undefined_thing %}a{% else %}b{% endfor %}",
    # scoping
    "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 1 %}{{ x }}{% endfor %}{{ x }}",
    "{% set ns = namespace(c=0, items=[]) %}{% for i in l %}{% set ns.c = ns.c + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.c }}{{ ns.items }}",
    "{% if true %}{% set q = 3 %}{% endif %}{{ q }}",
    "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c = 1, 2 %}{{ c }}",
    "{% set x %}block {{ n }}{% endset %}[{{ x }}]{% set y | upper %}up{% endset %}{{ y }}",
    "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}",
    "{% set x = 5 %}{% with %}{% set x = 6 %}{{ x }}{% endwith %}{{ x }}",
    "{% set x = 1 %}{% macro m() %}{{ x }}{% set x = 2 %}{{ x }}{% endmacro %}{{ m() }}{{ x }}",
    "{% set ns = 1 %}{% set ns.x = 2 %}",
    "{% for i in [1] %}{% set inner = 5 %}{% endfor %}[{{ inner }}]",
    # macros
    "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }}",
    "{% macro m(a, b) %}[{{ a }}|{{ b }}]{% endmacro %}{{ m(1) }}{{ m() }}",
    "{% macro m() %}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, x=3) }}",
    "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(1, 2) }}",
    "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(b=2) }}",
    "{% macro m(a, b=a * 2) %}{{ a }}{{ b }}{% endmacro %}{{ m(3) }}",
    "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ n }}{% endcall %}",
    "{% macro each(items) %}{% for i in items %}{{ caller(i, loop.index) }}{% endfor %}{% endmacro %}{% call(x, i) each(['a', 'b']) %}{{ i }}{{ x }};{% endcall %}",
    "{% macro m() %}x{% endmacro %}{{ m.name }} {{ m.arguments }} {{ m.catch_kwargs }} {{ m }}",
    "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}",
    "{% filter upper %}shout {{ s }}{% endfilter %}{% filter replace('a', 'b') | trim %}  aaa  {% endfilter %}",
    "{% generation %}gen {{ n }}{% endgeneration %}",
    "{% block content %}in block {{ n }}{% endblock %}",
    "{% print 'printed' %}",
    # filters: text
    "{{ s|upper }} {{ s|lower }} {{ 'hello wORLD'|capitalize }} {{ 'hello wORLD-foo(bar)'|title }} {{ uni|upper }} {{ uni|title }}",
    "{{ '  x  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ ' a b '|trim|length }}",
    "{{ s|replace('o', '0') }} {{ s|replace('o', '0', 1) }} {{ 'aaa'|replace('', '-') }}",
    "{{ 'abc'|center(9) }}|{{ 'abcd'|center(9) }}|{{ 'abc'|center(2) }}|",
    "{{ 'a\nb\n\nc'|indent }}|{{ 'a\nb\n\nc'|indent(2, true) }}|{{ 'a\nb\n\nc'|indent('> ', blank=true) }}|{{ 'a\nb'|indent(first=true) }}",
    "{{ 'Hello beautiful world of templates'|truncate(15) }}|{{ 'Hello beautiful world'|truncate(10, true) }}|{{ 'short'|truncate(10) }}|{{ 'Hello beautiful world'|truncate(12, false, '..', 0) }}",
    "{{ 'The quick brown fox jumps over the lazy dog'|wordwrap(10) }}|{{ 'a verylongwordhere b'|wordwrap(5) }}|{{ 'x y'|wordwrap(10, wrapstring='<br>') }}",
    "{{ 'one two  three'|wordcount }} {{ 'héllo wörld_x 1'|wordcount }}",
    "{{ '<p>Hello <b>World</b></p><!-- c -->  &amp; x'|striptags }}",
    "{{ '<a href=\"x\">&</a>'|escape }} {{ '<b>'|e }} {{ '<b>'|safe }} {{ ('<b>'|safe) + '<i>' }} {{ '<x>'|forceescape }} {{ none|e }}",
    "{{ '%s-%d-%.2f-%5s-%-5s|-%05d-%x-%r' | format('a', 3, 3.14159, 'r', 'l', 42, 255, 'q') }} {{ '%(a)s' | format(a=1) }}",
    "{{ 'a b/c&d=é'|urlencode }} {{ {'a': 1, 'b c': 'x&y'}|urlencode }} {{ [('k', 'v'), ('x', 2)]|urlencode }}",
    "{{ 'see http://example.com, or www.test.org and mail a@b.com.'|urlize }}",
    "{{ 0|filesizeformat }} {{ 1|filesizeformat }} {{ 1000|filesizeformat }} {{ 123456789|filesizeformat }} {{ 1048576|filesizeformat(true) }}",
    "<x{{ {'class': 'a b', 'id': 3, 'skip': none}|xmlattr }}>",
    "{{ d|pprint }} {{ l|string }} {{ 3|string }}",
    # filters: sequences
    "{{ l|first }} {{ l|last }} {{ l|length }} {{ l|count }} {{ s|length }} {{ uni|length }} {{ d|length }} {{ []|first }}|{{ 'abc'|first }}",
    "{{ l|sort }} {{ l|sort(reverse=true) }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ people|sort(attribute='age')|map(attribute='name')|list }}",
    "{{ people|sort(attribute='age,name')|map(attribute='name')|join(',') }} {{ people|sort(attribute='city', reverse=true)|map(attribute='name')|join(',') }}",
    "{{ d|dictsort }} {{ d|dictsort(by='value', reverse=true) }} {{ {'B': 1, 'a': 2}|dictsort }} {{ {'B': 1, 'a': 2}|dictsort(true) }}",
    "{{ [1, 2, 1, 3, 2]|unique|list }} {{ words|unique|list }} {{ words|unique(true)|list }} {{ people|unique(attribute='city')|map(attribute='name')|list }}",
    "{{ l|min }} {{ l|max }} {{ words|min }} {{ words|max }} {{ words|max(case_sensitive=true) }} {{ people|max(attribute='age') }} {{ []|min }}|",
    "{{ l|sum }} {{ [0.5, 1]|sum }} {{ people|sum(attribute='age') }} {{ [[1], [2]]|sum(start=[]) }}",
    "{{ l|join }} {{ l|join(', ') }} {{ people|join('/', attribute='name') }} {{ [1, none, 'a']|join('-') }}",
    "{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3, 4, 5]|batch(2, 'x')|list }} {{ [1, 2, 3, 4, 5]|slice(2)|list }} {{ [1, 2, 3, 4]|slice(3, 0)|list }}",
    "{% for g in people|groupby('city') %}{{ g.grouper }}:{{ g.list|map(attribute='name')|join(',') }};{% endfor %}{% for city, ps in people|groupby('city', case_sensitive=true) %}{{ city }}={{ ps|length }};{% endfor %}",
    "{{ people|groupby('age') }}",
    "{{ d|items|list }} {{ undefined_thing|items|list }} {{ l|list }} {{ 'ab'|list }} {{ d|list }} {{ l|reverse|list }} {{ 'abc'|reverse }} {{ d|reverse|list }}",
    "{{ l|map('string')|join }} {{ people|map(attribute='name')|map('upper')|list }} {{ people|map(attribute='zip', default='?')|list }} {{ [' a', 'b ']|map('trim')|list }} {{ ['a,b', 'c']|map('replace', ',', ';')|list }}",
    "{{ l|select('odd')|list }} {{ l|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }} {{ l|select('gt', 1)|list }} {{ l|select('in', [1, 3])|list }}",
    "{{ people|selectattr('age', 'equalto', 30)|map(attribute='name')|list }} {{ people|rejectattr('age', '==', 30)|map(attribute='name')|list }} {{ msgs|selectattr('x')|list }} {{ msgs|selectattr('x', 'none')|list|length }}",
    "{{ people|selectattr('city', 'eq', 'Paris')|list|length }} {{ msgs|selectattr('role', 'in', ['user'])|list }}",
    "{{ undefined_thing|default('dflt') }} {{ none|default('dflt') }} {{ ''|default('dflt', true) }} {{ 0|d('z', boolean=true) }} {{ l|default }}",
    "{{ d|attr('items') is callable }} {{ d|attr('a') }}|",
    "{{ -3|abs }} {{ -2.5|abs }} {{ '42'|int }} {{ '42.7'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '0x1A'|int(0, 16) }} {{ '1A'|int(base=16) }} {{ 3.9|int }} {{ true|int }} {{ none|int }}",
    "{{ '3.5'|float }} {{ 'x'|float }} {{ 3|float }} {{ '1e3'|float }} {{ ' 2 '|float }}",
    "{{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 42|round }} {{ 1234|round(-2) }} {{ 1.5|round(1) }}",
    # tojson (transformers')
    "{{ d|tojson }} {{ l|tojson }} {{ 'é\"\\n<'|tojson }} {{ 'é😀'|tojson(ensure_ascii=true) }} {{ none|tojson }} {{ 1.0|tojson }} {{ (1, 2)|tojson }}",
    "{{ nested|tojson(indent=2) }}|{{ {'a': [], 'b': {}}|tojson(indent=2) }}|{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ l|tojson(indent=0) }}",
    "{{ {1: 'a', none: 'b', true: 'c', 2.5: 'd'}|tojson }}",
    "{{ undefined_thing|tojson }}",
    "{{ l|map('string')|tojson }}",
    # tests
    "{{ n is defined }} {{ zz is defined }} {{ zz is undefined }} {{ none is none }} {{ n is none }} {{ d.a is defined }} {{ d.zz is defined }}",
    "{{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 'a' is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ 1 is float }}",
    "{{ 'a' is string }} {{ 1 is string }} {{ d is mapping }} {{ l is mapping }} {{ l is sequence }} {{ s is sequence }} {{ d is sequence }} {{ 1 is sequence }} {{ zz is sequence }}",
    "{{ l is iterable }} {{ d is iterable }} {{ 1 is iterable }} {{ none is iterable }} {{ zz is iterable }} {{ (l|map('string')) is iterable }}",
    "{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }}",
    "{{ 4 is even }} {{ 3 is odd }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aB' is lower }}",
    "{{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is le 2 }} {{ 3 is gt 2 }} {{ 3 is ge 4 }} {{ 2 is greaterthan 1 }} {{ 1 is lessthan 2 }} {{ 'a' is equalto 'a' }}",
    "{{ 2 is in l }} {{ 'x' is in 'xyz' }} {{ none is sameas none }} {{ l is sameas l }} {{ 'upper' is filter }} {{ 'nope' is filter }} {{ 'odd' is test }}",
    "{{ range is callable }} {{ 'a' is callable }} {{ s.upper is callable }} {{ '<b>'|e is escaped }} {{ 'b' is escaped }} {{ n is not defined }} {{ n is not none }}",
    "{% if zz is defined and zz.x %}a{% else %}b{% endif %}",
    # Python methods
    "{{ s.upper() }} {{ s.lower() }} {{ s.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ '  a  b '.split() }} {{ 'a b c'.rsplit(' ', 1) }} {{ 'a  b'.rsplit() }}",
    "{{ '  x '.strip() }}|{{ 'xyx'.strip('x') }}|{{ '  x '.lstrip() }}|{{ '  x '.rstrip() }}|{{ '\\n\\tx\\u3000'.strip() }}|",
    "{{ s.startswith('Hell') }} {{ s.startswith(('x', 'H')) }} {{ s.endswith('ld') }} {{ s.startswith('World', 6) }} {{ s.endswith(('a', 'b')) }}",
    "{{ s.replace('l', 'L') }} {{ s.replace('l', 'L', 2) }} {{ s.find('o') }} {{ s.rfind('o') }} {{ s.find('z') }} {{ s.index('W') }} {{ s.count('l') }} {{ uni.find('日') }}",
    "{{ '-'.join(['a', 'b']) }} {{ ', '.join(words) }} {{ '{} and {}'.format('x', 'y') }} {{ '{1}{0}{1}'.format('a', 'b') }} {{ '{name}!'.format(name='n') }} {{ '{:>5}|{:<4}|{:^6}|{:05.1f}|{:,}|{!r}'.format('a', 'b', 'c', 3.14159, 1234567, 'q') }}",
    "{{ 'a\\nb\\r\\nc'.splitlines() }} {{ 'a\\nb\\n'.splitlines(true) }} {{ '123'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'a1'.isalnum() }} {{ ' '.isspace() }} {{ ''.isdigit() }} {{ 'Ab'.islower() }} {{ 'Hello World'.istitle() }}",
    "{{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }} {{ 'aBc'.swapcase() }} {{ 'ab'.center(6, '*') }} {{ 'ab'.ljust(4, '.') }} {{ 'ab'.rjust(4) }} {{ '42'.zfill(5) }} {{ '-42'.zfill(5) }}",
    "{{ 'a=b=c'.partition('=') }} {{ 'a=b=c'.rpartition('=') }} {{ 'prefix_x'.removeprefix('prefix_') }} {{ 'x.py'.removesuffix('.py') }} {{ 'a\\tb'.expandtabs(4) }}",
    "{{ l.index(2) }} {{ l.count(3) }} {{ (1, 2, 2).count(2) }} {{ d.get('a') }} {{ d.get('zz') }} {{ d.get('zz', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}",
    "{{ l.append }}|{{ l.append is defined }}",
    "{{ l.append(4) }}",
    "{{ d.update({'x': 1}) }}",
    "{{ l.pop() }}",
    "{{ s.__class__ }}",
    "{{ d.__len__() }}",
    "{{ n.real }} {{ f.is_integer() }} {{ 4.0.is_integer() }}",
    # globals
    "{{ range(5)|list }} {{ range(2, 5)|list }} {{ range(10, 0, -3)|list }} {{ range(0)|list }} {{ range(3)|length }}",
    "{{ range(100001)|length }}",
    "{{ dict(a=1, b=2) }} {{ dict([('x', 1)]) }} {{ dict({'a': 1}, b=2) }} {{ dict.fromkeys(['a', 'b'], 0) }}",
    "{% set c = cycler('odd', 'even') %}{{ c.next() }}{{ c.next() }}{{ c.next() }}{{ c.current }}{% set j = joiner(', ') %}{% for x in l %}{{ j() }}{{ x }}{% endfor %}",
    "{{ strftime_now('%Y-%m-%d') }} {{ strftime_now('%d %b %Y') }} {{ strftime_now('%B %d, %Y') }} {{ strftime_now('%A %H:%M') }}",
    "{{ namespace(a=1).a }} {{ namespace({'b': 2}).b }} {{ namespace(a=1) }}",
    "{{ raise_exception('Custom failure: ' ~ n) }}",
    # undefined semantics
    "[{{ zz }}][{{ zz|length }}][{{ zz|string }}][{{ zz|lower }}][{% for x in zz %}x{% endfor %}][{{ zz is defined }}][{{ 'a' if zz else 'b' }}]",
    "{{ zz.attr }}",
    "{{ zz['x'] }}",
    "{{ zz + 1 }}",
    "{{ 'a' + zz }}",
    "{{ zz() }}",
    "{{ d.zz.yy }}",
    "{{ l[10].x }}",
    "{{ none.x }}|",
    "{{ none.x.y }}",
    "{{ -zz }}",
    "{{ zz < 1 }}",
    # type errors
    "{{ 'a' + 1 }}",
    "{{ 1 + 'a' }}",
    "{{ [1] + (2,) }}",
    "{{ 'a' - 'b' }}",
    "{{ {} + {} }}",
    "{{ 1 / 0 }}",
    "{{ 1 // 0 }}",
    "{{ 1 % 0 }}",
    "{{ 'a' < 1 }}",
    "{{ 1 in 5 }}",
    "{{ 1 in 'abc' }}",
    "{{ 'abc'|items|list }}",
    "{{ l|length is number }} {{ (l|map('string'))|length }}",
    "{{ 'x'.nope }}|{{ 'x'.nope() }}",
    "{{ s.upper(1) }}",
    "{{ unknown_filter_here|nofilter }}",
    "{% if false %}{{ x|nofilter }}{% endif %}ok",
    "{% if true %}{{ x|nofilter }}{% endif %}",
    "{{ x is notatest }}",
    "{{ 1 if false else x|nofilter2 }}",
    # syntax errors
    "{% if true %}unclosed",
    "{% for x in y %}{% endif %}",
    "{% endfor %}",
    "{{ 1 + }}",
    "{{ (1, 2 }}",
    "{% set 1 = 2 %}",
    "{% macro m(a=1, b) %}{% endmacro %}",
    "{% unknowntag %}",
    "{# unclosed comment",
    "{% raw %}no end",
    "{{ 'unterminated }}",
    "{{ a b }}",
    "{% break %}",
    "{{ x | }}",
    "line1\nline2 {{ 1 +* 2 }}",

    # more whitespace control
    "<ul>\n{% for x in l %}\n\t<li>{{ x }}</li>\n{% endfor %}\n</ul>",
    "a{% if true %}\n{% endif %}b\n{%- if true %}  c{% endif -%}\n  d",
    "\t\t{%- set x = 1 %}\n\t{{ x }}\n  \t{% if x %}y{% endif %}",
    "{% for m in msgs %}\n{{- m.role }}: {{ m.content }}\n{% endfor %}",
    "{%- for m in msgs -%}\n  [{{ m.role }}]\n{%- endfor -%}\n",
    "a {# c #} b\n  {# c #}\n c",
    "x\n{% raw %}\n  {{ y }}\n{% endraw %}\nz",
    "  {%- raw %} r {% endraw -%}  ",
    "{{- ' lead' }}",
    "{% if true %}  {{ 'a' }}  {% endif %}",
    # strings and escapes
    "{{ '\\t|\\\\|\\'|\\\"' }}|{{ \"a'b\" }}|{{ 'it''s' }}",
    "{{ 'multi\nline' }}",
    "{{ '{{ not }}' }}{{ '%}' }}",
    "{{ {'a': {'b': 1}} }}{{ {'x': 1}['x'] }}",
    # loops and scoping
    "{% for a in [1, 2] %}{% for b in [3, 4] %}{{ loop.index }}{{ loop.length }}{% endfor %}{{ loop.index }}{% endfor %}",
    "{% set items = [] %}{% for x in l %}{% set items = items + [x] %}{% endfor %}{{ items }}",
    "{% set total = namespace(v=0) %}{% macro add(n) %}{% set total.v = total.v + n %}{% endmacro %}{{ add(2) }}{{ add(3) }}{{ total.v }}",
    "{% for x in l %}{% set last_x = x %}{% endfor %}{{ last_x is defined }}",
    "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for x in l|sort %}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{% for k, v in d|dictsort %}{{ k }}:{{ v }} {% endfor %}",
    "{% for x in msgs if x.role == 'assistant' %}{{ loop.index }}{{ x.content }}{% endfor %}",
    "{% for x in [1, 2, 3] %}{% if x > 1 %}{% break %}{% endif %}{% endfor %}{{ x }}",
    "{% macro m() %}{{ caller() if caller is defined else 'no caller' }}{% endmacro %}{{ m() }}",
    "{% macro m(x) %}{{ x }}{{ varargs|length }}{% endmacro %}{{ m(1, 2, 3) }}",
    "{% macro outer() %}{% macro inner() %}in{% endmacro %}{{ inner() }}{% endmacro %}{{ outer() }}",
    "{{ (range(3)|list)[1] }}{{ [1, 2, 3][-1] }}",
    "{% set x = {'k': [1, {'z': 'v'}]} %}{{ x.k[1].z }}{{ x['k'][0] }}",
    # numbers
    "{{ 3 / 2 }} {{ 4 / 2 }} {{ 2 ** 0.5 }} {{ 10 ** 15 }} {{ 10.0 ** 16 }} {{ 1 / 3 }} {{ 100000000000000000000.0 }} {{ 1.5e-10 }} {{ 123456789.123 }}",
    "{{ 0.1 * 3 }} {{ 1e300 * 1e10 }} {{ -1e300 * 1e10 }} {{ 7 // 2.0 }} {{ -7 // 2.0 }} {{ 5 % 2.5 }}",
    "{{ '%d' % 3.9 }} {{ '%.3f' % 2 }} {{ '%s and %s' % ('a', 'b') }} {{ '%5.1f|%-6d|%+d' % (3.14159, 42, 7) }} {{ '%x %X %o' % (255, 255, 8) }} {{ '%c' % 65 }} {{ '%%' % () }}",
    "{{ '{:d}'.format(5) }} {{ '{:x}'.format(255) }} {{ '{:#x}'.format(255) }} {{ '{:e}'.format(12345.678) }} {{ '{:.2%}'.format(0.256) }} {{ '{:g}'.format(0.00001) }} {{ '{:*^9}'.format('mid') }} {{ '{0[1]}'.format(['a', 'b']) }}",
    "{{ 1 == true }} {{ 0 == false }} {{ 1 in [true] }} {{ {1: 'a'}[true] }}",
    # reprs inside containers
    "{{ [1.5, -0.0, 1e22, 1234567890123456789] }}",
    "{{ {'t': (1,), 'n': none, 'b': false, 's': 'x\"y'} }}",
    "{{ ['a\\'b\"c'] }}",
    "{{ msgs[0] }}",
    "{{ [range] is defined }}",
    # markup
    "{{ ('<a>'|safe) ~ '<b>' }} {{ ['<x>'|safe, '<y>']|join }} {{ '<b>'|safe|length }} {{ ('a'|safe) == 'a' }}",
    "{{ ('x'|safe) + ('<y>'|safe) }} {{ '<'|e|e }} {{ ('<a>'|safe)|upper }}",
    # generators
    "{% set g = l|map('string') %}{{ g|list }}{{ g|list }}",
    "{{ l|map('string')|first }} {{ (l|select('odd'))|join(',') }} {{ l|reverse|first }}",
    "{{ l|select('odd')|last }}",
    "{% for x in l|reverse %}{{ x }}{{ loop.length }}{% endfor %}",
    # more errors
    "{{ l|sort(attribute='x') }}",
    "{{ [1, 'a']|sort }}",
    "{{ 'abc'.split('') }}",
    "{{ '{}'.format() }}",
    "{{ '%d' % 'x' }}",
    "{{ '%s %s' % ('a',) }}",
    "{{ '%s' % ('a', 'b') }}",
    "{{ l|batch }}",
    "{{ range('a') }}",
    "{{ range(1, 2, 0) }}",
    "{{ dict(1) }}",
    "{% set a, b = [1] %}",
    "{% set a, b = [1, 2, 3] %}",
    "{{ (1, 2).x }}|{{ d.get is callable }}|",
    "{{ d[[1]] }}|",
    "{{ {[1]: 2} }}",
    "{{ 'x'|truncate(1) }}",
    "{{ l[1:2:0] }}",
    "{{ l['a':] }}",
    "{{ loop }}|{{ loop.index }}",
    "{{ 1 is divisibleby 0 }}",
    "{{ 'x' | indent(width='--') }}",
    "{% for x in l %}{{ loop() }}{% endfor %}",
    "{% macro m() %}{{ caller() }}{% endmacro %}{{ m() }}",
    "{{ '{0}{}'.format('a', 'b') }}",
    "{{ -'a' }}",
    "{{ d.items()|first|first }}",
    "{{ 2 ** 62 }}",
]


# Cases whose error message names Python internals (do_batch(), ...): only the class must match.
MESSAGE_DIFFERS = {
    "{{ l|batch }}",
}


def render(env, src, variables):
    try:
        return {"expected": env.from_string(src).render(**variables)}
    except Exception as e:  # noqa: BLE001 - every exception class is data here
        out = {"error_type": type(e).__name__, "error": str(e)}
        if hasattr(e, "lineno") and e.lineno:
            out["line"] = e.lineno
        return out


def main():
    env = make_env()
    cases = []
    for src in CASES:
        case = {"template": src, "variables": V}
        case.update(render(env, src, V))
        if src in MESSAGE_DIFFERS:
            case["same_message"] = False
        cases.append(case)
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "jinja", "data", "jinja_cases.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"jinja2": jinja2.__version__, "python": sys.version.split()[0], "cases": cases}, f,
                  ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases -> {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
