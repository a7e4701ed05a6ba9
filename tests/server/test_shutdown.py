# Graceful shutdown: SIGTERM while requests run ends each of them (finish_reason "abort" for what
# was cut, a well-formed stream ending in [DONE]), the server exits 0 and its port closes.
import json
import signal
import socket
import threading
import time

import httpx

from conftest import HOST, Server, metrics, port_open


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
        got = b""
        while got.count(b"data: ") < 3:
            b = sock.recv(65536)
            assert b
            got += b
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
