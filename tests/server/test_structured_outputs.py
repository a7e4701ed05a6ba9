# Structured outputs through the official openai client against `tokamak serve` on the demo model:
# response_format json_object / json_schema on chat and completions, vLLM's structured_outputs
# and the older guided_* fields (json, regex, choice, grammar), streamed and whole, n > 1, at
# temperature 1 and greedily: every finished output obeys its constraint. Errors: two
# constraints, wrong types, and a stream of malformed schemas, regexes and grammars get 400s with
# the grammar engine's message, never a 5xx, and the server keeps serving.
import json
import random
import re

import httpx
import jsonschema
import openai
import pytest

from conftest import assert_idle

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 130},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}, "maxItems": 3},
    },
    "required": ["name", "age"],
}
MESSAGES = [{"role": "user", "content": "Describe a person as JSON."}]
MAX_TOKENS = 200


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model(client):
    return client.models.list().data[0].id


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=60) as c:
        yield c


def check_json(text, schema=None):
    value = json.loads(text)
    if schema is None:
        assert isinstance(value, dict), text
    else:
        jsonschema.validate(value, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return value


def finished(choices):
    """The choices that ended by the grammar's eos (a length cut leaves an unfinished prefix)."""
    return [c for c in choices if c.finish_reason == "stop"]


def json_schema_format(schema, strict=True):
    return {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": strict}}


# ---- response_format on chat

@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_chat_json_schema(client, model, temperature):
    r = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=temperature,
                                       seed=3, n=1 if temperature == 0 else 3, response_format=json_schema_format(PERSON))
    done = finished(r.choices)
    assert done, [c.finish_reason for c in r.choices]
    for c in done:
        check_json(c.message.content, PERSON)


def test_chat_json_object(client, model):
    r = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=1.0, seed=5,
                                       n=2, response_format={"type": "json_object"})
    assert len(r.choices) == 2
    for c in finished(r.choices):
        check_json(c.message.content)


def test_chat_text_format_is_unconstrained(client, model):
    r = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=0,
                                       response_format={"type": "text"})
    plain = client.chat.completions.create(model=model, messages=MESSAGES, max_tokens=8, temperature=0)
    assert r.choices[0].message.content == plain.choices[0].message.content


def test_chat_json_schema_streamed_equals_whole(client, model):
    kw = dict(model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=1.0, seed=11,
              response_format=json_schema_format(PERSON))
    whole = client.chat.completions.create(**kw).choices[0]
    text, finish = "", None
    for chunk in client.chat.completions.create(stream=True, **kw):
        for ch in chunk.choices:
            text += ch.delta.content or ""
            finish = ch.finish_reason or finish
    assert text == whole.message.content
    assert finish == whole.finish_reason
    if finish == "stop":
        check_json(text, PERSON)


# ---- completions: response_format, structured_outputs and guided_*

def complete(client, model, **kw):
    kw.setdefault("prompt", "Output:")
    kw.setdefault("max_tokens", MAX_TOKENS)
    kw.setdefault("temperature", 1.0)
    return client.completions.create(model=model, **kw)


def test_completions_response_format(client, model):
    r = complete(client, model, seed=2, n=2, extra_body={"response_format": json_schema_format(PERSON)})
    for c in finished(r.choices):
        check_json(c.text, PERSON)


@pytest.mark.parametrize("field", ["structured_outputs", "guided"])
def test_completions_json(client, model, field):
    body = {"structured_outputs": {"json": PERSON}} if field == "structured_outputs" else {"guided_json": PERSON}
    r = complete(client, model, seed=4, n=3, extra_body=body)
    done = finished(r.choices)
    assert done
    for c in done:
        check_json(c.text, PERSON)


def test_completions_json_as_string_and_compact(client, model):
    r = complete(client, model, seed=8, n=2,
                 extra_body={"structured_outputs": {"json": json.dumps(PERSON), "disable_any_whitespace": True}})
    for c in finished(r.choices):
        check_json(c.text, PERSON)
        assert not re.search(r'[\s](?=(?:[^"]*"[^"]*")*[^"]*$)', c.text), f"whitespace outside strings: {c.text!r}"


REGEX = r"[A-Z][a-z]{1,8} [0-9]{2,4}(\.[0-9])?"
CHOICES = ["red", "green", "blue", "dark purple"]
GBNF = 'root ::= "(" item ("," item){0,3} ")"\nitem ::= [a-c]+ | [0-9]'
GBNF_RE = re.compile(r"\((?:[a-c]+|[0-9])(?:,(?:[a-c]+|[0-9])){0,3}\)")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", ["regex", "choice", "grammar"])
@pytest.mark.parametrize("field", ["structured_outputs", "guided"])
def test_completions_regex_choice_grammar(client, model, kind, field, stream):
    value = {"regex": REGEX, "choice": CHOICES, "grammar": GBNF}[kind]
    body = {"structured_outputs": {kind: value}} if field == "structured_outputs" else {f"guided_{kind}": value}
    kw = dict(seed=13, n=3, max_tokens=40, extra_body=body)
    if stream:
        texts, finish = {}, {}
        for chunk in complete(client, model, stream=True, **kw):
            for ch in chunk.choices:
                texts[ch.index] = texts.get(ch.index, "") + ch.text
                finish[ch.index] = ch.finish_reason or finish.get(ch.index)
        outs = [(texts.get(i, ""), finish.get(i)) for i in range(3)]
    else:
        outs = [(c.text, c.finish_reason) for c in complete(client, model, **kw).choices]
    assert all(f == "stop" for _, f in outs), outs
    for text, _ in outs:
        if kind == "regex":
            assert re.fullmatch(REGEX, text), text
        elif kind == "choice":
            assert text in CHOICES, text
        else:
            assert GBNF_RE.fullmatch(text), text


def test_greedy_choice_with_logprobs(client, model):
    r = complete(client, model, temperature=0, logprobs=2, max_tokens=10, extra_body={"guided_choice": CHOICES})
    c = r.choices[0]
    assert c.text in CHOICES and c.finish_reason == "stop"
    # Log-probs are of the masked distribution: every top alternative is a token the grammar allows.
    for tok, top in zip(c.logprobs.tokens, c.logprobs.top_logprobs):
        finite = [t for t, lp in top.items() if lp > -1e30]
        assert tok in top and finite


# ---- errors

def post(http, path, body):
    return http.post(path, json=body)


def assert_400(r, *needles):
    assert r.status_code == 400, (r.status_code, r.text[:400])
    err = r.json()["error"]
    assert err["type"] == "BadRequestError"
    for n in needles:
        assert n in err["message"], err["message"]
    return err


def test_two_constraints_are_a_400(http):
    base = {"prompt": "x", "max_tokens": 4}
    for extra in [{"guided_json": PERSON, "guided_regex": "a+"},
                  {"response_format": {"type": "json_object"}, "structured_outputs": {"regex": "a"}},
                  {"structured_outputs": {"regex": "a", "choice": ["b"]}}]:
        assert_400(post(http, "/v1/completions", {**base, **extra}), "only one structured output constraint")
    assert_400(post(http, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 4,
                                                    "response_format": {"type": "json_object"}, "guided_choice": ["a"]}),
               "only one")


def test_unsupported_keyword_names_it(http):
    schema = {"type": "object", "properties": {"x": {"type": "integer", "multipleOf": 3}}}
    err = assert_400(post(http, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 4,
                                                         "response_format": json_schema_format(schema)}),
                     "multipleOf")
    assert err["param"] == "response_format"


@pytest.mark.parametrize("body", [
    {"response_format": "json"},
    {"response_format": {"type": "xml"}},
    {"response_format": {"type": "json_schema"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": 3, "schema": {}}}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": 5}}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": "yes"}}},
    {"structured_outputs": []},
    {"structured_outputs": {}},
    {"structured_outputs": {"regex": 5}},
    {"structured_outputs": {"choice": []}},
    {"structured_outputs": {"choice": ["a", 1]}},
    {"structured_outputs": {"json": PERSON, "disable_any_whitespace": "no"}},
    {"structured_outputs": {"json": PERSON, "whitespace_pattern": " "}},
    {"guided_json": 7},
    {"guided_json": "{not json"},
    {"guided_regex": ["a"]},
    {"guided_choice": "a"},
    {"guided_grammar": 1},
    {"guided_whitespace_pattern": "[ ]?"},
])
def test_malformed_fields(http, body):
    assert_400(post(http, "/v1/completions", {"prompt": "x", "max_tokens": 4, **body}))


BAD_SCHEMAS = [
    {"type": "strnig"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
    {"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}},
    {"type": "integer", "minimum": 5, "maximum": 2},
    {"type": "string", "minLength": 10, "maxLength": 2},
    {"type": "array", "minItems": 3, "maxItems": 1},
    {"type": "object", "required": "a"},
    {"enum": []},
    {"type": "string", "format": "no-such-format", "pattern": "[z-a]"},
    {"properties": {"a": {"type": ["string", 5]}}},
    {"$ref": "#"},
    {"allOf": [{"type": "string"}, {"type": "integer"}]},
    {"not": {"type": "string"}},
]
# (Accepted, so not here: "a**", which ECMAScript refuses but the grammar engine reads as (a*)*;
# "root ::=", an empty rule, which GBNF allows.)
BAD_REGEXES = ["(", ")", "[z-a]", "a{5,2}", "*a", "[", "a{99999999999}", "(" * 500 + "a" + ")" * 500,
               "\\", "a|*", "[\\q]"]
BAD_GRAMMARS = ["", "root ::= undefined", 'root ::= "unterminated', "root ::= [a-", "root = \"a\"",
                'start ::= "a"', "root ::= (\"a\"", "root ::= \"a\"{3,1}", 'root ::= "\\xZZ"', "::= \"a\"",
                "root ::= " + "(" * 500 + '"a"' + ")" * 500]


def test_malformed_schemas_regexes_grammars_are_400s(http):
    cases = ([("/v1/completions", "guided_json", {"guided_json": schema}) for schema in BAD_SCHEMAS] +
             [("/v1/completions", "structured_outputs", {"structured_outputs": {"regex": regex}}) for regex in BAD_REGEXES] +
             [("/v1/chat/completions", "guided_grammar", {"guided_grammar": g}) for g in BAD_GRAMMARS])
    accepted = []
    for path, field, extra in cases:
        base = {"prompt": "x"} if path == "/v1/completions" else {"messages": MESSAGES}
        r = post(http, path, {**base, "max_tokens": 4, **extra})
        if r.status_code != 400:
            accepted.append((extra, r.status_code))
            continue
        assert_400(r, field)
    assert not accepted, accepted


def test_a_stream_of_mutated_constraints_never_breaks_the_server(http):
    """Random truncations and byte flips of valid schemas, regexes and grammars: 200 or 400, never
    a 5xx (the fixture checks the access log) or a dead server."""
    rng = random.Random(1234)
    seeds = [json.dumps(PERSON), REGEX, GBNF, json.dumps({"type": "array", "items": {"$ref": "#"}, "maxItems": 2})]
    statuses = {}
    for i in range(120):
        kind = i % 3
        text = seeds[rng.choice([0, 3]) if kind == 0 else kind]
        cut = list(text[: rng.randrange(0, len(text) + 1)])
        for _ in range(rng.randrange(0, 3)):
            if cut:
                cut[rng.randrange(len(cut))] = rng.choice("{}[]()*+?|\\\"':,ab09 ")
        mutated = "".join(cut)
        field = ["guided_json", "guided_regex", "guided_grammar"][kind]
        r = post(http, "/v1/completions", {"prompt": "x", "max_tokens": 8, "temperature": 1.0, "seed": i, field: mutated})
        assert r.status_code in (200, 400), (field, mutated, r.status_code, r.text[:300])
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
    assert statuses.get(400, 0) > 30, statuses
    ok = post(http, "/v1/completions", {"prompt": "x", "max_tokens": 10, "guided_choice": ["still", "serving"]})
    assert ok.status_code == 200 and ok.json()["choices"][0]["text"] in ("still", "serving")


def test_idle_afterwards(server):
    assert_idle(server)
