"""Open torch's native libraries on a worker thread without holding the interpreter lock.

``import torch`` loads libtorch_cpu (and, in a CUDA build, libtorch_cuda with its CUDA libraries)
through the dynamic loader, whose static initialisers (thousands of operator registrations) run for
0.3-0.5 s on a 2-core machine. Python's import machinery and ``ctypes.CDLL`` call ``dlopen`` holding
the interpreter lock, so a background import froze the GUI thread for that long. A call through a
ctypes *foreign function* releases the lock: :func:`open_torch_libraries` calls the C library's
``dlopen`` itself, with the flags torch's own import will use, so that import later finds the
libraries loaded and only binds its Python modules (each hold then lasts a few milliseconds).

torch's first-run warm-up (its optimizers import ``torch._dynamo``, which probes Triton) then loads
Triton's extension module, libtriton, whose LLVM initialisers held the lock another 40-50 ms: it is
opened here too, where installed.

Nothing changes for torch: a library already open is shared, and one that cannot be opened here is
left to torch's import, which opens it (or reports why) as before. Linux and macOS only; elsewhere
(and where ``dlopen`` is not reachable) this does nothing.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# In load order, with whether torch opens it globally: torch/__init__ opens libtorch_global_deps with
# RTLD_GLOBAL (it pulls in the CUDA runtime libraries); the others are dependencies of torch._C, which
# Python opens with its default flags (RTLD_NOW, local).
TORCH_LIBRARIES = (("torch_global_deps", True), ("torch_cpu", False), ("torch_cuda", False), ("torch", False))
# Extension modules, opened as Python's import opens them (RTLD_NOW, local): (package, path in it).
EXTENSIONS = (("triton", "_C/libtriton"),)

_lock = threading.Lock()
_opened: list[str] = []


def _suffix() -> str | None:
    if sys.platform.startswith("linux"):
        return ".so"
    if sys.platform == "darwin":
        return ".dylib"
    return None  # Windows loads DLLs otherwise; torch's import there is left as it is


def _dlopen() -> Callable[[bytes, int], int | None] | None:
    try:
        fn: Any = ctypes.CDLL(None).dlopen  # CDLL's functions release the interpreter lock while they run
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_void_p
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int]
    return fn


def package_dir(name: str) -> Path | None:
    """The folder of the installed top-level package ``name``, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def torch_library_dir() -> Path | None:
    """The folder of the installed torch's native libraries, found without importing torch."""
    folder = package_dir("torch")
    return None if folder is None else folder / "lib"


def open_torch_libraries() -> list[str]:
    """Open torch's native libraries without the interpreter lock (call on a worker thread, before
    ``import torch``); the names opened. Does nothing once torch is imported or the libraries are open."""
    with _lock:
        if _opened or "torch" in sys.modules:
            return list(_opened)
        suffix, folder, dlopen = _suffix(), torch_library_dir(), None
        if suffix is None or folder is None or not folder.is_dir():
            return []
        dlopen = _dlopen()
        if dlopen is None:
            return []
        for stem, is_global in TORCH_LIBRARIES:
            path = folder / f"lib{stem}{suffix}"
            if not path.is_file():
                continue  # a CPU-only build has no libtorch_cuda
            mode = os.RTLD_NOW | (os.RTLD_GLOBAL if is_global else os.RTLD_LOCAL)
            if not dlopen(os.fsencode(path), mode):
                return list(_opened)  # torch's import opens it and says why, if it must
            _opened.append(path.name)
        for package, stem in EXTENSIONS:
            if package in sys.modules:
                continue
            home = package_dir(package)
            extension = None if home is None else home / f"{stem}.so"  # extension modules are .so on macOS too
            if extension is not None and extension.is_file() \
                    and dlopen(os.fsencode(extension), os.RTLD_NOW | os.RTLD_LOCAL):
                _opened.append(extension.name)
        return list(_opened)


def release_free_memory() -> float:
    """Hand the C heap's free pages back to the system (glibc's ``malloc_trim``; elsewhere nothing);
    the seconds it took.

    A run's tensors are freed when it ends, but glibc keeps the pages: its threshold for giving large
    blocks their own mapping rises with each one freed, so later ones come from the heap, which only
    shrinks from its top. The editor's soak (300 runs in 10 minutes, issue 11) grew ~2 MB a run that
    way. Called at the end of each run, on the training thread (it releases the interpreter lock).
    """
    global _trim
    if _trim is None:
        try:
            _trim = ctypes.CDLL(None).malloc_trim
            _trim.argtypes = [ctypes.c_size_t]
            _trim.restype = ctypes.c_int
        except (OSError, AttributeError):  # not glibc
            _trim = False
    if _trim is False:
        return 0.0
    start = time.perf_counter()
    _trim(0)
    return time.perf_counter() - start


_trim: Any = None  # glibc's malloc_trim once looked up; False where there is none


__all__ = ["EXTENSIONS", "TORCH_LIBRARIES", "open_torch_libraries", "package_dir", "release_free_memory",
           "torch_library_dir"]
