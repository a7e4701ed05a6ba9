# Hostile input, in the spirit of llama.cpp's server tests (tools/server/tests) and of what users
# reported against vLLM, SGLang and llama.cpp: broken JSON, deep nesting, wrong types for every
# field, invalid UTF-8, huge numbers, huge bodies, wrong content types, huge n / max_tokens /
# stop lists / logit_bias, empty inputs, unknown models, methods and paths, broken HTTP, clients
# that leave mid-request or mid-stream, slow senders. Every answer is a clean 4xx (or a closed
# connection), never a 5xx (the fixture checks the access log too), the server keeps serving, and
# afterwards nothing runs and the KV cache is empty.
import json
import socket
import threading
import time

import httpx
import pytest

from conftest import HOST, assert_idle, metrics, recv_until

C, H, T, D = "/v1/completions", "/v1/chat/completions", "/tokenize", "/detokenize"
MSG = [{"role": "user", "content": "hi"}]
BASE = {C: {"prompt": "hi", "max_tokens": 2}, H: {"messages": MSG, "max_tokens": 2}, T: {"prompt": "hi"}, D: {"tokens": [5, 6]}}


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def max_len(http):
    return http.get("/v1/models").json()["data"][0]["max_model_len"]


def post_raw(http, path, body, content_type="application/json", **kw):
    headers = {"Content-Type": content_type} if content_type else {}
    return http.post(path, content=body, headers=headers, **kw)


def assert_error(r, status=400):
    assert r.status_code == status, (r.status_code, r.text[:300])
    e = r.json()["error"]
    assert isinstance(e["message"], str) and e["message"] and e["code"] == status and isinstance(e["type"], str)
    return e


def raw_exchange(data, timeout=10.0, read=True, chunks=None, pause=0.0):
    """Sends bytes on a fresh connection and reads until the server closes it (or `timeout`).
    Returns the status of the first response (None when the server answered nothing) and the bytes."""
    s = socket.create_connection((HOST, _port[0]), timeout=timeout)
    got = b""
    try:
        try:
            for part in chunks if chunks is not None else [data]:
                s.sendall(part)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass
        if not read:
            return None, b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not b:
                break
            got += b
    finally:
        s.close()
    if got.startswith(b"HTTP/1."):
        return int(got.split(b" ", 2)[1]), got
    return None, got


_port = [0]


@pytest.fixture(scope="module", autouse=True)
def _remember_port(server):
    _port[0] = server.port


# ---- JSON


BROKEN_JSON = [b"", b"{", b"}", b"{\"prompt\": }", b"{\"prompt\": \"hi\",}", b"[1, 2", b"\"just a string\"", b"null", b"123",
               b"[]", b"true", b"{'prompt': 'single quotes'}", b"{\"prompt\": \"hi\"} {}", b"{\"prompt\": \"hi\"} trailing",
               b"{\"prompt\": NaN}", b"{\"temperature\": Infinity, \"prompt\": \"x\"}", b"{\"prompt\": \"unterminated}",
               b"{\"prompt\": \"bad escape \\q\"}", b"{\"prompt\": \"ctrl \x01 char\"}",
               b"/* comment */ {\"prompt\": \"x\"}", b"{\"prompt\": 01}", b"{\"prompt\": -}", b"\x00\x00\x00"]


@pytest.mark.parametrize("path", [C, H, T, D])
def test_broken_json(http, path):
    for body in BROKEN_JSON:
        r = post_raw(http, path, body)
        assert r.status_code == 400, body
        assert_error(r)
    # A UTF-8 byte-order mark is skipped, as Python's json.loads does for bytes.
    assert post_raw(http, path, b"\xef\xbb\xbf" + json.dumps(BASE[path]).encode()).status_code == 200


@pytest.mark.parametrize("path", [C, H, T, D])
def test_deep_nesting(http, path):
    for body in [b"[" * 100000, b"{\"a\":" * 100000, b"[{\"a\":" * 50000, b"[" * 65 + b"]" * 65,
                 b"{\"prompt\": " + b"[" * 10000 + b"]" * 10000 + b"}", b"[" * (8 << 20)]:
        t = time.monotonic()
        e = assert_error(post_raw(http, path, body))
        assert time.monotonic() - t < 5
    # 64 levels are allowed (the answer is about the fields, not the nesting).
    body = json.dumps(dict(BASE[path], extra=json.loads("[" * 62 + "]" * 62))).encode()
    assert post_raw(http, path, body).status_code == 200
    # Brackets inside strings are text.
    if path in (C, T):
        body = json.dumps(dict(BASE[path], prompt="[{" * 5000)).encode()
        assert post_raw(http, path, body).status_code in (200, 400)
    e = assert_error(post_raw(http, path, b"[" * 100000))
    assert "nested" in e["message"]


def test_wide_objects_are_linear(http):
    # An object of many keys (nlohmann's ordered parse is quadratic in them).
    wide = {str(i): 1 for i in range(200000)}
    t = time.monotonic()
    assert_error(http.post(C, json={"prompt": "hi", "max_tokens": 2, "logit_bias": wide}))
    assert http.post(C, json=dict({"prompt": "hi", "max_tokens": 2}, **{f"junk{i}": i for i in range(100000)})).status_code == 200
    assert time.monotonic() - t < 10
    # Objects the chat template would walk are bounded.
    t = time.monotonic()
    assert_error(http.post(H, json={"messages": [dict(MSG[0], **{f"k{i}": i for i in range(100000)})], "max_tokens": 2}))
    assert_error(http.post(H, json={"messages": MSG, "max_tokens": 2, "chat_template_kwargs": {f"k{i}": i for i in range(100000)}}))
    assert time.monotonic() - t < 10


def test_repeated_keys_last_wins(http):
    r = post_raw(http, C, b'{"prompt": "hi", "max_tokens": 5, "max_tokens": 1, "temperature": 0}')
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 1


# ---- wrong types and values for every field

WRONG = ["x", "", 1.5, -1, 0, True, [], {}, [1, "a"], {"a": 1}, 2**64, -(2**63) - 1, 1e308, None, "\u0000"]
COMPLETION_FIELDS = ["model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop", "stop_token_ids",
                     "seed", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "logprobs", "echo",
                     "prompt_logprobs", "ignore_eos", "min_tokens", "skip_special_tokens", "include_stop_str_in_output", "stream",
                     "stream_options", "user", "cache_salt", "suffix", "best_of"]
CHAT_FIELDS = ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "min_p", "n", "stop",
               "stop_token_ids", "seed", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias",
               "logprobs", "top_logprobs", "ignore_eos", "min_tokens", "skip_special_tokens", "include_stop_str_in_output",
               "stream", "stream_options", "user", "tools", "tool_choice", "chat_template_kwargs", "add_generation_prompt",
               "continue_final_message", "cache_salt", "response_format"]
NUMBER_FIELDS = ["temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty"]
INT_FIELDS = ["max_tokens", "top_k", "n", "seed", "min_tokens"]
BOOL_FIELDS = ["ignore_eos", "skip_special_tokens", "include_stop_str_in_output", "stream"]


@pytest.mark.parametrize("path,fields", [(C, COMPLETION_FIELDS), (H, CHAT_FIELDS)])
def test_wrong_types_for_every_field(http, path, fields):
    for field in fields:
        for value in WRONG:
            body = dict(BASE[path])
            body[field] = value
            r = http.post(path, json=body)
            assert r.status_code in (200, 400, 404), (field, value, r.status_code, r.text[:200])
            if r.status_code != 200:
                assert_error(r, r.status_code)
            elif r.headers["content-type"].startswith("text/event-stream"):
                assert r.text.rstrip().endswith("data: [DONE]")
            else:
                assert r.json()["choices"]
            # A string where a number or a boolean belongs is always refused.
            if isinstance(value, str) and field in NUMBER_FIELDS + INT_FIELDS + BOOL_FIELDS:
                assert r.status_code == 400, (field, value)
            if isinstance(value, (dict, list)) and field in NUMBER_FIELDS + INT_FIELDS + BOOL_FIELDS:
                assert r.status_code == 400, (field, value)


def test_wrong_types_tokenize_detokenize(http):
    for value in WRONG:
        for path, field in [(T, "prompt"), (T, "messages"), (T, "add_special_tokens"), (T, "add_generation_prompt"),
                            (D, "tokens"), (T, "model")]:
            body = dict(BASE[path])
            body[field] = value
            r = http.post(path, json=body)
            assert r.status_code in ((200, 400, 404) if field == "model" else (200, 400)), (path, field, value, r.text[:200])
            if r.status_code != 200:
                assert_error(r, r.status_code)


def test_huge_numbers(http):
    for raw in [b'"temperature": 1e999', b'"temperature": 1e308', b'"temperature": -1e308', b'"max_tokens": 99999999999999999999999',
                b'"max_tokens": 9223372036854775807', b'"max_tokens": -9223372036854775808', b'"max_tokens": 1e20',
                b'"n": 1099511627776', b'"top_k": 4294967296', b'"logprobs": 2147483648', b'"seed": 18446744073709551616',
                b'"seed": 1e30', b'"min_tokens": 1e3', b'"top_p": 1e-400', b'"logit_bias": {"5": 1e300}',
                b'"logit_bias": {"99999999999999999999": 1}', b'"logit_bias": {"-1": 1}', b'"logit_bias": {"x": 1}',
                b'"stop_token_ids": [4294967296]', b'"prompt_logprobs": 1e9']:
        body = b'{"prompt": "hi", "max_tokens": 2, ' + raw + b"}"
        r = post_raw(http, C, body)  # (1e-400 underflows to 0, outside top_p's (0, 1])
        assert r.status_code == 400, (raw, r.status_code, r.text[:200])
        assert_error(r)
    # The largest seed is a seed.
    assert http.post(C, json={"prompt": "hi", "max_tokens": 2, "seed": 2**64 - 1}).status_code == 200


# ---- UTF-8


INVALID_UTF8 = [b"\xff", b"\xfe\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf4\x90\x80\x80", b"\x80",
                b"ok\xf0\x9f\x98"]


@pytest.mark.parametrize("path", [C, H, T])
def test_invalid_utf8_in_body(http, path):
    for bad in INVALID_UTF8:
        if path == H:
            body = b'{"messages": [{"role": "user", "content": "' + bad + b'"}], "max_tokens": 2}'
        else:
            body = b'{"prompt": "a' + bad + b'b", "max_tokens": 2}'
        assert_error(post_raw(http, path, body))
        # In a key, in a stop string.
        assert_error(post_raw(http, path, b'{"prompt": "hi", "' + bad + b'": 1, "messages": []}'))
    for esc in [b"\\ud800", b"\\udfff", b"\\ud800\\u0041", b"\\uZZZZ", b"\\u12"]:
        assert_error(post_raw(http, path, b'{"prompt": "a' + esc + b'", "messages": [{"role": "user", "content": "' + esc + b'"}]}'))
    # Valid escapes and characters are fine.
    body = '{"prompt": "caf\\u00e9 \\ud83d\\ude80 日本", "messages": [{"role": "user", "content": "\\ud83d\\ude80 é"}], "max_tokens": 2}'
    assert post_raw(http, path, body.encode()).status_code == 200


def test_invalid_utf8_in_stop_and_detokenize(http):
    assert_error(post_raw(http, C, b'{"prompt": "hi", "max_tokens": 2, "stop": ["\xff"]}'))
    assert_error(post_raw(http, C, b'{"prompt": "hi", "max_tokens": 2, "stop": "\\udc00"}'))


def test_partial_utf8_tokens_make_valid_json(http, server):
    # Tokens of one multi-byte character, alone: their text is not UTF-8 by itself.
    ids = http.post(T, json={"prompt": "日本語の文字 🚀🚀", "add_special_tokens": False}).json()["tokens"]
    for tok in ids[:8]:
        for stream in (False, True):
            r = http.post(C, json={"prompt": [tok], "max_tokens": 3, "echo": True, "logprobs": 2, "stream": stream})
            assert r.status_code == 200
            r.content.decode("utf-8")  # strict: the server never sends invalid UTF-8
            if stream:
                events = [l[6:] for l in r.text.split("\n") if l.startswith("data: ")]
                assert events[-1] == "[DONE]"
                for e in events[:-1]:
                    json.loads(e)
            else:
                json.loads(r.text)
        d = http.post(D, json={"tokens": [tok]})
        assert d.status_code == 200
        d.content.decode("utf-8")
        r = http.post(H, json={"messages": MSG, "max_tokens": 2, "logprobs": True, "top_logprobs": 3, "stop": ["日"]})
        assert r.status_code == 200


# ---- sizes


def test_100mb_body_is_413(http):
    # Refused at the header, before the body is read.
    status, got = raw_exchange(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 104857600\r\n\r\n" + b"{" * 1000, timeout=10)
    assert status == 413, got[:200]
    # Actually sent: an answer of 413 or a closed connection, in bounded time.
    t = time.monotonic()
    try:
        r = http.post(C, content=b" " * (100 << 20), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    except httpx.TransportError:
        pass
    assert time.monotonic() - t < 30
    # Chunked, with no length: cut when it passes the limit.
    def chunks():
        for _ in range(100):
            yield b"[" + b" " * ((1 << 20) - 1)
    try:
        r = http.post(C, content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
    except httpx.TransportError:
        pass
    assert http.get("/health").status_code == 200


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                   "application/xml", "application/jsonx", "text/plain; note=application/json", "json"])
def test_non_json_content_type_is_415(http, ctype):
    for path in (C, H, T, D):
        r = post_raw(http, path, json.dumps(BASE[path]).encode(), content_type=ctype)
        assert_error(r, 415)


def test_json_content_type_variants(http):
    for ctype in ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/json ; charset=UTF-8"]:
        assert post_raw(http, C, json.dumps(BASE[C]).encode(), content_type=ctype).status_code == 200, ctype


def test_huge_n_max_tokens_stop_logit_bias(http, max_len):
    for body in [dict(BASE[C], n=10**6), dict(BASE[C], n=2**31 - 1), dict(BASE[C], max_tokens=10**9),
                 dict(BASE[C], max_tokens=2**31 - 1), dict(BASE[H], max_completion_tokens=10**9),
                 dict(BASE[C], logit_bias={str(i): 1 for i in range(300000)}),
                 dict(BASE[C], prompt="hello " * 200000), dict(BASE[C], prompt=[[5] * (max_len + 1)]),
                 dict(BASE[C], logprobs=10**6), dict(BASE[H], logprobs=True, top_logprobs=10**6),
                 dict(BASE[C], stop_token_ids=[10**6]), dict(BASE[C], stop=[""])]:
        t = time.monotonic()
        r = http.post(C if "prompt" in body else H, json=body)
        assert r.status_code == 400, {k: str(v)[:40] for k, v in body.items()}
        assert_error(r)
        assert time.monotonic() - t < 10, list(body)
    # Many or long stop strings are served, in bounded time.
    t = time.monotonic()
    r = http.post(C, json=dict(BASE[C], max_tokens=32, ignore_eos=True, stop=[f"zq{i}" for i in range(20000)]))
    assert r.status_code == 200
    r = http.post(C, json=dict(BASE[C], max_tokens=32, ignore_eos=True, stop=["q" * 100000]))
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
    r = http.post(H, json=dict(BASE[H], max_tokens=32, ignore_eos=True, stop=[f"zq{i}" for i in range(20000)], stream=True))
    assert r.status_code == 200 and r.text.rstrip().endswith("data: [DONE]")
    assert time.monotonic() - t < 30
    # Many prompts in one request.
    r = http.post(C, json={"prompt": ["a"] * 64, "max_tokens": 1})
    assert r.status_code == 200 and len(r.json()["choices"]) == 64


def test_empty_inputs(http):
    for body in [{"prompt": ""}, {"prompt": []}, {"prompt": [[]]}, {"prompt": [""]}, {"prompt": ["a", ""]}, {"prompt": [[1], []]},
                 {"prompt": None}, {}, {"prompt": [None]}, {"prompt": [[None]]}]:
        assert_error(http.post(C, json=body))
    for body in [{"messages": []}, {"messages": None}, {}, {"messages": [{}]}, {"messages": [None]}, {"messages": [[]]},
                 {"messages": {"role": "user"}}, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}]:
        assert_error(http.post(H, json=body))
    assert_error(http.post(T, json={}))
    assert_error(http.post(D, json={}))


def test_message_parts_of_every_type(http, server):
    # A content part's "type" of another JSON type once threw inside the server and killed it.
    for part in [{"type": 5, "text": "x"}, {"type": None, "text": "x"}, {"type": ["text"], "text": "x"}, {"type": {"a": 1}},
                 {"type": "text", "text": 5}, {"type": "text"}, {"text": "x"}, "text", 5, None, [], {"type": True, "text": True}]:
        msgs = [{"role": "user", "content": [part]}]
        for path, body in [(H, {"messages": msgs, "max_tokens": 2}), (T, {"messages": msgs})]:
            assert_error(http.post(path, json=body))
    for msg in [{"role": 5, "content": "x"}, {"role": None, "content": "x"}, {"role": ["user"], "content": "x"},
                {"role": "user", "content": {"a": 1}}, {"role": "user", "content": True}, {"role": "user", "content": [[]]}]:
        for path, body in [(H, {"messages": [msg], "max_tokens": 2}), (T, {"messages": [msg]})]:
            assert_error(http.post(path, json=body))
    for tools in ["x", 5, {}, [5], [{"type": 5}], [{"type": "function"}], [{"function": 5}], [{"function": {"name": 5}}]]:
        assert_error(http.post(H, json={"messages": MSG, "max_tokens": 2, "tools": tools}))
    assert server.alive()


def test_unknown_model_is_404(http):
    for path in (C, H):
        e = assert_error(http.post(path, json=dict(BASE[path], model="gpt-9")), 404)
        assert "gpt-9" in e["message"]


# ---- methods and paths


def test_wrong_method_is_405(http):
    for method, path in [("GET", C), ("PUT", H), ("DELETE", "/health"), ("POST", "/v1/models"), ("PATCH", T), ("GET", D),
                         ("POST", "/metrics"), ("DELETE", "/v1/chat/completions"), ("POST", "/version"), ("OPTIONS", C)]:
        r = http.request(method, path)
        assert r.status_code == 405, (method, path, r.status_code)
        assert r.headers.get("allow"), (method, path)
        if method != "HEAD":
            assert_error(r, 405)


def test_unknown_path_is_404(http):
    for path in ["/", "/v1", "/v1/", "/v2/completions", "/v1/completions/", "/v1/completions/x", "/v1/embeddings",
                 "/health/", "/%2e%2e/%2e%2e/etc/passwd", "/../../etc/passwd", "/" + "a" * 4000, "/v1/models/x/y",
                 "/v1/completions%00", "/\u00e9"]:
        for method in ("GET", "POST"):
            r = http.request(method, path)
            assert r.status_code == 404, (method, path, r.status_code)
            assert_error(r, 404)
    assert http.head("/health").status_code == 200
    # The query string is not part of the path.
    assert http.get("/health?x=1").status_code == 200


BROKEN_HTTP = [
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHeader\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhello\r\n0\r\n\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n",
    b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    b"GET /health HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,  # a TLS ClientHello
    b"\x00" * 1000,
    b"GET /health HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n",
    b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /health HTTP/1.1\nHost: x\n\n",
]


def test_broken_http(server):
    for data in BROKEN_HTTP:
        status, got = raw_exchange(data, timeout=5)
        assert status is None or 400 <= status < 500 or status == 200, (data[:60], got[:200])
    assert httpx.get(server.url("/health"), timeout=5).status_code == 200


def test_unsupported_transfer_encoding_is_not_smuggled(server):
    # A body whose Transfer-Encoding does not end in chunked has no known length: 400 and close,
    # never its bytes read as a second request.
    inner = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    for te in [b"gzip", b"chunked, gzip", b"gzip, chunked", b"identity", b"chunked\r\nTransfer-Encoding: chunked"]:
        body = b"5\r\nhello\r\n0\r\n\r\n" if te.endswith(b"chunked") else b""
        status, got = raw_exchange(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Transfer-Encoding: " + te + b"\r\n\r\n" + body + inner, timeout=5)
        assert status == 400, (te, got[:300])
        assert got.count(b"HTTP/1.1") == 1 and b"Connection: close" in got, (te, got)
    # Plain chunked works.
    body = b'{"prompt": "hi"}'
    status, got = raw_exchange(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
                               b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), timeout=5)
    assert status == 200 and b'"count":2' in got


def test_pipelined_requests_answered_in_order(server):
    req = (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s")
    a, b = b'{"prompt": "first"}', b'{"prompt": "second one"}'
    status, got = raw_exchange(req % (len(a), a) + req % (len(b), b) + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                               timeout=10)
    assert status == 200 and got.count(b"HTTP/1.1 200") == 3
    assert got.index(b'"count":2') < got.index(b'"count":3'), got  # "first" + BOS, then "second one" + BOS


# ---- clients that leave, clients that dawdle


def abort_count(server):
    m = metrics(server)
    return sum(v for k, v in m.items() if k.startswith("vllm:request_success_total{") and 'finished_reason="abort"' in k)


def long_request(path, stream, max_len):
    body = dict(BASE[path], max_tokens=max_len - 64, ignore_eos=True, temperature=0.8, stream=stream)
    data = json.dumps(body).encode()
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (path.encode(), len(data), data))


def test_disconnect_mid_stream_aborts(server, max_len):
    for path in (C, H):
        for rst in (False, True):
            before = abort_count(server)
            s = socket.create_connection((HOST, server.port), timeout=10)
            s.sendall(long_request(path, True, max_len))
            got = recv_until(s, lambda g: g.count(b"data: ") >= 3)  # the stream is under way
            assert got.startswith(b"HTTP/1.1 200")
            if rst:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            deadline = time.monotonic() + 5
            while abort_count(server) < before + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert abort_count(server) == before + 1, (path, rst)
            assert_idle(server, 5)


def test_disconnect_while_waiting_for_a_whole_answer_aborts(server, max_len):
    for path in (C, H):
        before = abort_count(server)
        s = socket.create_connection((HOST, server.port), timeout=10)
        s.sendall(long_request(path, False, max_len))
        # Until the engine has it (it runs), then leave.
        deadline = time.monotonic() + 5
        while metrics(server)["vllm:num_requests_running"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.close()
        deadline = time.monotonic() + 5
        while abort_count(server) < before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert abort_count(server) == before + 1, path
        assert_idle(server, 5)


def test_many_streams_dropped_at_once(server, max_len):
    before = abort_count(server)
    socks = []
    for i in range(24):
        s = socket.create_connection((HOST, server.port), timeout=10)
        s.sendall(long_request(H if i % 2 else C, True, max_len))
        socks.append(s)
    for s in socks:
        recv_until(s, lambda g: b"data: " in g)
    for s in socks:
        s.close()
    deadline = time.monotonic() + 10
    while abort_count(server) < before + 24 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert abort_count(server) == before + 24
    assert_idle(server, 5)


def test_disconnect_of_a_batched_request_aborts_every_sequence(server, max_len):
    # Two prompts with n = 2 each: four sequences, all aborted when the client leaves.
    for stream in (False, True):
        before = abort_count(server)
        body = json.dumps({"prompt": ["def f(x):", "class A:"], "n": 2, "max_tokens": max_len - 64, "ignore_eos": True,
                           "temperature": 0.8, "stream": stream}).encode()
        s = socket.create_connection((HOST, server.port), timeout=10)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        deadline = time.monotonic() + 5
        while metrics(server)["vllm:num_requests_running"] < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        s.close()
        deadline = time.monotonic() + 5
        while abort_count(server) < before + 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert abort_count(server) == before + 4, stream
        assert_idle(server, 5)


def test_client_that_stops_reading(server, max_len):
    # A stream nobody reads: the server buffers a bounded amount, then cuts the connection and
    # aborts the request (or the request ends first); either way others are served meanwhile and
    # nothing is left.
    body = json.dumps({"prompt": "def f(x):", "max_tokens": max_len - 64, "ignore_eos": True, "logprobs": 20, "echo": True,
                       "stream": True}).encode()
    socks = []
    for _ in range(4):
        s = socket.create_connection((HOST, server.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                  % (len(body), body))
        socks.append(s)
    try:
        for _ in range(5):
            t0 = time.monotonic()
            r = httpx.post(server.url(C), json={"prompt": "hi", "max_tokens": 2}, timeout=10)
            assert r.status_code == 200 and time.monotonic() - t0 < 5
        assert_idle(server, 30)
    finally:
        for s in socks:
            s.close()


def test_disconnect_mid_request(server):
    for data in [b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"pro",
                 b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le",
                 b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{\"messages\":",
                 b"G"]:
        for _ in range(5):
            raw_exchange(data, read=False)
    assert httpx.get(server.url("/health"), timeout=5).status_code == 200
    assert_idle(server, 5)


def test_slow_sender_is_served(server):
    body = json.dumps({"prompt": "def f(x):", "max_tokens": 3}).encode()
    req = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    # One byte every 4 ms, while other clients are served.
    result = {}
    t = threading.Thread(target=lambda: result.update(r=raw_exchange(None, timeout=20, chunks=[req[i:i + 1] for i in range(len(req))],
                                                                     pause=0.004)))
    t.start()
    for _ in range(10):
        t0 = time.monotonic()
        assert httpx.get(server.url("/health"), timeout=5).status_code == 200
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.05)
    t.join(30)
    assert not t.is_alive()
    status, got = result["r"]
    assert status == 200 and b'"text_completion"' in got


def test_slowloris_does_not_starve_others(server):
    socks = []
    try:
        for i in range(64):
            s = socket.create_connection((HOST, server.port), timeout=5)
            s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n" if i % 2 else b"GET /hea")
            socks.append(s)
        for _ in range(5):
            t0 = time.monotonic()
            r = httpx.post(server.url(C), json={"prompt": "hi", "max_tokens": 2}, timeout=5)
            assert r.status_code == 200 and time.monotonic() - t0 < 2.0
    finally:
        for s in socks:
            s.close()


# ---- last: the server is whole


def test_server_still_serves_and_is_idle(server, http):
    assert server.alive()
    assert http.get("/health").status_code == 200
    r = http.post(C, json={"prompt": "def f(x):", "max_tokens": 4, "temperature": 0})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] >= 1
    assert_idle(server)
