# Server configurations, each on its own server: graceful shutdown (SIGTERM while requests run ends
# each of them with finish_reason "abort", a well-formed stream ending in [DONE], exit 0, the port
# closed), a full queue (503 with Retry-After), CORS, several served model names.
import json
import signal
import socket
import threading
import time

import httpx
import openai
import pytest

from conftest import HOST, MODEL as MODEL_PATH, Server, metrics, port_open, recv_until


def long_body(stream):
    return {"prompt": "def fibonacci(n):", "max_tokens": 400, "ignore_eos": True, "temperature": 0.8, "stream": stream}


def test_sigterm_ends_in_flight_requests_and_exits_0():
    s = Server().start()
    try:
        results = {}

        def whole():
            r = httpx.post(s.url("/v1/completions"), json=long_body(False), timeout=60)
            results["whole"] = (r.status_code, r.json())

        t = threading.Thread(target=whole)
        t.start()
        # A stream under way, read raw.
        sock = socket.create_connection((HOST, s.port), timeout=30)
        body = json.dumps(long_body(True)).encode()
        sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        got = recv_until(sock, lambda g: g.count(b"data: ") >= 3)
        deadline = time.monotonic() + 10  # both run in the engine
        while metrics(s)["vllm:num_requests_running"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert metrics(s)["vllm:num_requests_running"] == 2
        s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            b = sock.recv(65536)
            if not b:
                break
            got += b
        sock.close()
        rc = s.proc.wait(timeout=30)
        t.join(30)
        assert rc == 0, s.log()
        assert not port_open(s.port)
        # The stream: chunks, the last with finish_reason "abort", then [DONE], then the end of the body.
        head, _, rest = got.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert rest.endswith(b"0\r\n\r\n"), rest[-200:]  # the last chunk of a chunked body
        events = [line[6:] for line in rest.decode("utf-8").split("\n") if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        finishes = [c["finish_reason"] for e in events[:-1] for c in json.loads(e)["choices"] if c["finish_reason"]]
        assert finishes == ["abort"], finishes
        # The whole answer: 200 with what was made, cut.
        status, body = results["whole"]
        assert status == 200 and body["choices"][0]["finish_reason"] == "abort", body
        assert 0 < body["usage"]["completion_tokens"] < 400
    finally:
        s.kill()


def test_sigterm_when_idle_exits_0_at_once():
    s = Server().start()
    try:
        t = time.monotonic()
        s.stop()  # SIGTERM, exit 0, port closed
        assert time.monotonic() - t < 5
    finally:
        s.kill()


def test_full_queue_is_503_with_retry_after():
    s = Server(["--max-num-seqs", "1", "--max-waiting-requests", "0"]).start()
    try:
        t = threading.Thread(target=lambda: httpx.post(s.url("/v1/completions"), json=long_body(False), timeout=60))
        t.start()
        deadline = time.monotonic() + 10
        while metrics(s)["vllm:num_requests_running"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = httpx.post(s.url("/v1/chat/completions"), json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                       timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["code"] == 503
        assert httpx.get(s.url("/health"), timeout=5).status_code == 200  # busy is not unhealthy
        # openai's client retries a 503 after Retry-After; with no retries it raises.
        c = openai.OpenAI(base_url=s.url("/v1"), api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as e:
            c.completions.create(model="x", prompt="hi", max_tokens=2)
        assert e.value.status_code == 503
        s.stop()  # cuts the running one
        t.join(30)
    finally:
        s.kill()


def test_cors_and_served_model_names():
    s = Server(["--allowed-origins", '["https://app.example"]', "--served-model-name", "alpha", "beta"]).start()
    try:
        h = {"Origin": "https://app.example"}
        r = httpx.options(s.url("/v1/chat/completions"), headers=dict(h, **{"Access-Control-Request-Method": "POST"}), timeout=5)
        assert r.status_code in (200, 204) and r.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.get(s.url("/v1/models"), headers=h, timeout=5)
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert [m["id"] for m in r.json()["data"]] == ["alpha"]
        assert "access-control-allow-origin" not in httpx.get(s.url("/v1/models"), headers={"Origin": "https://evil.example"},
                                                              timeout=5).headers
        c = openai.OpenAI(base_url=s.url("/v1"), api_key="x", max_retries=0)
        for name in ("alpha", "beta"):  # each served name is accepted and answered with
            assert c.completions.create(model=name, prompt="hi", max_tokens=2).model == name
            assert c.chat.completions.create(model=name, messages=[{"role": "user", "content": "hi"}], max_tokens=2).model == name
        with pytest.raises(openai.NotFoundError):
            c.completions.create(model=MODEL_PATH, prompt="hi", max_tokens=2)
        s.stop()
    finally:
        s.kill()
