"""One switch for the cyclic garbage collector, shared by everything that pauses it.

A collection that starts on a worker thread (importing torch, tracing a model, reading a big
project, laying out a graph) finalizes the GUI's dropped Qt wrappers on that thread, which Qt
answers with an abort. Each such job holds the collector off while it runs. Holds are counted, so
two overlapping jobs cannot switch it back on under each other (each saving and restoring
``gc.isenabled()`` on its own did exactly that when their lifetimes interleaved).
"""

from __future__ import annotations

import gc

_gc_holds = 0
_gc_was_enabled = False


def hold_gc() -> None:
    """Keep the cyclic collector off until :func:`release_gc` (call both on the GUI thread).

    Held while a background thread imports or warms up torch: its allocations would otherwise start
    collections on that thread, which finalize the GUI's dropped Qt wrappers there ("Timers cannot be
    started from another thread", and worse).
    """
    global _gc_holds, _gc_was_enabled
    if _gc_holds == 0:
        _gc_was_enabled = gc.isenabled()
        gc.disable()
    _gc_holds += 1


def release_gc() -> None:
    """End one :func:`hold_gc`; the collector runs again when the last hold ends."""
    global _gc_holds
    _gc_holds = max(0, _gc_holds - 1)
    if _gc_holds == 0 and _gc_was_enabled:
        gc.enable()


def release_gc_after_imports() -> None:
    """End one :func:`hold_gc` held while a worker imported modules, moving what the imports made to the
    oldest generation first (``gc.freeze`` then ``gc.unfreeze``: moved, not scanned). Left in the young
    generations, the first collections after the hold scanned all of torch, ~0.4 s each on the GUI thread;
    full collections still see (and can free) it."""
    gc.freeze()
    gc.unfreeze()
    release_gc()


__all__ = ["hold_gc", "release_gc", "release_gc_after_imports"]
