"""`benchmarks.durability.tally`: answers against exported rows after a kill (no proxy needed)."""

from __future__ import annotations

from benchmarks.durability import Answer, tally

KILLED_AT = 1000.0


def _answers(n: int) -> list[Answer]:
    """Request i began at 990 + i/100 and was answered 5 ms later."""
    return [Answer(f"r{i}", 200, 990.0 + i / 100 + 0.005) for i in range(n)]


def _rows(answers: list[Answer], keep: list[int]) -> list[dict]:
    return [{"request_id": answers[i].request_id, "time": answers[i].done - 0.005} for i in keep]


def _tally(answers: list[Answer], rows: list[dict], bound_ms: float = 500.0):
    return tally(answers, rows, killed_at=KILLED_AT, sig="SIGKILL", store="sqlite", policy="never",
                 flush_interval_ms=50.0, bound_ms=bound_ms, proxy_exit=-9)


def test_a_lost_tail_within_the_bound_is_ok() -> None:
    answers = _answers(1000)  # 990.005 .. 999.995
    result = _tally(answers, _rows(answers, list(range(980))))  # the last 200 ms lost
    assert (result.answered_200, result.rows_found, result.missing) == (1000, 980, 20)
    assert result.loss_is_tail and result.missing_beyond_bound == 0 and result.ok
    assert result.oldest_missing_ms_before_kill == 195.0


def test_a_hole_is_not_a_tail_even_when_young() -> None:
    answers = _answers(1000)
    keep = [i for i in range(1000) if not 960 <= i < 970]  # a lost batch, later ones committed
    result = _tally(answers, _rows(answers, keep))
    assert result.missing == 10 and result.missing_beyond_bound == 0
    assert not result.loss_is_tail and not result.ok


def test_a_tail_older_than_the_bound_is_not_ok() -> None:
    answers = _answers(1000)
    result = _tally(answers, _rows(answers, list(range(800))))  # two seconds behind
    assert result.loss_is_tail and result.missing_beyond_bound == 150 and not result.ok


def test_answers_after_the_kill_and_errors_are_not_counted() -> None:
    answers = [*_answers(10), Answer("late", 200, KILLED_AT + 0.01), Answer("err", 502, 995.0)]
    result = _tally(answers, _rows(answers, list(range(10))))
    assert (result.answered_200, result.missing) == (10, 0) and result.ok
