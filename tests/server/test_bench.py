# `tokamak bench serve` against `tokamak serve`, and `tokamak bench throughput`, on the demo model
# on the CPU for a handful of prompts: both commands work without a GPU, print vLLM's result lines
# with numbers that add up, and write their JSON (issue 11: CI runs both commands).
import glob
import json
import os
import re
import subprocess

from conftest import BIN, MODEL

SERVER_ARGS = ("--served-model-name", "demo", "--max-num-seqs", "8")
TIMEOUT_S = 120
NUM = r"(-?\d+(?:\.\d+)?)"


def run(args):
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=TIMEOUT_S)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def figure(out, label):
    m = re.search(r"^" + re.escape(label) + r"\s+" + NUM, out, re.M)
    assert m, f"no '{label}' line in:\n{out}"
    return float(m.group(1))


def test_bench_serve_prints_vllms_table_and_saves_json(server, tmp_path):
    out = run(["bench", "serve", "--base-url", server.base_url, "--model", "demo", "--tokenizer", MODEL,
               "--dataset-name", "random", "--random-input-len", "24", "--random-output-len", "6", "--num-prompts", "6",
               "--max-concurrency", "3", "--ignore-eos", "--seed", "3", "--save-result", "--result-dir", str(tmp_path)])
    assert "============ Serving Benchmark Result ============" in out
    assert figure(out, "Successful requests:") == 6
    assert "Failed requests:" not in out
    saved = glob.glob(os.path.join(tmp_path, "bench_serve_*.json"))
    assert len(saved) == 1
    j = json.load(open(saved[0]))
    # The table prints the duration to 0.01 s (at ~0.15 s that alone is ~3% of a rate); the rates
    # are checked against the saved, unrounded one.
    duration = j["duration"]
    assert duration > 0 and abs(figure(out, "Benchmark duration (s):") - duration) <= 0.005 + 1e-9
    generated = figure(out, "Total generated tokens:")
    assert generated == 6 * 6
    assert figure(out, "Total input tokens:") > 0
    assert abs(figure(out, "Output token throughput (tok/s):") - generated / duration) < 0.02 * generated / duration + 0.01
    assert abs(figure(out, "Request throughput (req/s):") - 6 / duration) < 0.02 * 6 / duration + 0.01
    for key in ("TTFT", "TPOT", "ITL", "E2EL"):
        mean, median, p99 = (figure(out, f"{s} {key} (ms):") for s in ("Mean", "Median", "P99"))
        assert 0 < median <= p99 and 0 < mean <= p99 + 1e-6, (key, mean, median, p99)
    assert figure(out, "Mean TTFT (ms):") <= figure(out, "Mean E2EL (ms):")
    assert j["completed"] == 6 and j["total_output_tokens"] == 36 and j["max_concurrency"] == 3
    for name in ("ttft", "tpot", "itl", "e2el"):
        assert j[f"p99_{name}_ms"] >= j[f"median_{name}_ms"] > 0


def test_bench_throughput_prints_vllms_line_and_the_engines_counters(tmp_path):
    for overlap in ("--async-scheduling", "--no-async-scheduling"):
        path = os.path.join(tmp_path, "throughput" + overlap + ".json")
        out = run(["bench", "throughput", "--model", MODEL, "--device", "cpu", "--num-prompts", "6", "--input-len", "24",
                   "--output-len", "5", "--max-model-len", "128", "--max-num-seqs", "4", overlap, "--output-json", path])
        m = re.search(r"^Throughput: " + NUM + r" requests/s, " + NUM + r" total tokens/s, " + NUM + r" output tokens/s$",
                      out, re.M)
        assert m, out
        req, total, output = (float(g) for g in m.groups())
        assert req > 0 and total > output > 0
        assert figure(out, "Total num prompt tokens:") == 6 * 24
        assert figure(out, "Total num output tokens:") == 6 * 5
        assert re.search(r"^Engine: \d+ steps, mean batch " + NUM + r" sequences, mean host time " + NUM +
                         r" ms/step, prefix cache hit rate " + NUM + r"%$", out, re.M), out
        on = overlap == "--async-scheduling"
        steps = re.search(r"^Steps: host " + NUM + r" ms/step, device " + NUM + r" ms/step \(host/device n/a\); "
                          r"async scheduling (on|off), (\d+) steps overlapped$", out, re.M)
        assert steps, out
        assert steps.group(3) == ("on" if on else "off")
        assert (int(steps.group(4)) > 0) == on
        assert re.search(r"^Decode-only steps: \d+, mean batch " + NUM + r": host " + NUM + r" ms/step, device " + NUM +
                         r" ms/step \(host/device n/a\)$", out, re.M), out
        assert figure(out, "Decode graphs captured while running:") == 0  # the CPU captures none
        j = json.load(open(path))
        assert j["num_requests"] == 6 and j["total_num_tokens"] == 6 * 29
        assert j["async_scheduling"] == on and (j["overlapped_steps"] > 0) == on
        assert j["decode_steps"] > 0 and 1 <= j["decode_mean_batch_size"] <= 4
        assert j["late_graph_captures"] == 0
        assert abs(j["output_tokens_per_second"] - output) < 0.01 * output + 0.01
