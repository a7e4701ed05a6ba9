# The OpenAPI description against the server: docs/openapi.json is what /openapi.json serves, and
# schemathesis (a bounded number of examples, a fixed seed, a wall-clock bound) finds no 5xx, no
# response outside the schema, no schema-valid request refused (positive mode, with the schema's
# open ranges narrowed so that every request fits the demo model's context and the time budget)
# and no schema-violating request accepted (negative mode, on the schema as served).
import copy
import json
import os
import subprocess
import sys

import httpx
import pytest

from conftest import REPO, assert_idle

DOC = os.path.join(REPO, "docs", "openapi.json")
SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")
MAX_EXAMPLES = int(os.environ.get("TOKAMAK_SCHEMATHESIS_EXAMPLES", "40"))
MAX_TIME_S = 90


@pytest.fixture(scope="module")
def served(server):
    r = httpx.get(server.url("/openapi.json"), timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    return r.json()


def test_docs_openapi_json_is_what_the_server_serves(served):
    if os.environ.get("TOKAMAK_UPDATE_OPENAPI"):
        with open(DOC, "w") as f:
            json.dump(served, f, indent=2, ensure_ascii=False)
            f.write("\n")
    with open(DOC) as f:
        doc = json.load(f)
    assert doc == served, "docs/openapi.json is stale: run this test with TOKAMAK_UPDATE_OPENAPI=1 to rewrite it"


def test_schema_names_every_route(served, server):
    paths = served["paths"]
    for path, method in [("/v1/completions", "post"), ("/v1/chat/completions", "post"), ("/v1/models", "get"), ("/health", "get"),
                         ("/ping", "get"), ("/version", "get"), ("/metrics", "get"), ("/tokenize", "post"), ("/detokenize", "post"),
                         ("/openapi.json", "get")]:
        assert method in paths[path], (path, method)
        assert "200" in paths[path][method]["responses"]
    # And the server serves nothing else: a path outside the description is 404.
    assert httpx.get(server.url("/v1/embeddings"), timeout=10).status_code == 404


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def narrowed(doc):
    """The served schema with its open ranges closed: short prompts and messages, at most 8 new
    tokens, n <= 2, token ids inside the demo vocabulary, and without the fields whose validity
    depends on another field (stream_options, top_logprobs, min_tokens, continue_final_message,
    chat_template_kwargs), so that every request it allows is one the server must accept."""
    d = copy.deepcopy(doc)
    s = d["components"]["schemas"]
    tok = {"type": "integer", "minimum": 0, "maximum": 8191}
    short = {"type": "string", "minLength": 1, "maxLength": 48}
    for name in ("CompletionRequest", "ChatCompletionRequest"):
        p = s[name]["properties"]
        p["max_tokens"] = {"type": "integer", "minimum": 1, "maximum": 8}
        p["n"] = nullable({"type": "integer", "minimum": 1, "maximum": 2})
        p["stop"] = nullable({"anyOf": [{"type": "string", "minLength": 1, "maxLength": 8},
                                        {"type": "array", "maxItems": 4, "items": {"type": "string", "minLength": 1, "maxLength": 8}}]})
        p["stop_token_ids"] = nullable({"type": "array", "maxItems": 4, "items": tok})
        p["logit_bias"] = nullable({"type": "object", "maxProperties": 4, "propertyNames": {"pattern": "^[0-9]{1,3}$"},
                                    "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}})
        for field in ("stream_options", "min_tokens", "top_logprobs", "continue_final_message", "chat_template_kwargs",
                      "max_completion_tokens",
                      # a valid request holds at most one constraint, and a schema the grammar engine takes
                      "response_format", "structured_outputs", "guided_json", "guided_regex", "guided_choice",
                      "guided_grammar", "guided_decoding_backend",
                      # tools want tool_choice auto (a server flag), none, or a choice that names one
                      # of them (tested in test_tools.py)
                      "tools", "tool_choice", "parallel_tool_calls"):
            p.pop(field, None)
        p["model"] = {"type": "string", "enum": [MODEL[0]]}
        s[name]["required"] = sorted(set(s[name]["required"]) | {"max_tokens"})
        s[name]["additionalProperties"] = False
    c = s["CompletionRequest"]["properties"]
    c["prompt"] = {"anyOf": [short, {"type": "array", "minItems": 1, "maxItems": 3, "items": short},
                             {"type": "array", "minItems": 1, "maxItems": 48, "items": tok},
                             {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "array", "minItems": 1, "maxItems": 48, "items": tok}}]}
    c["logprobs"] = nullable({"type": "integer", "minimum": 0, "maximum": 5})
    c["prompt_logprobs"] = nullable({"type": "integer", "minimum": 0, "maximum": 5})
    s["ChatMessage"] = {"type": "object", "additionalProperties": False, "required": ["role", "content"],
                        "properties": {"role": {"type": "string", "enum": ["system", "user", "assistant"]},
                                       "content": {"type": "string", "maxLength": 32}}}
    s["ChatCompletionRequest"]["properties"]["messages"] = {"type": "array", "minItems": 1, "maxItems": 3,
                                                            "items": {"$ref": "#/components/schemas/ChatMessage"}}
    s["TokenizeRequest"]["properties"]["prompt"] = {"type": "string", "maxLength": 200}
    s["TokenizeRequest"]["properties"]["messages"]["maxItems"] = 3
    s["TokenizeRequest"]["properties"]["model"] = {"type": "string", "enum": [MODEL[0]]}
    s["TokenizeRequest"]["additionalProperties"] = False
    s["DetokenizeRequest"]["properties"]["tokens"] = {"type": "array", "maxItems": 64, "items": tok}
    s["DetokenizeRequest"]["properties"]["model"] = {"type": "string", "enum": [MODEL[0]]}
    return d


MODEL = [""]


def run_schemathesis(location, base_url, mode, checks, tmp_path):
    cmd = [SCHEMATHESIS, "run", location, "--url", base_url, "--mode", mode, "--checks", ",".join(checks),
           "--max-examples", str(MAX_EXAMPLES), "--seed", os.environ.get("TOKAMAK_SCHEMATHESIS_SEED", "20240501"), "--generation-database", "none",
           "--workers", "2", "--request-timeout", "30", "--no-color",
           "--phases", "examples,coverage,fuzzing", "--max-failures", "10",
           # Hypothesis' health checks time the generation of data: on a loaded CI machine they fail
           # the run for being slow, which says nothing about the server.
           "--suppress-health-check", "all"]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", HOME=str(tmp_path))
    # The wall-clock bound (schemathesis' own --max-time would repeat fuzzing until it is spent).
    p = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=MAX_TIME_S)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-20000:]
    assert "API Operations" in out, out[-5000:]
    return out


def test_schemathesis_positive(served, server, tmp_path):
    MODEL[0] = httpx.get(server.url("/v1/models"), timeout=10).json()["data"][0]["id"]
    path = tmp_path / "narrowed.json"
    path.write_text(json.dumps(narrowed(served)))
    run_schemathesis(str(path), server.base_url, "positive",
                     ["not_a_server_error", "status_code_conformance", "content_type_conformance",
                      "response_schema_conformance", "positive_data_acceptance"], tmp_path)


def test_schemathesis_negative(served, server, tmp_path):
    run_schemathesis(server.url("/openapi.json"), server.base_url, "negative",
                     ["not_a_server_error", "status_code_conformance", "content_type_conformance",
                      "response_schema_conformance", "negative_data_rejection", "unsupported_method"], tmp_path)


def test_idle_after_fuzzing(server):
    assert server.alive()
    assert_idle(server)
