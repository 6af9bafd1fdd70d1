"""Killing the process in the middle of a save leaves the old file or the new one, never a mix.

A child process saves one project over and over (``save_project``: temp file, fsync, rename),
each save a new version (the name says which) and says so on stdout once the save returned.
The test SIGKILLs it at seeded random moments; after each kill the file must load and be exactly
the version last reported saved or the one after it (the save in flight when the kill came).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import templates
from core.project import dumps_project, load_project, project_to_dict, save_project
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")

KILLS = 6

# The child: versions are the template project with the name "v<N>"; the text of each version is
# the same dumps_project output the test rebuilds for comparison.
CHILD = """
import sys
from core.project import project_from_dict, save_project
import json
base = json.loads(sys.stdin.read())
start, path = int(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
n = start
while True:
    base["name"] = f"v{n}"
    save_project(project_from_dict(base), path)
    print(n, flush=True)
    n += 1
"""


def _version_text(base: dict, n: int) -> str:
    from core.project import project_from_dict

    data = dict(base, name=f"v{n}")
    return dumps_project(project_from_dict(data))


def test_a_killed_save_leaves_the_old_file_or_the_new_one(tmp_path: Path) -> None:
    project = templates.build_template("resnet18_cifar")  # a few hundred KB: a kill can land inside a write
    base = project_to_dict(project)
    target = tmp_path / "net.json"
    project.name = "v0"
    save_project(project, target)
    rng = random.Random(11)
    current = 0
    checked = 0
    for _ in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(current + 1), str(target)], cwd=ROOT,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(base))
        child.stdin.close()
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.3))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        reported = [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        done = reported[-1] if reported else current  # the last save that returned
        loaded = load_project(target)
        text = target.read_text(encoding="utf-8")
        assert loaded.name in (f"v{done}", f"v{done + 1}"), (loaded.name, done)
        n = int(loaded.name[1:])
        assert text == _version_text(base, n)  # whole, byte for byte: not a mix of two versions
        checked += 1
        current = n
    assert checked == KILLS and current > 0  # the child did save between kills
    # only the file itself and temp files of its own pattern (killed mid-write) are in the folder
    leftovers = {p.name for p in tmp_path.iterdir()} - {"net.json"}
    assert all(name.startswith(".net.json.") and name.endswith(".tmp") for name in leftovers), leftovers
