# A server started with --api-key: /v1/* needs "Authorization: Bearer KEY" (401 in OpenAI's error
# shape otherwise, which the openai client raises as AuthenticationError); /health, /ping,
# /version, /metrics, /tokenize stay open, as in vLLM.
import httpx
import openai
import pytest

KEY = "sk-test-0123456789"
SERVER_ARGS = ["--api-key", KEY]


def client(server, key):
    return openai.OpenAI(base_url=server.url("/v1"), api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("key", ["wrong", KEY + "x", KEY[:-1], "Bearer " + KEY])
def test_wrong_key_is_401(server, key):
    c = client(server, key)
    with pytest.raises(openai.AuthenticationError) as e:
        c.models.list()
    assert e.value.status_code == 401
    assert e.value.response.json()["error"]["code"] == 401
    with pytest.raises(openai.AuthenticationError):
        c.completions.create(model="x", prompt="hi", max_tokens=1)
    with pytest.raises(openai.AuthenticationError):
        c.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], max_tokens=1)


@pytest.mark.parametrize("headers", [{}, {"Authorization": ""}, {"Authorization": "Basic " + KEY}, {"Authorization": KEY},
                                     {"Authorization": "Bearer"}, {"X-Api-Key": KEY}])
def test_missing_key_is_401(server, headers):
    for method, path in [("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions")]:
        r = httpx.request(method, server.url(path), headers=headers, json={"prompt": "hi", "max_tokens": 1}, timeout=10)
        assert r.status_code == 401, (path, headers, r.text)
        assert r.json()["error"]["type"]


def test_right_key_works(server):
    c = client(server, KEY)
    model = c.models.list().data[0].id
    r = c.completions.create(model=model, prompt="def add(a, b):", max_tokens=4, temperature=0)
    assert r.usage.completion_tokens >= 1
    r = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0)
    assert r.choices[0].message.role == "assistant"
    chunks = list(c.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                            temperature=0, stream=True))
    assert chunks and chunks[0].choices[0].delta.role == "assistant"


def test_open_endpoints_need_no_key(server):
    for path in ["/health", "/ping", "/version", "/metrics", "/openapi.json"]:
        assert httpx.get(server.url(path), timeout=10).status_code == 200, path
    assert httpx.post(server.url("/tokenize"), json={"prompt": "hi"}, timeout=10).status_code == 200
    assert httpx.post(server.url("/detokenize"), json={"tokens": [5, 6]}, timeout=10).status_code == 200


def test_unknown_v1_path_without_key(server):
    # Not found or unauthorized, never served.
    r = httpx.get(server.url("/v1/secret"), timeout=10)
    assert r.status_code in (401, 404)
