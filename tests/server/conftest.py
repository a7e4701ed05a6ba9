# The server tests' harness: every test file starts its own `tokamak serve --model models/demo
# --device cpu` on 127.0.0.1 with an ephemeral port (module-scoped `server` fixture; a module's
# SERVER_ARGS adds flags), waits for /health, and at the end sends SIGTERM and checks exit code 0,
# a closed port, and that the access log shows no 5xx answer. Every wait is bounded.
import ctypes
import os
import re
import signal
import socket
import subprocess
import threading
import time

import httpx
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("TOKAMAK_BIN") or os.path.join(REPO, "build", "tokamak")
MODEL = os.environ.get("TOKAMAK_DEMO_MODEL") or os.path.join(REPO, "models", "demo")
HOST = "127.0.0.1"

START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

# "[tokamak info] 127.0.0.1:PORT POST /v1/completions 200 prompt_tokens=..."
ACCESS_LINE = re.compile(r"\] \S+ (GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS|\S+) (\S*) (\d{3})\b")


def _die_with_parent():
    # The server gets SIGTERM if pytest dies without tearing down (killed at ctest's TIMEOUT, a
    # broken pipe): no server outlives its test. prctl(PR_SET_PDEATHSIG, SIGTERM).
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class Server:
    """One `tokamak serve` process on loopback."""

    def __init__(self, extra_args=(), env=None):
        self.args = [BIN, "serve", "--model", MODEL, "--device", "cpu", "--host", HOST, "--port", "0", *extra_args]
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.port = None
        self.lines = []
        self._lock = threading.Lock()
        self._port_seen = threading.Event()

    # ---- life

    def start(self):
        assert os.path.exists(BIN), f"no tokamak binary at {BIN} (set TOKAMAK_BIN)"
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env, preexec_fn=_die_with_parent)
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._port_seen.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise AssertionError("the server did not start:\n" + self.log())
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url("/health"), timeout=5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError("/health never answered 200:\n" + self.log())

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if self.port is None:
                m = re.search(r"serving .* on http://127\.0\.0\.1:(\d+)", line)
                if m:
                    self.port = int(m.group(1))
                    self._port_seen.set()

    def stop(self):
        """SIGTERM; the server must exit 0 within the bound and leave its port closed."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            raise AssertionError(f"the server was gone before SIGTERM (exit {rc}):\n" + self.log())
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the server did not exit within %.0f s of SIGTERM:\n%s" % (STOP_TIMEOUT_S, self.log()))
        assert rc == 0, f"the server exited {rc} after SIGTERM:\n" + self.log()
        assert not port_open(self.port), f"port {self.port} still open after exit"

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    # ---- helpers

    @property
    def base_url(self):
        return f"http://{HOST}:{self.port}"

    def url(self, path):
        return self.base_url + path

    def log(self, last=200):
        with self._lock:
            return "\n".join(self.lines[-last:])

    def statuses(self):
        """(method, path, status) of every access-log line so far."""
        with self._lock:
            lines = list(self.lines)
        out = []
        for line in lines:
            m = ACCESS_LINE.search(line)
            if m:
                out.append((m.group(1), m.group(2), int(m.group(3))))
        return out

    def server_errors(self, allowed=()):
        return [s for s in self.statuses() if s[2] >= 500 and s[2] not in allowed]

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect((HOST, port))
            return True
        except OSError:
            return False


def recv_until(sock, done, timeout=10.0):
    """Reads from a socket until done(bytes so far) holds; fails at EOF or after `timeout`."""
    got, deadline = b"", time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"timed out; got {got[:300]!r}"
        b = sock.recv(65536)
        assert b, f"closed early; got {got[:300]!r}"
        got += b
    return got


def parse_metrics(text):
    """Prometheus text -> {"name{labels}": value} and {"name": value} (the first series of a name)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
        name = key.split("{", 1)[0]
        out.setdefault(name, float(value))
    return out


def metrics(server):
    r = httpx.get(server.url("/metrics"), timeout=10)
    assert r.status_code == 200
    return parse_metrics(r.text)


def wait_idle(server, timeout=10.0):
    """Polls /metrics until no request runs or waits and the KV cache holds nothing; returns the
    last reading (the caller asserts on it)."""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics(server)
        idle = (m.get("vllm:num_requests_running") == 0 and m.get("vllm:num_requests_waiting") == 0
                and m.get("vllm:kv_cache_usage_perc") == 0)
        if idle or time.monotonic() > deadline:
            return m
        time.sleep(0.1)


def assert_idle(server, timeout=10.0):
    m = wait_idle(server, timeout)
    assert m.get("vllm:num_requests_running") == 0, m
    assert m.get("vllm:num_requests_waiting") == 0, m
    assert m.get("vllm:kv_cache_usage_perc") == 0, m


@pytest.fixture(scope="module")
def server(request):
    s = Server(getattr(request.module, "SERVER_ARGS", ()), getattr(request.module, "SERVER_ENV", None))
    s.start()
    try:
        yield s
    finally:
        if not s.alive():
            raise AssertionError(f"the server died (exit {s.proc.returncode}):\n" + s.log())
        errors = s.server_errors(getattr(request.module, "ALLOWED_5XX", ()))
        s.stop()
        assert not errors, f"5xx answers: {errors[:20]}\n" + s.log()
