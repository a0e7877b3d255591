"""Keep full garbage-collector passes off the request path's tail.

After start-up a serving process holds tens of thousands of long-lived objects (modules, the decision model's
vocabularies, pydantic schemas, routes). Every full (generation 2) collection walks all of them: about
10-20 ms on this project's reference machine, during which the event loop answers nobody, so under load a
full pass shows up directly as the p99. `gc.freeze()` moves everything alive at the end of start-up into the
permanent generation, which collections skip; objects created while serving are collected as before.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("thinkgate")


def freeze_startup_heap() -> int:
    """Collect once, then exempt every surviving object from future collections; returns how many."""
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.debug("gc: %d start-up objects frozen", frozen)
    return frozen
