"""Python's garbage collector in the long-running processes (serve, relay, workers).

Set once start-up is done. What start-up built (modules, routes, schemas, the caches'
first fill) lives as long as the process: frozen, a full collection no longer walks it.
And the youngest generation is collected after ``young_threshold`` allocations instead
of Python's 700: a projection host's poll keeps thousands of records, envelopes and
documents alive at once, so at 700 the collector kept walking them, promoting them and
walking them again in full collections, 13 % of the host's time while catching up
(``bench.kafka_profile --host``; ``docs/performance.md``). Garbage without cycles is
freed at once either way; only cyclic garbage waits for a collection.
"""

from __future__ import annotations

import gc


def settle_collector(young_threshold: int) -> None:
    """Freeze what exists now; collect the youngest generation every ``young_threshold``.

    ``young_threshold`` 0 keeps Python's thresholds (the freeze still happens).
    """
    gc.collect()
    gc.freeze()
    if young_threshold:
        _, middle, oldest = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, oldest)
