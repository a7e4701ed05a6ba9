# The official `openai` client against `tokamak serve` on the demo model: completions and chat,
# streamed and whole, usage, log-probs in both shapes, n = 2, stop strings, seeds, stream ==
# non-stream, token-id and batched prompts, echo, errors and their shapes, and the small
# endpoints (/v1/models, /tokenize, /detokenize, /metrics, /version, /ping, /health).
import math
import re
import time

import httpx
import openai
import pytest

from conftest import assert_idle, metrics

PROMPT = "def fibonacci(n):"
PROMPTS = ["def fibonacci(n):", "import numpy as np\n", "class Stack:", "# Sort a list\n"]
MESSAGES = [{"role": "user", "content": "Write a function that adds two numbers."}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def model(client):
    return client.models.list().data[0].id


def complete(client, model, **kw):
    kw.setdefault("max_tokens", 12)
    kw.setdefault("temperature", 0)
    return client.completions.create(model=model, **kw)


def chat(client, model, **kw):
    kw.setdefault("max_tokens", 12)
    kw.setdefault("temperature", 0)
    kw.setdefault("messages", MESSAGES)
    return client.chat.completions.create(model=model, **kw)


def stream_completion(client, model, **kw):
    """Texts per choice index, finish reasons, the usage chunk, and the chunks."""
    chunks = list(complete(client, model, stream=True, **kw))
    texts, finish, usage = {}, {}, None
    for c in chunks:
        assert c.object == "text_completion"
        if c.usage is not None:
            assert c.choices == [], "the usage chunk has no choices"
            usage = c.usage
        for ch in c.choices:
            texts[ch.index] = texts.get(ch.index, "") + ch.text
            if ch.finish_reason is not None:
                assert ch.index not in finish, "two finish reasons for one choice"
                finish[ch.index] = ch.finish_reason
    return texts, finish, usage, chunks


def stream_chat(client, model, **kw):
    chunks = list(chat(client, model, stream=True, **kw))
    texts, finish, roles, usage = {}, {}, {}, None
    for c in chunks:
        assert c.object == "chat.completion.chunk"
        if c.usage is not None:
            assert c.choices == []
            usage = c.usage
        for ch in c.choices:
            if ch.delta.role is not None:
                assert ch.index not in texts, "role after content"
                roles[ch.index] = ch.delta.role
            texts[ch.index] = texts.get(ch.index, "") + (ch.delta.content or "")
            if ch.finish_reason is not None:
                assert ch.index not in finish
                finish[ch.index] = ch.finish_reason
    return texts, finish, roles, usage, chunks


def tokenize(server, prompt, add_special_tokens=True):
    r = httpx.post(server.url("/tokenize"), json={"prompt": prompt, "add_special_tokens": add_special_tokens}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


# ---- the small endpoints


def test_models(client, server):
    models = client.models.list().data
    assert len(models) == 1
    assert models[0].object == "model"
    raw = httpx.get(server.url("/v1/models"), timeout=10).json()
    assert raw["object"] == "list"
    assert raw["data"][0]["max_model_len"] >= 256
    assert raw["data"][0]["id"] == models[0].id


def test_health_ping_version(server):
    assert httpx.get(server.url("/health"), timeout=10).status_code == 200
    assert httpx.get(server.url("/ping"), timeout=10).status_code == 200
    assert httpx.post(server.url("/ping"), timeout=10).status_code == 200
    v = httpx.get(server.url("/version"), timeout=10)
    assert v.status_code == 200 and isinstance(v.json()["version"], str) and v.json()["version"]


def test_tokenize_detokenize_round_trip(server):
    text = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n"
    r = httpx.post(server.url("/tokenize"), json={"prompt": text}, timeout=30).json()
    assert r["count"] == len(r["tokens"]) > 5
    assert r["max_model_len"] >= 256
    plain = tokenize(server, text, add_special_tokens=False)
    assert r["tokens"][1:] == plain and len(r["tokens"]) == len(plain) + 1  # the BOS token
    d = httpx.post(server.url("/detokenize"), json={"tokens": plain}, timeout=30)
    assert d.status_code == 200 and d.json()["prompt"] == text
    # The chat form: the template's text, without special tokens added by default.
    c = httpx.post(server.url("/tokenize"), json={"messages": MESSAGES, "add_generation_prompt": True}, timeout=30).json()
    rendered = httpx.post(server.url("/detokenize"), json={"tokens": c["tokens"]}, timeout=30).json()["prompt"]
    assert MESSAGES[0]["content"] in rendered and rendered.endswith("assistant\n")
    # Non-ASCII survives the round trip.
    text = "naïve café — 日本語 🚀"
    assert httpx.post(server.url("/detokenize"), json={"tokens": tokenize(server, text, False)}, timeout=30).json()["prompt"] == text


def test_detokenize_rejects_ids_outside_the_vocabulary(server):
    r = httpx.post(server.url("/detokenize"), json={"tokens": [1, 8192]}, timeout=10)
    assert r.status_code == 400 and r.json()["error"]["code"] == 400


# ---- completions


def test_completion_shape_and_usage(client, model, server):
    r = complete(client, model, prompt=PROMPT, max_tokens=10)
    assert r.object == "text_completion" and r.id.startswith("cmpl-") and r.model == model
    assert isinstance(r.created, int) and abs(r.created - time.time()) < 600
    assert len(r.choices) == 1 and r.choices[0].index == 0
    c = r.choices[0]
    assert c.finish_reason in ("length", "stop")
    assert isinstance(c.text, str) and c.text
    assert r.usage.prompt_tokens == len(tokenize(server, PROMPT))
    assert 1 <= r.usage.completion_tokens <= 10
    if c.finish_reason == "length":
        assert r.usage.completion_tokens == 10
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_completion_stream_equals_whole(client, model):
    whole = complete(client, model, prompt=PROMPT, max_tokens=24)
    texts, finish, usage, chunks = stream_completion(client, model, prompt=PROMPT, max_tokens=24,
                                                     stream_options={"include_usage": True})
    assert texts == {0: whole.choices[0].text}
    assert finish == {0: whole.choices[0].finish_reason}
    assert usage is not None and usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    assert chunks[-1].usage is not None, "the usage chunk comes last"
    assert len({c.id for c in chunks}) == 1
    # Without include_usage there is no usage chunk.
    _, _, usage, _ = stream_completion(client, model, prompt=PROMPT, max_tokens=4)
    assert usage is None


def test_completion_seed(client, model):
    kw = dict(prompt=PROMPT, max_tokens=16, temperature=1.0, top_p=1.0)
    a = complete(client, model, seed=1234, **kw).choices[0].text
    b = complete(client, model, seed=1234, **kw).choices[0].text
    assert a == b
    texts = {complete(client, model, seed=s, **kw).choices[0].text for s in (1, 2, 3, 4)}
    assert len(texts) > 1, "different seeds gave one text"
    streamed, _, _, _ = stream_completion(client, model, seed=1234, **kw)
    assert streamed[0] == a


def test_completion_n2(client, model):
    kw = dict(prompt=PROMPT, max_tokens=10, temperature=1.0, seed=7, n=2)
    r = complete(client, model, **kw)
    assert sorted(c.index for c in r.choices) == [0, 1]
    assert r.choices[0].text != r.choices[1].text, "n=2 sampled one text twice"
    assert r.usage.completion_tokens <= 20
    texts, finish, _, _ = stream_completion(client, model, **kw)
    assert texts == {c.index: c.text for c in r.choices}
    assert set(finish) == {0, 1}


def test_completion_stop_string(client, model):
    full = complete(client, model, prompt=PROMPT, max_tokens=24).choices[0].text
    stop = full[8:11]
    assert len(stop) == 3
    expected = full[: full.index(stop)]
    r = complete(client, model, prompt=PROMPT, max_tokens=24, stop=[stop, "@@never@@"])
    assert r.choices[0].text == expected
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].model_extra.get("stop_reason") == stop
    texts, finish, _, _ = stream_completion(client, model, prompt=PROMPT, max_tokens=24, stop=stop)
    assert texts[0] == expected and finish[0] == "stop"
    kept = complete(client, model, prompt=PROMPT, max_tokens=24, stop=stop, extra_body={"include_stop_str_in_output": True})
    assert kept.choices[0].text == expected + stop


def test_completion_logprobs(client, model):
    r = complete(client, model, prompt=PROMPT, max_tokens=8, logprobs=3)
    lp = r.choices[0].logprobs
    n = r.usage.completion_tokens
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset) == n
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset == sorted(lp.text_offset)
    for tok, chosen, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert chosen <= 0 and math.isfinite(chosen)
        assert 3 <= len(top) <= 4 and tok in top
        assert all(v <= 0 for v in top.values())
        # Greedy: the chosen token is the most likely one.
        assert chosen == pytest.approx(max(top.values()), abs=1e-3)
    # Streamed log-probs concatenate to the whole ones.
    chunks = list(complete(client, model, prompt=PROMPT, max_tokens=8, logprobs=3, stream=True))
    tokens = [t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs.tokens]
    values = [t for c in chunks for ch in c.choices if ch.logprobs for t in ch.logprobs.token_logprobs]
    assert tokens == lp.tokens
    assert values == pytest.approx(lp.token_logprobs, abs=1e-5)


def test_completion_echo(client, model, server):
    r = complete(client, model, prompt=PROMPT, max_tokens=4, echo=True, logprobs=1)
    c = r.choices[0]
    plain = complete(client, model, prompt=PROMPT, max_tokens=4).choices[0].text
    assert c.text == PROMPT + plain
    n_prompt = len(tokenize(server, PROMPT))
    assert len(c.logprobs.tokens) == n_prompt + r.usage.completion_tokens
    assert c.logprobs.token_logprobs[0] is None  # the first prompt token has none
    assert all(v is not None and v <= 0 for v in c.logprobs.token_logprobs[1:])
    # Streamed echo: the prompt comes first.
    texts, _, _, _ = stream_completion(client, model, prompt=PROMPT, max_tokens=4, echo=True)
    assert texts[0] == PROMPT + plain


def test_stream_never_splits_a_character(client, model, server):
    # Tokens that are single bytes of multi-byte characters, pushed by logit_bias: the text is a
    # run of bytes that may or may not form characters. Streamed it must be what the whole answer
    # is (a character split across two chunks would come out as two replacement characters).
    ids = tokenize(server, "日本語の文字 🚀 é ü", add_special_tokens=False)
    bias = {str(i): 100 for i in set(ids)}
    for seed in range(4):
        kw = dict(prompt=PROMPT, max_tokens=16, temperature=1.0, seed=seed, logit_bias=bias)
        whole = complete(client, model, **kw).choices[0].text
        texts, _, _, _ = stream_completion(client, model, **kw)
        assert texts[0] == whole
        whole = chat(client, model, **kw_chat(kw)).choices[0].message.content
        texts, _, _, _, _ = stream_chat(client, model, **kw_chat(kw))
        assert texts[0] == whole
    # A prompt ending inside a character, echoed: the prompt text is what /detokenize says.
    one = ids[:1]
    r = complete(client, model, prompt=one, max_tokens=2, echo=True, logprobs=0)
    assert len(r.choices[0].logprobs.tokens) == 1 + r.usage.completion_tokens
    assert r.choices[0].logprobs.token_logprobs[0] is None
    assert r.choices[0].text.startswith(httpx.post(server.url("/detokenize"), json={"tokens": one}, timeout=10).json()["prompt"])


def kw_chat(kw):
    kw = dict(kw)
    kw.pop("prompt")
    return kw


def test_completion_token_id_prompts(client, model, server):
    ids = tokenize(server, PROMPT)
    a = complete(client, model, prompt=PROMPT, max_tokens=8)
    b = complete(client, model, prompt=ids, max_tokens=8)
    assert a.choices[0].text == b.choices[0].text
    assert b.usage.prompt_tokens == len(ids)
    two = complete(client, model, prompt=[ids, tokenize(server, PROMPTS[1])], max_tokens=8)
    assert [c.index for c in two.choices] == [0, 1]
    assert two.choices[0].text == a.choices[0].text


def test_completion_batched_prompts(client, model):
    singles = [complete(client, model, prompt=p, max_tokens=8).choices[0].text for p in PROMPTS]
    r = complete(client, model, prompt=PROMPTS, max_tokens=8)
    assert [c.index for c in r.choices] == list(range(len(PROMPTS)))
    assert [c.text for c in r.choices] == singles
    # With n = 2 prompt p's sequences are choices 2p and 2p + 1.
    r2 = complete(client, model, prompt=PROMPTS[:2], max_tokens=8, n=2)
    assert sorted(c.index for c in r2.choices) == [0, 1, 2, 3]
    by_index = {c.index: c.text for c in r2.choices}
    assert by_index[0] == by_index[1] == singles[0]  # greedy
    assert by_index[2] == by_index[3] == singles[1]
    texts, finish, usage, _ = stream_completion(client, model, prompt=PROMPTS, max_tokens=8,
                                                stream_options={"include_usage": True})
    assert texts == dict(enumerate(singles)) and set(finish) == set(range(len(PROMPTS)))
    assert usage.completion_tokens == r.usage.completion_tokens


def test_prompt_logprobs(client, model, server):
    r = complete(client, model, prompt=PROMPT, max_tokens=2, extra_body={"prompt_logprobs": 2})
    plp = r.choices[0].model_extra["prompt_logprobs"]
    ids = tokenize(server, PROMPT)
    assert len(plp) == len(ids) and plp[0] is None
    for i, entry in enumerate(plp[1:], start=1):
        assert str(ids[i]) in entry
        for v in entry.values():
            assert v["logprob"] <= 0 and isinstance(v["decoded_token"], str)


# ---- chat


def test_chat_shape_and_usage(client, model, server):
    r = chat(client, model, max_tokens=10)
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == model
    m = r.choices[0].message
    assert m.role == "assistant" and isinstance(m.content, str) and m.content
    assert r.choices[0].finish_reason in ("length", "stop")
    prompt_ids = httpx.post(server.url("/tokenize"), json={"messages": MESSAGES}, timeout=10).json()["tokens"]
    assert r.usage.prompt_tokens == len(prompt_ids)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # max_completion_tokens is the new name of max_tokens.
    r = client.chat.completions.create(model=model, messages=MESSAGES, max_completion_tokens=3, temperature=0)
    assert r.usage.completion_tokens <= 3


def test_chat_stream_equals_whole(client, model):
    whole = chat(client, model, max_tokens=20)
    texts, finish, roles, usage, chunks = stream_chat(client, model, max_tokens=20, stream_options={"include_usage": True})
    assert roles == {0: "assistant"}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert texts == {0: whole.choices[0].message.content}
    assert finish == {0: whole.choices[0].finish_reason}
    assert usage.completion_tokens == whole.usage.completion_tokens
    assert usage.prompt_tokens == whole.usage.prompt_tokens


def test_chat_seed_and_n2(client, model):
    kw = dict(max_tokens=12, temperature=1.0, seed=99)
    a = chat(client, model, **kw).choices[0].message.content
    assert chat(client, model, **kw).choices[0].message.content == a
    texts, _, _, _, _ = stream_chat(client, model, **kw)
    assert texts == {0: a}
    r = chat(client, model, n=2, **kw)
    assert sorted(c.index for c in r.choices) == [0, 1]
    texts, finish, roles, _, _ = stream_chat(client, model, n=2, **kw)
    assert texts == {c.index: c.message.content for c in r.choices}
    assert roles == {0: "assistant", 1: "assistant"} and set(finish) == {0, 1}


def test_chat_logprobs(client, model):
    r = chat(client, model, max_tokens=6, logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    assert "".join(t.token for t in content) == r.choices[0].message.content
    for t in content:
        assert t.logprob <= 0 and bytes(t.bytes).decode("utf-8", "replace") == t.token
        assert len(t.top_logprobs) == 2
        assert t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob
        assert t.logprob == pytest.approx(t.top_logprobs[0].logprob, abs=1e-3)  # greedy
    chunks = list(chat(client, model, max_tokens=6, logprobs=True, top_logprobs=2, stream=True))
    streamed = [t.token for c in chunks for ch in c.choices if ch.logprobs and ch.logprobs.content for t in ch.logprobs.content]
    assert streamed == [t.token for t in content]
    # logprobs without top_logprobs: no alternatives.
    r = chat(client, model, max_tokens=3, logprobs=True)
    assert all(t.top_logprobs == [] for t in r.choices[0].logprobs.content)
    assert chat(client, model, max_tokens=3).choices[0].logprobs is None


def test_chat_stop_string(client, model):
    full = chat(client, model, max_tokens=20).choices[0].message.content
    stop = full[6:9]
    expected = full[: full.index(stop)]
    r = chat(client, model, max_tokens=20, stop=stop)
    assert r.choices[0].message.content == expected and r.choices[0].finish_reason == "stop"
    texts, finish, _, _, _ = stream_chat(client, model, max_tokens=20, stop=[stop])
    assert texts == {0: expected} and finish == {0: "stop"}


def test_chat_content_parts_and_unknown_fields(client, model, server):
    a = chat(client, model, max_tokens=6).choices[0].message.content
    parts = [{"role": "user", "content": [{"type": "text", "text": MESSAGES[0]["content"]}]}]
    b = chat(client, model, max_tokens=6, messages=parts, extra_body={"some_unknown_field": 1}).choices[0].message.content
    assert a == b
    # Unknown fields are accepted and logged, as vLLM does.
    deadline = time.monotonic() + 5
    while "some_unknown_field" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "some_unknown_field" in server.log()


def test_access_log_line(client, model, server):
    complete(client, model, prompt=PROMPT, max_tokens=5, user="access-log-probe")
    # The line is written once the response is out, so the client may read the log before it is
    # there (and find an earlier request's line): wait for this request's.
    pattern = r"prompt_tokens=\d+ output_tokens=5 ttft=[0-9.]+ms.* total=[0-9.]+ms"
    deadline = time.monotonic() + 5
    line = None
    while time.monotonic() < deadline:
        lines = [l for l in server.log(50).split("\n") if "POST /v1/completions 200" in l]
        line = lines[-1] if lines else None
        if line and re.search(pattern, line):
            break
        time.sleep(0.05)
    assert line and re.search(pattern, line), line


# ---- errors


def error_of(exc):
    body = exc.response.json()
    assert set(body) == {"error"}
    e = body["error"]
    assert set(e) >= {"message", "type", "param", "code"}
    assert isinstance(e["message"], str) and e["message"]
    assert e["code"] == exc.status_code
    return e


@pytest.mark.parametrize("kw,param", [
    (dict(temperature=-1), "temperature"),
    (dict(top_p=0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(n=0), "n"),
    (dict(max_tokens=0), "max_tokens"),
    (dict(presence_penalty=3), "presence_penalty"),
    (dict(logprobs=21), "logprobs"),
    (dict(stream_options={"include_usage": True}), "stream_options"),
    (dict(prompt=""), "prompt"),
    (dict(prompt=[]), "prompt"),
])
def test_completion_bad_request(client, model, kw, param):
    kw.setdefault("prompt", PROMPT)
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, model, **kw)
    assert e.value.status_code == 400
    assert error_of(e.value)["type"] == "BadRequestError"


@pytest.mark.parametrize("kw", [
    dict(messages=[]),
    dict(temperature=-0.5),
    dict(top_logprobs=2),  # without logprobs
    dict(logprobs=True, top_logprobs=21),
    dict(stream_options={"include_usage": True}),
    dict(messages=[{"content": "no role"}]),
])
def test_chat_bad_request(client, model, kw):
    with pytest.raises(openai.BadRequestError) as e:
        chat(client, model, **kw)
    error_of(e.value)


def test_context_length_error_names_both_numbers(client, model, server):
    n = len(tokenize(server, PROMPT))
    max_len = httpx.get(server.url("/v1/models"), timeout=10).json()["data"][0]["max_model_len"]
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, model, prompt=PROMPT, max_tokens=max_len + 100)
    msg = error_of(e.value)["message"]
    assert str(max_len) in msg and str(n) in msg and str(max_len + 100) in msg
    assert error_of(e.value)["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError) as e:
        complete(client, model, prompt=[5] * (max_len + 10), max_tokens=1)
    assert str(max_len) in error_of(e.value)["message"] and str(max_len + 10) in error_of(e.value)["message"]
    with pytest.raises(openai.BadRequestError):
        chat(client, model, max_tokens=max_len + 100)
    # As in vLLM: max_tokens null is what the context leaves; left out it is 16, which must fit.
    r = complete(client, model, prompt=[5] * (max_len - 4), max_tokens=None, temperature=0)
    assert 1 <= r.usage.completion_tokens <= 4
    r = httpx.post(server.url("/v1/completions"), json={"prompt": [5] * (max_len - 4)}, timeout=30)
    assert r.status_code == 400 and "16" in r.json()["error"]["message"]
    r = httpx.post(server.url("/v1/completions"), json={"prompt": [5] * (max_len - 20), "ignore_eos": True}, timeout=30)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 16
    r = httpx.post(server.url("/v1/completions"), json={"prompt": [[5] * (max_len - 3), [5] * (max_len - 6)], "max_tokens": None,
                                                        "ignore_eos": True, "temperature": 0}, timeout=30)
    assert [c["text"] != "" for c in r.json()["choices"]] and r.json()["usage"]["completion_tokens"] == 3 + 6


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as e:
        complete(client, "no-such-model", prompt=PROMPT)
    assert e.value.status_code == 404 and "no-such-model" in error_of(e.value)["message"]
    with pytest.raises(openai.NotFoundError):
        chat(client, "no-such-model")


def test_errors_in_stream_requests_are_http_errors(client, model):
    # A request that is invalid before generation starts is answered with the status, not a stream.
    with pytest.raises(openai.BadRequestError):
        list(complete(client, model, prompt=PROMPT, temperature=-1, stream=True))


# ---- metrics, last: every request above has ended


def test_metrics(server):
    assert_idle(server)
    m = metrics(server)
    text = httpx.get(server.url("/metrics"), timeout=10).text
    for name in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                 "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:prefix_cache_queries_total",
                 "vllm:prefix_cache_hits_total"]:
        assert name in m, name
    assert m["vllm:prompt_tokens_total"] > 0 and m["vllm:generation_tokens_total"] > 0
    assert any(k.startswith("vllm:request_success_total{") and 'finished_reason="length"' in k and v > 0 for k, v in m.items())
    assert any(k.startswith("vllm:request_success_total{") and 'finished_reason="stop"' in k and v > 0 for k, v in m.items())
    for h in ["vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds",
              "vllm:request_queue_time_seconds", "vllm:request_prefill_time_seconds", "vllm:request_decode_time_seconds"]:
        assert f"# TYPE {h} histogram" in text, h
        assert m[h + "_count"] > 0, h
        assert any(k.startswith(h + "_bucket{") and 'le="+Inf"' in k for k in m), h
    # Prefix caching: a prompt of several full pages, twice, hits the cache the second time.
    before = m["vllm:prefix_cache_hits_total"]
    long_prompt = "def fibonacci(n):\n" * 12
    for _ in range(2):
        httpx.post(server.url("/v1/completions"), json={"prompt": long_prompt, "max_tokens": 1}, timeout=30)
    m = metrics(server)
    assert m["vllm:prefix_cache_hits_total"] >= before + 16
    assert m["vllm:prefix_cache_queries_total"] >= m["vllm:prefix_cache_hits_total"]
    # vLLM's first TTFT bucket.
    assert 'vllm:time_to_first_token_seconds_bucket{model_name="' in text and 'le="0.001"' in text
