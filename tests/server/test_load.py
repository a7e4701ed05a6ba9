# Load: 256 concurrent streaming chat requests on one server (--max-num-seqs 64), a third of them
# cancelled mid-stream, within 60 s. No 5xx; every uncancelled stream is well formed (the raw SSE
# read strictly with httpx, or through the official AsyncOpenAI client) and ends in [DONE]; every
# cancelled one is aborted in the engine; /health stays quick meanwhile; afterwards nothing runs
# and the KV cache is empty.
import asyncio
import json
import subprocess
import time

import httpx
import openai
import pytest

from conftest import assert_idle, metrics

SERVER_ARGS = ["--max-num-seqs", "64"]
N = 256
BOUND_S = 60.0
MAX_TOKENS = 12
TOPICS = ["sorting", "graphs", "parsing", "caches", "threads", "sockets", "matrices", "strings"]


def messages(i):
    return [{"role": "user", "content": f"Request {i}: write a short Python function about {TOPICS[i % len(TOPICS)]}."}]


def aborts(server):
    return sum(v for k, v in metrics(server).items() if k.startswith("vllm:request_success_total{") and 'finished_reason="abort"' in k)


async def raw_stream(http, model, i, cancel):
    """Reads the SSE stream strictly; returns ("done", text) or ("cancelled", None)."""
    body = {"model": model, "messages": messages(i), "stream": True, "temperature": 0.7, "seed": i,
            "max_tokens": 400 if cancel else MAX_TOKENS, "ignore_eos": cancel, "stream_options": {"include_usage": True}}
    async with http.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, (i, r.status_code)
        assert r.headers["content-type"].startswith("text/event-stream")
        events, text, finish, ids, usage, done = 0, "", None, set(), None, False
        buf = ""
        async for piece in r.aiter_text():
            buf += piece
            while "\n\n" in buf:
                event, buf = buf.split("\n\n", 1)
                assert event.startswith("data: "), (i, event[:100])
                data = event[6:]
                assert not done, (i, "data after [DONE]")
                if data == "[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                assert "error" not in chunk, (i, chunk)
                assert chunk["object"] == "chat.completion.chunk"
                ids.add(chunk["id"])
                if chunk.get("usage"):
                    assert chunk["choices"] == [] and usage is None
                    usage = chunk["usage"]
                    continue
                assert usage is None, "a chunk after the usage chunk"
                (c,) = chunk["choices"]
                assert c["index"] == 0 and finish is None, (i, "a chunk after the finish reason")
                if events == 0:
                    assert c["delta"].get("role") == "assistant", (i, chunk)
                events += 1
                text += c["delta"].get("content") or ""
                finish = c["finish_reason"]
                if cancel and events >= 3:
                    return "cancelled", None  # leaves the block: the connection is closed mid-stream
        assert done, (i, "no [DONE]")
        assert buf == "", (i, buf[:100])
        assert finish in ("stop", "length"), (i, finish)
        assert len(ids) == 1
        assert usage and 1 <= usage["completion_tokens"] <= MAX_TOKENS and usage["prompt_tokens"] > 0
        return "done", text


async def client_stream(client, model, i, cancel):
    """The same through the official client (which stops at [DONE])."""
    stream = await client.chat.completions.create(model=model, messages=messages(i), stream=True, temperature=0.7, seed=i,
                                                  max_tokens=400 if cancel else MAX_TOKENS, stream_options={"include_usage": True},
                                                  extra_body={"ignore_eos": cancel})
    text, finish, usage, n = "", None, None, 0
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
            continue
        n += 1
        text += chunk.choices[0].delta.content or ""
        finish = chunk.choices[0].finish_reason or finish
        if cancel and n >= 3:
            await stream.close()
            return "cancelled", None
    assert finish in ("stop", "length"), (i, finish)
    assert usage is not None and usage.completion_tokens <= MAX_TOKENS
    return "done", text


def start_health_probe(server, stop_file):
    """curl in its own process (the test's event loop is busy with 256 streams, so a probe inside
    it would time the client): /health every 0.2 s, its total time per line, until stop_file."""
    script = (f"for i in $(seq 600); do [ -e {stop_file} ] && break; curl -s -o /dev/null -w '%{{http_code}} %{{time_total}}\\n' "
              f"--max-time 10 {server.url('/health')}; sleep 0.2; done")
    return subprocess.Popen(["bash", "-c", script], stdout=subprocess.PIPE, text=True)


def stop_health_probe(probe, stop_file):
    stop_file.touch()
    out, _ = probe.communicate(timeout=20)
    samples = [line.split() for line in out.splitlines() if line.strip()]
    assert samples and all(code == "200" for code, _ in samples), samples[:10]
    return [float(t) for _, t in samples]


async def run_load(server, model):
    limits = httpx.Limits(max_connections=N + 8, max_keepalive_connections=N + 8)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=BOUND_S, limits=limits) as http:
        client = openai.AsyncOpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=BOUND_S,
                                    http_client=httpx.AsyncClient(timeout=BOUND_S, limits=limits))
        tasks = []
        for i in range(N):
            cancel = i % 3 == 0
            if i % 2 == 0:
                tasks.append(raw_stream(http, model, i, cancel))
            else:
                tasks.append(client_stream(client, model, i, cancel))
        results = await asyncio.wait_for(asyncio.gather(*tasks), BOUND_S)
        await client.close()
        return results


def test_256_streams_a_third_cancelled(server, tmp_path):
    model = httpx.get(server.url("/v1/models"), timeout=10).json()["data"][0]["id"]
    before = aborts(server)
    t = time.monotonic()
    probe = start_health_probe(server, tmp_path / "stop")
    try:
        results = asyncio.run(run_load(server, model))
    finally:
        latencies = stop_health_probe(probe, tmp_path / "stop")
    elapsed = time.monotonic() - t
    assert elapsed < BOUND_S
    cancelled = sum(1 for kind, _ in results if kind == "cancelled")
    done = [text for kind, text in results if kind == "done"]
    assert cancelled == len(range(0, N, 3)) and len(done) == N - cancelled
    assert all(isinstance(t, str) for t in done)
    assert latencies and max(latencies) < 1.0, f"/health took {max(latencies):.2f} s under load"
    # Every cancelled stream was aborted in the engine, and nothing is left behind.
    deadline = time.monotonic() + 10
    while aborts(server) < before + cancelled and time.monotonic() < deadline:
        time.sleep(0.1)
    assert aborts(server) == before + cancelled
    assert_idle(server, 10)
    print(f"{N} streams in {elapsed:.1f} s; /health max {max(latencies) * 1e3:.0f} ms")


def test_seeded_streams_are_reproducible_after_load(server):
    # The same seed gives the same text whatever ran beside it.
    model = httpx.get(server.url("/v1/models"), timeout=10).json()["data"][0]["id"]
    c = openai.OpenAI(base_url=server.url("/v1"), api_key="unused", max_retries=0, timeout=30)
    kw = dict(model=model, messages=messages(1), temperature=0.7, seed=1, max_tokens=MAX_TOKENS)
    a = c.chat.completions.create(**kw).choices[0].message.content
    b = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(stream=True, **kw) if ch.choices)
    assert a == b
