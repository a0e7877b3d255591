"""Dataset loaders: a registry mapping a dataset name to a loader that yields `Example`s.

Every loader reads a local file when given a path. IFEval and ComplexBench also know their public source
(used only when no path is given, so it needs internet). Example ids are `dataset:key`.

    >>> load_examples("ifeval", "input_data.jsonl", limit=2)          # doctest: +SKIP
    >>> load_examples("complexbench", "data_final.json", lang="en")    # doctest: +SKIP

Errors: an unknown name raises `UnknownDatasetError` (a `KeyError`) listing close matches; a missing file
or a bad line raises `DatasetError` (a `ValueError`) naming the file and the line number.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.records import Constraint, Example

log = logging.getLogger(__name__)

IFEVAL_HF_ID = "google/IFEval"
COMPLEXBENCH_URL = "https://raw.githubusercontent.com/thu-coai/ComplexBench/main/data/data_final.json"


class UnknownDatasetError(KeyError):
    """No loader is registered under that name. The message lists close matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DatasetError(ValueError):
    """A dataset file is missing or malformed. The message names the file (and line, when known)."""


@dataclass(frozen=True)
class Skipped:
    """A loader's note that one record was left out (e.g. a decision-log line without prompt text)."""

    line: int
    reason: str


@dataclass(frozen=True)
class LoadResult:
    examples: list[Example]
    skipped: list[Skipped]
    version: str


Loader = Callable[..., Iterator["Example | Skipped"]]
_LOADERS: dict[str, Loader] = {}
_PUBLIC_IDS: dict[str, str] = {}


def register(name: str, *, public_id: str | None = None) -> Callable[[Loader], Loader]:
    """Register `loader(path: Path | None, **options)` under `name`."""

    def deco(fn: Loader) -> Loader:
        _LOADERS[name] = fn
        if public_id:
            _PUBLIC_IDS[name] = public_id
        return fn

    return deco


def dataset_names() -> list[str]:
    return sorted(_LOADERS)


def get_loader(name: str) -> Loader:
    try:
        return _LOADERS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _LOADERS, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownDatasetError(
            f"unknown dataset {name!r}{hint} (known: {', '.join(dataset_names())})"
        ) from None


def load(name: str, path: str | os.PathLike[str] | None = None, *, limit: int | None = None,
         **options: Any) -> LoadResult:
    """Load a dataset and report what was skipped. `limit` keeps the first N examples."""
    loader = get_loader(name)
    file = Path(path) if path is not None else None
    if file is not None and not file.is_file():
        raise DatasetError(f"{name}: file not found: {file}")
    examples: list[Example] = []
    skipped: list[Skipped] = []
    for item in loader(file, **options):
        if isinstance(item, Skipped):
            skipped.append(item)
            continue
        if limit is not None and len(examples) >= limit:
            break
        examples.append(item)
    if skipped:
        log.warning("%s: skipped %d record(s) of %s (first: line %d, %s)",
                    name, len(skipped), file, skipped[0].line, skipped[0].reason)
    return LoadResult(examples, skipped, dataset_version(name, path))


def load_examples(name: str, path: str | os.PathLike[str] | None = None, *, limit: int | None = None,
                  **options: Any) -> list[Example]:
    """Load dataset `name` from `path` (or its public source when `path` is None) as a list of Examples."""
    return load(name, path, limit=limit, **options).examples


def file_version(path: str | os.PathLike[str]) -> str:
    """First 16 hex digits of the sha256 of the file's bytes."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise DatasetError(f"file not found: {path}") from None
    return h.hexdigest()[:16]


def dataset_version(name: str, path: str | os.PathLike[str] | None) -> str:
    """A short id of the exact data: the file hash, or `public:<id>` when loaded from the public source."""
    get_loader(name)  # validates the name
    if path is None:
        if name not in _PUBLIC_IDS:
            raise DatasetError(f"{name}: a path is required (this dataset has no public source)")
        return f"public:{_PUBLIC_IDS[name]}"
    return file_version(path)


def shared_data_dir() -> Path:
    """Where the project's reference data lives: $THINKGATE_DATA_DIR, else `shared/data` beside the repo."""
    env = os.environ.get("THINKGATE_DATA_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------- helpers


def read_jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line; bad JSON raises DatasetError with file:line."""
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise DatasetError(f"cannot read {path}: {e.strerror or e}") from None
    with f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DatasetError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def _require(obj: Mapping[str, Any], key: str, typ: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise DatasetError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, typ):
        raise DatasetError(f"{where}: field {key!r} has type {type(value).__name__}")
    return value


def _user(text: str) -> tuple[dict[str, Any], ...]:
    return ({"role": "user", "content": text},)


def _check_messages(messages: Any, where: str) -> tuple[dict[str, Any], ...]:
    if not isinstance(messages, list) or not messages:
        raise DatasetError(f"{where}: 'messages' must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or "content" not in m:
            raise DatasetError(f"{where}: each message needs a 'role' and a 'content'")
    return tuple(messages)


def _constraints(ids: Any, kwargs: Any, where: str) -> tuple[Constraint, ...]:
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise DatasetError(f"{where}: 'instruction_id_list' must be a list of strings")
    kwargs = kwargs if kwargs is not None else [{}] * len(ids)
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise DatasetError(f"{where}: 'kwargs' must be a list as long as 'instruction_id_list'")
    out = []
    for iid, kw in zip(ids, kwargs):
        if not isinstance(kw, dict):
            raise DatasetError(f"{where}: each kwargs entry must be an object")
        # The HF copy of IFEval fills every possible kwarg with null; only the set ones matter.
        out.append(Constraint(iid, {k: v for k, v in kw.items() if v is not None}))
    return tuple(out)


# ----------------------------------------------------------------------------------------------- IFEval


def _ifeval_example(row: Mapping[str, Any], where: str) -> Example:
    key = _require(row, "key", (int, str), where)
    prompt = _require(row, "prompt", str, where)
    constraints = _constraints(row.get("instruction_id_list"), row.get("kwargs"), where)
    return Example(id=f"ifeval:{key}", messages=_user(prompt), constraints=constraints, meta={"key": key})


@register("ifeval", public_id=IFEVAL_HF_ID)
def _load_ifeval(path: Path | None) -> Iterator[Example]:
    """IFEval's `input_data.jsonl` (key, prompt, instruction_id_list, kwargs); HF `google/IFEval` if no path."""
    if path is None:
        try:
            from datasets import load_dataset  # lazy: heavy, and only needed without a local file
        except ImportError as e:
            raise DatasetError("loading IFEval without a path needs the 'datasets' package; "
                               "or pass the path of input_data.jsonl") from e
        for i, row in enumerate(load_dataset(IFEVAL_HF_ID, split="train"), 1):
            yield _ifeval_example(row, f"{IFEVAL_HF_ID} row {i}")
        return
    for lineno, row in read_jsonl_objects(path):
        yield _ifeval_example(row, f"{path}:{lineno}")


# ------------------------------------------------------------------------------------------ ComplexBench


def _complexbench_items(path: Path | None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, item) pairs from data_final.json (a JSON list) or from a JSONL of {main_id, instruction}."""
    if path is None:
        path = _download(COMPLEXBENCH_URL, "complexbench/data_final.json")
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")  # tolerate a BOM
    if head.startswith(b"["):
        try:
            items = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise DatasetError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DatasetError(f"{path}: item {i} is not a JSON object")
            yield f"{path} item {i}", item
    else:
        for lineno, item in read_jsonl_objects(path):
            yield f"{path}:{lineno}", item


def _complexbench_question(q: Any, lang: str, where: str) -> dict[str, Any]:
    if not isinstance(q, dict):
        raise DatasetError(f"{where}: each scoring question must be an object")
    point_id = _require(q, "point_id", int, where)
    text = q.get("question_en") if lang == "en" else q.get("question")
    if not isinstance(text, str):
        missing = "question_en" if lang == "en" else "question"
        raise DatasetError(f"{where}: scoring question {point_id} has no {missing!r}")
    dep = q.get("dep") or []
    if not isinstance(dep, list) or not all(isinstance(d, int) for d in dep):
        raise DatasetError(f"{where}: scoring question {point_id}: 'dep' must be a list of point ids")
    return {
        "point_id": point_id,
        "question": text,
        "rule": q.get("rule"),
        "dep": dep,
        "constraint_dimensions": q.get("constraint_dimensions") or [],
        "composition_types": q.get("composition_types") or [],
    }


@register("complexbench", public_id=COMPLEXBENCH_URL)
def _load_complexbench(path: Path | None, lang: str = "zh") -> Iterator[Example]:
    """ComplexBench: `data_final.json` (with scoring questions) or the instructions-only JSONL.

    `lang="en"` uses `instruction_en` / `question_en`. The scoring questions go to `meta["scoring_questions"]`
    (empty for the instructions-only file); file order is kept (the official scorer pairs by position).
    """
    if lang not in ("zh", "en"):
        raise DatasetError(f"complexbench: lang must be 'zh' or 'en', not {lang!r}")
    field = "instruction_en" if lang == "en" else "instruction"
    for where, item in _complexbench_items(path):
        main_id = _require(item, "main_id", (int, str), where)
        if not isinstance(item.get(field), str):
            hint = " (this file has no English text; use lang='zh')" if lang == "en" else ""
            raise DatasetError(f"{where}: missing field {field!r}{hint}")
        questions = [_complexbench_question(q, lang, where) for q in item.get("scoring_questions") or []]
        meta = {
            "main_id": main_id,
            "lang": lang,
            "scoring_questions": questions,
            **{k: item[k] for k in ("category", "task_types", "constraint_dimensions", "composition_types",
                                    "group", "idx_in_group") if k in item},
        }
        yield Example(id=f"complexbench:{main_id}", messages=_user(item[field]), meta=meta)


def _download(url: str, rel: str) -> Path:
    """Fetch `url` once into the user cache (~/.cache/thinkgate) and return the local path."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "thinkgate" / rel
    if not cache.is_file():
        import urllib.request

        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".part")
        try:
            urllib.request.urlretrieve(url, tmp)
        except OSError as e:
            raise DatasetError(f"cannot download {url} ({e}); download it yourself and pass its path") from None
        tmp.replace(cache)
    return cache


# --------------------------------------------------------------------------------------- user prompts


@register("jsonl")
def _load_jsonl(path: Path | None, prefix: str = "jsonl") -> Iterator[Example]:
    """The user's own prompts: `{"id"?, "prompt": str}` or `{"id"?, "messages": [...]}` per line.

    Ids default to the line number. Optional IFEval-style `instruction_id_list` + `kwargs` become
    constraints; any other fields go to `meta`.
    """
    if path is None:
        raise DatasetError("jsonl: a path is required")
    seen: dict[str, int] = {}
    for lineno, row in read_jsonl_objects(path):
        where = f"{path}:{lineno}"
        if "messages" in row:
            messages = _check_messages(row["messages"], where)
        elif isinstance(row.get("prompt"), str):
            messages = _user(row["prompt"])
        else:
            raise DatasetError(f"{where}: each line needs a string 'prompt' or a 'messages' list")
        key = str(row.get("id", lineno))
        if key in seen:
            raise DatasetError(f"{where}: duplicate id {key!r} (first on line {seen[key]})")
        seen[key] = lineno
        constraints = ()
        if "instruction_id_list" in row:
            constraints = _constraints(row["instruction_id_list"], row.get("kwargs"), where)
        meta = {k: v for k, v in row.items() if k not in ("id", "prompt", "messages", "instruction_id_list", "kwargs")}
        yield Example(id=f"{prefix}:{key}", messages=messages, constraints=constraints, meta=meta)


@register("decision-log")
def _load_decision_log(path: Path | None) -> Iterator["Example | Skipped"]:
    """The proxy's exported decision log. Lines without prompt text (prompt logging off) are skipped.

    A line needs `id` or `request_id`, `route`, and `prompt` (a string) or `messages`; every other field
    (the decision, score, policy, ...) goes to `meta`.
    """
    if path is None:
        raise DatasetError("decision-log: a path is required")
    for lineno, row in read_jsonl_objects(path):
        where = f"{path}:{lineno}"
        key = row.get("id", row.get("request_id"))
        if key is None:
            raise DatasetError(f"{where}: missing field 'id' (or 'request_id')")
        if "route" not in row:
            raise DatasetError(f"{where}: missing field 'route'")
        if isinstance(row.get("prompt"), str) and row["prompt"]:
            messages = _user(row["prompt"])
        elif row.get("messages"):
            messages = _check_messages(row["messages"], where)
        else:
            yield Skipped(lineno, "no prompt text (was prompt logging on?)")
            continue
        meta = {k: v for k, v in row.items() if k not in ("id", "request_id", "prompt", "messages")}
        yield Example(id=f"decision-log:{key}", messages=messages, meta=meta)
