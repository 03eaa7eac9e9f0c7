"""The garbage collector's share of a streaming server's pauses.

A full collection walks every object the process tracks. After start-up that is
hundreds of thousands of them (the libraries, the models' catalogue, SQLAlchemy's
compiled statements), and on the benchmark host each full collection of a server
under 100 streams took 23-165 ms: a pause every stream saw at once, as the largest
gaps between its chunks. What start-up built lives as long as the process, so it is
moved out of the collector's sight once the app is up (`gc.freeze`): later
collections walk only what came after. Only a process that serves and nothing else
does it (`vedika serve`, `vedika.asgi:app`): a test suite that builds apps in its own
process keeps its heap as it is.

Measured at 100 streams on one core (`bench.level 100`, three alternated runs each,
docs/benchmarks/README.md): the largest gap between two chunks of any stream 62-72 ms
frozen against 198-268 ms not; the gaps' p99 and the CPU per chunk unchanged within
noise. A larger first threshold (20,000) traded the few full collections for young
ones of ~20 ms each and no smaller maximum, so the thresholds stay Python's. What the
collector still walks should stay small: objects kept by the thousand for minutes
belong out of its sight (the hub's `Entry`, vedika.scale.hub).
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect start-up's garbage, then freeze what is left (called once it is up)."""
    gc.collect()
    gc.freeze()
