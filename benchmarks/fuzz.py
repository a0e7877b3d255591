"""Property-based fuzzing of `POST /v1/chat/completions` (hypothesis): request bodies and headers.

The property, for every generated request: the proxy never answers 500, and every error is OpenAI's error
format (`{"error": {"message", "type", "param", "code"}}`) with no stack trace. Requests mix well-formed chat
requests with fuzzed fields (wrong types, unknown roles, content parts with odd texts, reasoning fields of any
shape, strings as booleans), arbitrary JSON, broken JSON and raw bytes; headers fuzz thinkgate's own
(`x-thinkgate-reasoning`, `x-thinkgate-think-budget`), `authorization` and `content-type`.

    python -m benchmarks.fuzz --cases 10000            # starts a mock upstream and `thinkgate serve`

Prints the counts by status and writes them as JSON (`--out`); exits 1 if any case broke the property.
The test suite runs the same strategies with fewer cases (tests/router/test_fuzz.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from hypothesis import strategies as st

ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
MODELS = ["fuzz-never", "fuzz-classifier"]

_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=40))
json_values = st.recursive(_json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)), max_leaves=12)
# Lone surrogates reach the proxy as `\ud800` escapes (ensure_ascii) or as bytes that are not UTF-8.
_odd_text = st.one_of(st.text(max_size=200), st.sampled_from(["", " ", "\x00", "²", "١٢", "<think>", "</think>",
                                                              "\ud800", "a\udfffb", "\ud83d\ude00"]))


def mostly(draw: Any, usual: Any, odd: Any, p_usual: int = 8) -> Any:
    """Draw from `usual` p_usual times in 10, else from `odd`: most requests get past validation."""
    return draw(usual if draw(st.integers(0, 9)) < p_usual else odd)


@st.composite
def content_parts(draw: Any) -> Any:
    part: dict[str, Any] = {"type": mostly(draw, st.sampled_from(["text", "image_url"]), st.text(max_size=5))}
    if part["type"] == "text" or draw(st.booleans()):
        part["text"] = mostly(draw, _odd_text, json_values)
    return part


@st.composite
def messages(draw: Any) -> Any:
    out = []
    for _ in range(mostly(draw, st.integers(1, 4), st.just(0), 9)):
        message: dict[str, Any] = {"role": mostly(draw, st.sampled_from(ROLES), st.text(max_size=8) | json_values, 9)}
        kind = draw(st.integers(0, 9))
        if kind <= 5:
            message["content"] = draw(_odd_text)
        elif kind <= 7:
            message["content"] = draw(st.lists(content_parts(), max_size=3))
        elif kind == 8:
            message["content"] = draw(json_values)
        if draw(st.integers(0, 5)) == 0:
            message[draw(st.sampled_from(["reasoning_content", "name", "tool_calls", "reasoning"]))] = draw(
                json_values)
        out.append(message)
    return out


_FIELDS = {  # name -> (usual values, odd values)
    "stream": (st.booleans(), st.sampled_from(["false", "true", "0", "no", 0, 1, None]) | json_values),
    "stream_options": (st.fixed_dictionaries({"include_usage": st.booleans()}), json_values),
    "max_tokens": (st.integers(1, 100), st.integers(-5, 0) | json_values),
    "max_completion_tokens": (st.integers(1, 100), st.integers(-5, 0) | json_values),
    "temperature": (st.floats(0, 2), st.floats(-1e9, 1e9) | json_values),
    "top_p": (st.floats(0.01, 1), st.floats(-1, 2) | json_values),
    "n": (st.just(1), st.integers(-1, 3) | json_values),
    "stop": (st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=3), json_values),
    "seed": (st.integers(), json_values),
    "reasoning_effort": (st.sampled_from(["low", "medium", "high", "none", "off"]), json_values),
    "thinking": (st.fixed_dictionaries({"type": st.sampled_from(["enabled", "disabled", "x"])}), json_values),
    "reasoning": (st.fixed_dictionaries({"enabled": json_values}) | st.fixed_dictionaries({"effort": json_values}),
                  json_values),
    "chat_template_kwargs": (st.fixed_dictionaries({"enable_thinking": json_values}), json_values),
    "tools": (json_values, json_values),
    "user": (_odd_text, json_values),
}


@st.composite
def chat_bodies(draw: Any) -> Any:
    body: dict[str, Any] = {}
    if draw(st.integers(0, 19)):
        body["model"] = mostly(draw, st.sampled_from(MODELS), st.text(max_size=10) | json_values, 9)
    if draw(st.integers(0, 19)):
        body["messages"] = mostly(draw, messages(), json_values, 9)
    for name in draw(st.sets(st.sampled_from(sorted(_FIELDS)), max_size=5)):
        body[name] = mostly(draw, *_FIELDS[name])
    return body


@st.composite
def raw_bodies(draw: Any) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind <= 5:
        return json.dumps(draw(chat_bodies()), ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if kind == 6:
        return json.dumps(draw(json_values)).encode()
    if kind == 7:  # a valid request, cut short
        raw = json.dumps(draw(chat_bodies())).encode()
        return raw[:draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == 8:  # nesting, huge numbers, escapes JSON allows and Python does not like
        return draw(st.sampled_from([b"[" * 5000, b'{"model": ' + b"9" * 5000 + b"}", b'{"a": NaN}',
                                     b'{"model": "fuzz-never", "messages": [{"role": "user", "content": "\\ud800"}]}',
                                     b'{"model": "fuzz-never", "messages": [{"role": "user", "content": '
                                     b'[{"type": "text", "text": null}]}]}']))
    return draw(st.binary(max_size=200))


_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
                       max_size=30).map(str.strip)


@st.composite
def headers(draw: Any) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pool = {
        "x-thinkgate-reasoning": st.sampled_from(["on", "off", "auto", "", "ON", "maybe"]) | _header_text,
        "x-thinkgate-think-budget": st.sampled_from(["1", "32768", "0", "32769", "²", "١٢", "-1", "+7", "1e3"])
        | _header_text,
        "content-type": st.sampled_from(["application/json", "text/plain", "application/json; charset=latin-1"])
        | _header_text,
        "authorization": st.sampled_from(["Bearer", "Basic x", "", "bearer  fuzz-key"]) | _header_text,
    }
    for name in draw(st.sets(st.sampled_from(sorted(pool)), max_size=4)):
        if name == "authorization" and draw(st.integers(0, 4)):
            continue  # mostly the right key, so that most requests reach the rest of the path
        value = draw(pool[name])
        try:  # servers read header bytes as latin-1: "²" as one byte is a digit to str.isdigit()
            out[name] = value.encode("latin-1") if draw(st.booleans()) else value.encode("utf-8")
        except UnicodeEncodeError:
            out[name] = value.encode("utf-8")
    return out


requests = st.tuples(raw_bodies(), headers())


def check_response(status: int, content_type: str, body: bytes) -> str | None:
    """None if the response keeps the property, else what is wrong with it."""
    if status >= 500 and status not in (502, 503, 504):
        return f"status {status}"
    if b"Traceback" in body:
        return "a stack trace in the body"
    if status >= 400:
        try:
            error = json.loads(body)["error"]
        except (ValueError, KeyError, TypeError):
            return f"status {status} without an OpenAI error body: {body[:120]!r}"
        if not isinstance(error, dict) or not {"message", "type", "param", "code"} <= set(error):
            return f"status {status} with an incomplete error object: {body[:120]!r}"
    elif status == 200 and "event-stream" not in content_type:
        try:
            json.loads(body)["choices"]
        except (ValueError, KeyError, TypeError):
            return f"200 that is not a chat completion: {body[:120]!r}"
    return None


def proxy_config(upstream_url: str, decision_log: str) -> dict[str, Any]:
    """Two routes, one per kind of policy; client keys on, so auth paths are fuzzed too."""
    route = {"backend": "openai", "base_url": upstream_url, "model": "fuzz-upstream", "timeout_s": 10}
    return {"server": {"api_keys_env": "FUZZ_KEYS"}, "decision_log": {"path": decision_log},
            "routes": {"fuzz-never": {**route, "policy": "never"},
                       "fuzz-classifier": {**route, "policy": "classifier",
                                           "policy_options": {"artifact": "smollm2-135m-ifeval"}}}}


def run(base_url: str, cases: int, seed: int) -> dict[str, Any]:
    import httpx
    from hypothesis import HealthCheck, given, seed as hyp_seed, settings

    statuses: Counter[int] = Counter()
    failures: list[dict[str, Any]] = []
    client = httpx.Client(base_url=base_url, timeout=30)
    start = time.perf_counter()

    @hyp_seed(seed)
    @settings(max_examples=cases, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(requests)
    def one(case: tuple[bytes, dict[str, bytes]]) -> None:
        raw, extra = case
        headers_ = {"authorization": b"Bearer fuzz-key", "content-type": b"application/json", **extra}
        try:
            r = client.post("/v1/chat/completions", content=raw, headers=headers_)
        except httpx.HTTPError as exc:
            failures.append({"problem": f"transport error {type(exc).__name__}", "body": raw[:200].hex()})
            return
        statuses[r.status_code] += 1
        problem = check_response(r.status_code, r.headers.get("content-type", ""), r.content)
        if problem:
            failures.append({"problem": problem, "body": raw[:300].decode("utf-8", "replace"),
                             "headers": {k: v.decode("utf-8", "replace") for k, v in extra.items()}})
            print(f"fuzz: FAILED {json.dumps(failures[-1], ensure_ascii=False)[:600]}", file=sys.stderr, flush=True)
        done = sum(statuses.values())
        if done % 500 == 0:
            print(f"fuzz: {done} cases, {len(failures)} failures, {done / (time.perf_counter() - start):.0f}/s",
                  file=sys.stderr, flush=True)

    one()
    client.close()
    return {"cases": sum(statuses.values()), "by_status": dict(sorted(statuses.items())),
            "status_500": statuses.get(500, 0), "failures": len(failures), "first_failures": failures[:10],
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--out", type=Path, default=Path("benchmarks/reports/fuzz.json"))
    p.add_argument("--python", default=sys.executable)
    args = p.parse_args(argv)
    import yaml

    from .overhead import mock_service
    from .services import Service, Services, free_port

    with tempfile.TemporaryDirectory(prefix="thinkgate-fuzz-") as tmp, Services() as services:
        work = Path(tmp)
        mock = services.start(mock_service(work, args.python))
        config = work / "fuzz.yaml"
        config.write_text(yaml.safe_dump(proxy_config(mock.url + "/v1", str(work / "decisions.sqlite3"))))
        port = free_port()
        proxy = services.start(Service("thinkgate", [args.python, "-m", "router.cli", "serve", "--config",
                                                     str(config), "--port", str(port)], port, work / "proxy.log",
                                       env={"FUZZ_KEYS": "fuzz-key", "THINKGATE_LOG_LEVEL": "warning"}),
                                 timeout_s=240)
        result = run(proxy.url, args.cases, args.seed)
        log_tail = (work / "proxy.log").read_text(errors="replace")[-2000:]
    result["command"] = "python -m benchmarks.fuzz " + " ".join(argv if argv is not None else sys.argv[1:])
    result["proxy_log_tail"] = log_tail
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "proxy_log_tail"}, indent=2, ensure_ascii=False))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
