"""A frozen copy of the constraint detector as it was before the speed work on branch `det` (commit a31e6e1).

The property tests in `test_detector_equivalence.py` run it next to the live detector on generated texts: the
live one must give the same raw detections (`run_detectors`) for every input. Do not edit these files,
except to fix a bug in both copies alike (so far one: `parse_number` raised OverflowError on "1e1100").
"""
