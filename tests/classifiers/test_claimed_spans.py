"""The detector's claimed-span bookkeeping (`_Spans`) answers exactly as the plain list scan it replaced."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers._detectors import _Spans

_span = st.tuples(st.integers(0, 60), st.integers(0, 12)).map(lambda t: (t[0], t[0] + t[1]))


def _naive_overlaps(claimed: list[tuple[int, int]], span: tuple[int, int]) -> bool:
    s, e = span
    return any(s < ce and cs < e for cs, ce in claimed)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(st.tuples(st.booleans(), st.lists(_span, min_size=1, max_size=12)), max_size=12),
       queries=st.lists(_span, min_size=1, max_size=30))
def test_overlaps_matches_a_linear_scan(ops: list[tuple[bool, list[tuple[int, int]]]],
                                        queries: list[tuple[int, int]]) -> None:
    spans, naive = _Spans(), []
    for as_batch, batch in ops:
        if as_batch:
            spans.extend(batch)
        else:
            for span in batch:
                spans.append(span)
        naive.extend(batch)
        for q in queries:
            assert spans.overlaps(q) == _naive_overlaps(naive, q), (naive, q)


def test_touching_spans_do_not_overlap_but_an_empty_claim_inside_does() -> None:
    spans = _Spans()
    spans.append((0, 5))
    spans.append((5, 9))
    assert not spans.overlaps((5, 5))  # an empty query at a boundary overlaps neither
    assert spans.overlaps((4, 6))
    spans.append((20, 20))
    assert spans.overlaps((19, 21)) and not spans.overlaps((20, 20)) and not spans.overlaps((20, 25))


def test_many_claims_stay_merged_runs() -> None:
    spans = _Spans()
    spans.extend((i, i + 3) for i in range(0, 30_000, 2))  # each overlaps the next: one run
    assert len(spans) == 1 and spans.overlaps((29_000, 29_001))
