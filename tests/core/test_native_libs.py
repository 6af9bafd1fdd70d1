"""torch's native libraries opened on a worker thread without the interpreter lock (core.native_libs).

Each check runs in a fresh interpreter: the test process has imported torch already, and then the
function rightly does nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the pre-open is Linux/macOS only")

CHILD = r"""
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import core.native_libs as native

ticks, span = [], []
def work():
    span.append(time.perf_counter())
    span.append(native.open_torch_libraries())
    span.append(time.perf_counter())
thread = threading.Thread(target=work)
thread.start()
while thread.is_alive():  # the GUI thread's stand-in: it must run while the libraries open
    ticks.append(time.perf_counter())
    time.sleep(0.001)
start, opened, end = span
maps = open("/proc/self/maps").read()
import torch
print(json.dumps({
    "opened": opened,
    "mapped_before_import": [name for name in opened if name in maps],
    "ticks_inside": sum(start < t < end for t in ticks),
    "again": native.open_torch_libraries(),
    "works": float(torch.nn.functional.relu(torch.tensor([-1.0, 2.0])).sum()),
}))
"""


def _child() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], capture_output=True, text=True, timeout=240,
                         check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_libraries_open_before_the_import_without_the_lock_and_torch_still_works() -> None:
    got = _child()
    opened = got["opened"]
    assert isinstance(opened, list)
    assert "libtorch_cpu.so" in opened and "libtorch.so" in opened  # the big initialisers ran here
    assert got["mapped_before_import"] == opened  # really loaded, before torch's own import
    assert got["again"] == opened  # a second call opens nothing more
    assert got["works"] == 2.0  # torch's import used the libraries already open
    # libtorch_cpu's initialisers run for 0.2-0.5 s: with the lock released, the main thread kept ticking.
    ticks = got["ticks_inside"]
    assert isinstance(ticks, int) and ticks > 0


def test_nothing_is_opened_once_torch_is_imported() -> None:
    import torch  # noqa: F401  (the test process has it anyway)

    import core.native_libs as native

    before = list(native._opened)  # whatever an earlier preload in this process opened
    assert native.open_torch_libraries() == before
