# Batching changes nothing: greedy outputs (temperature 0) of 16 different prompts sent at once
# equal the same prompts sent one at a time, for completions and chat, whole and streamed; and
# seeded sampling gives the same text alone and in a crowd.
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from conftest import assert_idle

PROMPTS = [
    "def fibonacci(n):", "import numpy as np\n", "class Stack:\n    def __init__(self):", "# Sort a list of numbers\n",
    "def is_prime(n):", "from collections import defaultdict\n", "def read_file(path):", "SELECT name FROM",
    "async def fetch(url):", "def merge(a, b):", "try:\n    import torch\n", "def parse_args():",
    "class Node:", "def quicksort(xs):", "for i in range(10):", "if __name__ == '__main__':",
]
MAX_TOKENS = 24


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def model(client):
    return client.models.list().data[0].id


def complete(client, model, prompt, stream=False, **kw):
    args = dict(dict(model=model, prompt=prompt, max_tokens=MAX_TOKENS, temperature=0), **kw)
    if stream:
        return "".join(c.choices[0].text for c in client.completions.create(stream=True, **args) if c.choices)
    return client.completions.create(**args).choices[0].text


def chat(client, model, prompt, stream=False, **kw):
    args = dict(dict(model=model, messages=[{"role": "user", "content": prompt}], max_tokens=MAX_TOKENS, temperature=0), **kw)
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(stream=True, **args) if c.choices)
    return client.chat.completions.create(**args).choices[0].message.content


def concurrently(fn, prompts, **kw):
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        return list(pool.map(lambda p: fn(p, **kw), prompts))


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_greedy_concurrent_equals_sequential(client, model, endpoint):
    fn = complete if endpoint == "completions" else chat
    one = lambda p, **kw: fn(client, model, p, **kw)
    sequential = [one(p) for p in PROMPTS]
    assert len(set(sequential)) > 8, "the prompts should give different texts"
    assert concurrently(one, PROMPTS) == sequential
    assert concurrently(one, PROMPTS, stream=True) == sequential
    # Mixed with sampled requests that take the other rows of the batch.
    noisy = PROMPTS + PROMPTS
    got = concurrently(lambda i: one(noisy[i]) if i < 16 else one(noisy[i], temperature=1.0, seed=i),
                       list(range(len(noisy))))
    assert got[:16] == sequential


def test_seeded_concurrent_equals_sequential(client, model):
    one = lambda i: complete(client, model, PROMPTS[i], temperature=0.9, seed=1000 + i)
    sequential = [one(i) for i in range(16)]
    assert concurrently(one, list(range(16))) == sequential


def test_batched_prompt_list_equals_single_prompts(client, model):
    sequential = [complete(client, model, p) for p in PROMPTS]
    r = client.completions.create(model=model, prompt=PROMPTS, max_tokens=MAX_TOKENS, temperature=0)
    assert [c.text for c in sorted(r.choices, key=lambda c: c.index)] == sequential


def test_idle_at_the_end(server):
    assert_idle(server)
