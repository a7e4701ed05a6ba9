# Tool calling and reasoning output through the official openai client, one server per parser
# with a real template from ../shared/data/chat_templates (--chat-template): the demo model does
# not call tools by itself, so tool_choice "required" and named functions (enforced by the grammar)
# make it; every call's arguments must validate against the tool's schema; streamed calls are
# reassembled by the client's own stream state; the calls and their results go back through the
# template (checked in the rendered prompt) for a final answer. Plus vLLM's 400s for tools and
# tool_choice, hostile tool lists, and the reasoning parsers (deepseek_r1: the demo model's text
# is all reasoning; qwen3 with enable_thinking false: all content). The parsers themselves are
# unit-tested on model text in tests/tools.
import json
import os

import httpx
import jsonschema
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState

from conftest import REPO, Server, assert_idle

TEMPLATES = os.path.join(os.path.dirname(REPO), "shared", "data", "chat_templates", "templates")

WEATHER = {"type": "function", "function": {
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "unit", "days"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 10}},
                   "required": ["zone"], "additionalProperties": False}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
QUESTION = [{"role": "user", "content": "What is the weather in Paris?"}]
MAX_TOKENS = None  # what the demo model's 512-token context leaves after the prompt

# (name, template, parser flags, id length): Mistral's template checks 9-character ids.
CONFIGS = [
    ("hermes-qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", ["--tool-call-parser", "hermes"], None),
    ("hermes-qwen3", "Qwen-Qwen3-0.6B.jinja", ["--tool-call-parser", "hermes", "--reasoning-parser", "qwen3"], None),
    ("llama3_json", "meta-llama-Llama-3.2-3B-Instruct.jinja", ["--tool-call-parser", "llama3_json"], None),
    ("mistral", "mistralai-Mistral-Nemo-Instruct-2407.jinja", ["--tool-call-parser", "mistral"], 9),
    ("qwen3_coder", "Qwen-Qwen3-0.6B.jinja", ["--tool-call-parser", "qwen3_coder"], None),
]


@pytest.fixture(scope="module", params=CONFIGS, ids=[c[0] for c in CONFIGS])
def config(request):
    name, template, flags, id_len = request.param
    path = os.path.join(TEMPLATES, template)
    if not os.path.exists(path):
        pytest.skip(f"needs ../shared ({path})")
    s = Server(["--chat-template", path, "--enable-auto-tool-choice", *flags]).start()
    try:
        yield {"server": s, "name": name, "id_len": id_len,
               "client": openai.OpenAI(base_url=s.url("/v1"), api_key="unused", max_retries=0, timeout=120)}
    finally:
        alive = s.alive()
        errors = s.server_errors()
        if alive:
            s.stop()
        assert alive, "the server died:\n" + s.log()
        assert not errors, f"5xx answers: {errors}\n" + s.log()


def model_of(client):
    return client.models.list().data[0].id


def create(cfg, **kw):
    kw.setdefault("messages", QUESTION)
    kw.setdefault("tools", TOOLS)
    if MAX_TOKENS is not None:
        kw.setdefault("max_tokens", MAX_TOKENS)
    kw.setdefault("temperature", 0)
    return cfg["client"].chat.completions.create(model=model_of(cfg["client"]), **kw)


def check_calls(cfg, calls, allowed=None):
    assert calls, "no tool calls"
    ids = set()
    for c in calls:
        assert c.type == "function"
        assert c.function.name in (allowed or SCHEMAS), c.function.name
        args = json.loads(c.function.arguments)
        jsonschema.validate(args, SCHEMAS[c.function.name])
        if cfg["id_len"]:
            assert len(c.id) == cfg["id_len"] and c.id.isalnum(), c.id
        else:
            assert c.id.startswith("call_"), c.id
        ids.add(c.id)
    assert len(ids) == len(calls), "call ids repeat"


def stream_final(cfg, **kw):
    """Streams a request; returns the client's reassembled completion and the raw chunks."""
    state, chunks = ChatCompletionStreamState(), []
    for chunk in create(cfg, stream=True, **kw):
        chunks.append(chunk)
        state.handle_chunk(chunk)
    # The snapshot: get_final_completion refuses answers cut by max_tokens.
    return state.current_completion_snapshot, chunks


def check_call_deltas(chunks):
    """The first delta of each call carries index, id, type and name with empty arguments; the
    later ones argument text only."""
    started = set()
    for chunk in chunks:
        for choice in chunk.choices:
            for t in choice.delta.tool_calls or []:
                if t.index not in started:
                    assert t.index == len(started)
                    assert t.id and t.type == "function" and t.function.name, t
                    assert t.function.arguments == "", t
                    started.add(t.index)
                else:
                    assert t.id is None and (t.function.name is None), t
                    assert t.function.arguments, t
    return started


def test_required_whole_and_streamed(config):
    r = create(config, tool_choice="required", parallel_tool_calls=False)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    assert choice.message.content is None
    assert len(choice.message.tool_calls) == 1
    check_calls(config, choice.message.tool_calls)
    final, chunks = stream_final(config, tool_choice="required", parallel_tool_calls=False)
    assert check_call_deltas(chunks) == {0}
    fc = final.choices[0]
    assert fc.finish_reason == "tool_calls"
    assert not fc.message.content
    check_calls(config, fc.message.tool_calls)
    # Same seedless greedy run: the same call (ids are new each time).
    assert [(c.function.name, c.function.arguments) for c in fc.message.tool_calls] == \
           [(c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert_idle(config["server"])


def test_named_function(config):
    named = {"type": "function", "function": {"name": "get_time"}}
    r = create(config, tool_choice=named)
    choice = r.choices[0]
    assert choice.finish_reason == "stop"  # vLLM: a named choice is not "tool_calls"
    assert [c.function.name for c in choice.message.tool_calls] == ["get_time"]
    check_calls(config, choice.message.tool_calls, {"get_time"})
    final, chunks = stream_final(config, tool_choice=named)
    assert check_call_deltas(chunks) == {0}
    assert final.choices[0].message.tool_calls[0].function.arguments == choice.message.tool_calls[0].function.arguments


def test_parallel_calls_are_all_valid(config):
    # Up to the grammar's list: every call that finished is valid; a list cut by max_tokens is not
    # a tool_calls answer.
    r = create(config, tool_choice="required")
    choice = r.choices[0]
    if choice.finish_reason == "tool_calls":
        check_calls(config, choice.message.tool_calls)
    else:
        assert choice.finish_reason == "length"


def rendered(cfg, messages, tools=TOOLS):
    s = cfg["server"]
    tok = httpx.post(s.url("/tokenize"), json={"messages": messages, "tools": tools, "add_generation_prompt": True},
                     timeout=30)
    assert tok.status_code == 200, tok.text
    text = httpx.post(s.url("/detokenize"), json={"tokens": tok.json()["tokens"]}, timeout=30)
    assert text.status_code == 200, text.text
    return text.json()["prompt"]


def test_round_trip(config):
    # tools -> tool_calls -> tool results -> a final answer, streamed and not.
    r = create(config, tool_choice="required", parallel_tool_calls=False)
    call = r.choices[0].message.tool_calls[0]
    args = json.loads(call.function.arguments)
    messages = QUESTION + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call.id, "type": "function", "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 degrees"}]
    used = [t for t in TOOLS if t["function"]["name"] == call.function.name]
    prompt = rendered(config, messages, used)
    # The template wrote the call with its arguments as the object (tojson of it, not of a
    # string), and the result.
    assert call.function.name in prompt
    assert json.dumps(args, ensure_ascii=False) in prompt, prompt
    assert "sunny, 21 degrees" in prompt
    if config["id_len"]:
        assert call.id in prompt
    final = create(config, messages=messages, tools=used, tool_choice="none", max_tokens=8)
    assert final.choices[0].message.tool_calls == [] or final.choices[0].message.tool_calls is None
    assert final.choices[0].finish_reason in ("stop", "length")
    streamed, _ = stream_final(config, messages=messages, tools=used, tool_choice="none", max_tokens=8)
    whole_text = (final.choices[0].message.content or "") + (getattr(final.choices[0].message, "reasoning_content", None) or "")
    s_msg = streamed.choices[0].message
    stream_text = (s_msg.content or "") + (getattr(s_msg, "reasoning_content", None) or "")
    assert stream_text == whole_text


def test_auto_on_plain_text(config):
    # tool_choice auto: the demo model writes no call markup, so its text is content, unchanged
    # from tool_choice none (the parser only keeps back what may start a call).
    auto = create(config, tool_choice="auto", max_tokens=16)
    none = create(config, tool_choice="none", max_tokens=16)
    a, n = auto.choices[0], none.choices[0]
    if not a.message.tool_calls:
        assert a.finish_reason == n.finish_reason
        if config["name"] != "hermes-qwen3":
            assert a.message.content == n.message.content
    final, chunks = stream_final(config, tool_choice="auto", max_tokens=16)
    assert (final.choices[0].message.content or "") == (a.message.content or "")


def test_errors(config):
    c, m = config["client"], model_of(config["client"])

    def bad(status=400, **kw):
        kw.setdefault("messages", QUESTION)
        kw.setdefault("max_tokens", 4)
        with pytest.raises(openai.APIStatusError) as e:
            c.chat.completions.create(model=m, **kw)
        assert e.value.status_code == status, e.value
        return e.value.body.get("message", "") if isinstance(e.value.body, dict) else str(e.value.body)

    assert "does not match any of the specified" in bad(tools=TOOLS, tool_choice={"type": "function", "function": {"name": "nope"}})
    assert "`tools` must be set" in bad(tool_choice="required")
    assert "Only named tools" in bad(tools=TOOLS, tool_choice="sometimes")
    assert "Expected field `name`" in bad(tools=TOOLS, tool_choice={"type": "function", "function": {}})
    bad(tools=TOOLS, tool_choice="required", parallel_tool_calls="yes")
    # Hostile tools: wrong types, a schema the grammar cannot take, too many, deep nesting.
    for tools in [[{"type": "function", "function": {"name": "f", "parameters": "x"}}],
                  [{"type": "function", "function": {"name": ""}}],
                  [{"type": "function", "function": {"name": "f", "description": ["d"]}}],
                  [{"type": "function", "function": {"name": "f", "strict": "no"}}],
                  [{"type": "function", "function": {"name": "f"}}] * 2000]:
        bad(tools=tools, tool_choice="required")
    bad(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "frobnicate"}}}], tool_choice="required")
    bad(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)"}}}}}],
        tool_choice={"type": "function", "function": {"name": "f"}})
    deep = {"type": "object"}
    for _ in range(80):
        deep = {"type": "object", "properties": {"a": deep}}
    bad(tools=[{"type": "function", "function": {"name": "f", "parameters": deep}}], tool_choice="required")
    # Malformed tool messages.
    for msgs in [[{"role": "assistant", "content": None, "tool_calls": "x"}],
                 [{"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {}}}]}],
                 [{"role": "tool", "tool_call_id": 5, "content": "x"}]]:
        bad(messages=QUESTION + msgs, tools=TOOLS)
    # response_format and a forced call do not mix.
    bad(tools=TOOLS, tool_choice="required", response_format={"type": "json_object"})
    assert config["server"].alive()


# ---- servers without the auto flag, and the reasoning parsers


@pytest.fixture(scope="module")
def plain():
    s = Server(["--reasoning-parser", "deepseek_r1"]).start()
    try:
        yield s, openai.OpenAI(base_url=s.url("/v1"), api_key="unused", max_retries=0, timeout=60)
    finally:
        errors = s.server_errors()
        s.stop()
        assert not errors, s.log()


def test_auto_needs_the_flag(plain):
    s, c = plain
    m = model_of(c)
    with pytest.raises(openai.BadRequestError) as e:
        c.chat.completions.create(model=m, messages=QUESTION, tools=TOOLS, max_tokens=4)
    assert "--enable-auto-tool-choice and --tool-call-parser" in str(e.value)
    # tool_choice none and forced choices need no parser.
    r = c.chat.completions.create(model=m, messages=QUESTION, tools=TOOLS, tool_choice="none", max_tokens=4)
    assert r.choices[0].finish_reason in ("stop", "length")
    r = c.chat.completions.create(model=m, messages=QUESTION, tools=TOOLS, tool_choice="required",
                                  parallel_tool_calls=False, temperature=0)
    assert r.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(r.choices[0].message.tool_calls[0].function.arguments),
                        SCHEMAS[r.choices[0].message.tool_calls[0].function.name])


def test_deepseek_r1_reasoning(plain):
    # DeepSeek-R1's template opens <think> in the prompt: output without </think> is all reasoning.
    s, c = plain
    m = model_of(c)
    r = c.chat.completions.create(model=m, messages=QUESTION, max_tokens=16, temperature=0)
    msg = r.choices[0].message
    assert msg.content is None
    assert msg.reasoning_content
    state, reasoning, content = ChatCompletionStreamState(), "", ""
    for chunk in c.chat.completions.create(model=m, messages=QUESTION, max_tokens=16, temperature=0, stream=True):
        state.handle_chunk(chunk)
        for ch in chunk.choices:
            reasoning += getattr(ch.delta, "reasoning_content", None) or ""
            content += ch.delta.content or ""
    assert reasoning == msg.reasoning_content
    assert content == ""
    assert_idle(s)


@pytest.fixture(scope="module")
def qwen3():
    path = os.path.join(TEMPLATES, "Qwen-Qwen3-0.6B.jinja")
    if not os.path.exists(path):
        pytest.skip(f"needs ../shared ({path})")
    s = Server(["--chat-template", path, "--reasoning-parser", "qwen3"]).start()
    try:
        yield s, openai.OpenAI(base_url=s.url("/v1"), api_key="unused", max_retries=0, timeout=60)
    finally:
        errors = s.server_errors()
        s.stop()
        assert not errors, s.log()


def test_qwen3_reasoning_and_enable_thinking(qwen3):
    # The demo model writes no <think> itself; an assistant prefill of "<think>" (continue_final_
    # message) puts the output inside the think block, as a Qwen3 thinking template does. With
    # enable_thinking false the qwen3 parser stands aside and all of it is content.
    s, c = qwen3
    m = model_of(c)
    prefill = QUESTION + [{"role": "assistant", "content": "<think>\n"}]
    common = dict(model=m, messages=prefill, max_tokens=16, temperature=0,
                  extra_body={"continue_final_message": True, "add_generation_prompt": False})
    on = c.chat.completions.create(**common)
    off_kw = dict(common, extra_body=dict(common["extra_body"], chat_template_kwargs={"enable_thinking": False}))
    off = c.chat.completions.create(**off_kw)
    # Off: the raw text, as content. On: the same text split at the first </think>.
    raw = off.choices[0].message.content
    assert off.choices[0].message.reasoning_content is None and raw
    msg = on.choices[0].message
    if "</think>" in raw:
        before, after = raw.split("</think>", 1)
        assert (msg.reasoning_content or "") == before and (msg.content or "") == after
    else:
        assert msg.reasoning_content == raw and msg.content is None
    state, reasoning, content = ChatCompletionStreamState(), "", ""
    for chunk in c.chat.completions.create(stream=True, **common):
        state.handle_chunk(chunk)
        for ch in chunk.choices:
            reasoning += getattr(ch.delta, "reasoning_content", None) or ""
            content += ch.delta.content or ""
    assert reasoning == (msg.reasoning_content or "") and content == (msg.content or "")
    # Without a think block the text is content.
    plain = c.chat.completions.create(model=m, messages=QUESTION, max_tokens=16, temperature=0)
    assert plain.choices[0].message.reasoning_content is None and plain.choices[0].message.content
