"""mypyc's build of the constraint detector (`_detectors.py`, `_phrasing.py`), made by setup.py from staged copies.

Nothing here is imported directly: classifiers/compiled.py imports `_detectors` from this package only after
checking that it was compiled from the current sources, and falls back to the Python modules otherwise.
"""
