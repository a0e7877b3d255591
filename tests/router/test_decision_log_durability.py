"""The decision log under load and a signal, on a real proxy process (benchmarks/durability.py drives it).

The stated bound (router/decision_log.py): a kill -9 loses at most the records of the last 500 ms
(flush interval 50 ms plus one batch's commit, with room for a starved CPU); SIGTERM loses none. Every 200
answer is looked up in the log by its `x-request-id`.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from benchmarks.durability import DEFAULT_BOUND_MS, kill_run

pytest.importorskip("aiohttp")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_rows_against_answers_after_a_signal_under_load(sig, log_target: str, mock_process_url: str,
                                                       tmp_path: Path) -> None:
    result = kill_run(sig=sig, target=log_target, workdir=tmp_path, upstream=mock_process_url,
                      kill_after_s=2.0, processes=1, connections=16)
    assert result.answered_200 > 100, result  # there was load when the signal came
    if sig is signal.SIGTERM:
        # uvicorn shuts down gracefully, then re-raises the signal (exit -15)
        assert result.proxy_exit in (0, -signal.SIGTERM) and result.missing == 0, result
    else:
        assert result.proxy_exit == -signal.SIGKILL
        assert result.missing_beyond_bound == 0, (
            f"{result.missing} rows missing, the oldest answered {result.oldest_missing_ms_before_kill} ms "
            f"before the kill; the bound is {DEFAULT_BOUND_MS} ms")
