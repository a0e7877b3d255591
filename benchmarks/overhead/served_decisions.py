"""Decision time inside the servers, as they measured it under the run's load, read back from their decision logs.

The in-process figure (`decisions.py`) times each policy in a loop that keeps the decision model's tables and the
detector's code in the CPU caches. A server interleaves the decision with parsing, the upstream call and
answering 32 connections, so the same decision costs more there. Every record in a thinkgate decision log
carries `decision_ms` (wall time around the policy's decision, in the server), so the logs of the run's own
servers say what the decisions cost under the run's load: all rounds, sequential, streamed and wrk requests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..stats import percentile


@dataclass
class ServedDecisions:
    """Decision times (ms) of one server's records decided by its policy (not by a header, client or fallback)."""

    label: str
    policy: str
    n: int = 0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    mean_ms: float = math.nan
    error: str | None = None


def read_served_decisions(label: str, policy: str, log_path: Path) -> ServedDecisions:
    """The `decision_ms` of every policy-decided record in a SQLite decision log written by `thinkgate serve`."""
    from router.logstore import open_store

    out = ServedDecisions(label, policy)
    if not log_path.is_file():
        out.error = "no decision log"
        return out
    try:  # a read-only snapshot (the store's export path); the servers have stopped, so every record is in
        times = [float(row["decision_ms"]) for row in open_store(str(log_path)).read()
                 if row.get("decision_source") == "policy" and row.get("decision_ms") is not None]
    except Exception as exc:  # noqa: BLE001 - reported in the table, the run's other results still count
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    out.n = len(times)
    if times:
        out.p50_ms, out.p99_ms = percentile(times, 50), percentile(times, 99)
        out.mean_ms = sum(times) / len(times)
    return out


__all__ = ["ServedDecisions", "read_served_decisions"]
