"""SOURCE kinds come from a registry in core: ``main.py`` registers the templates, core knows none.

The subprocess tests start from ``main.py``'s ``main`` in a fresh interpreter, as a user does, so they
fail if the entry point stops registering ``template:`` (the test session itself imports the templates
in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.project import Project, ProjectError
from core.sources import SourceError, list_sources, load_source, register_source, source_kind
from tests.conftest import ROOT

# One fresh interpreter runs main.main for each command line in turn (each new interpreter re-imports
# torch: seconds apiece) and prints, per command, its exit code and what it wrote, as JSON. Nothing
# imports the templates before main.main does.
_CALLS = (("summary", "template:lenet5", "--json"), ("templates", "--json"), ("summary", "template:vgg61"))
_SCRIPT = """
import contextlib, io, json, sys
import main
results = []
for args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main.main(args)
    results.append([args, code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def _entry_point_runs() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, json.dumps(_CALLS)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    return {tuple(args): subprocess.CompletedProcess(args, code, out, err)
            for args, code, out, err in json.loads(done.stdout)}


def test_main_registers_templates_for_the_command_line(_entry_point_runs) -> None:  # type: ignore[no-untyped-def]
    out = _entry_point_runs[("summary", "template:lenet5", "--json")]
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[0])["source"] == "template:lenet5"
    listed = _entry_point_runs[("templates", "--json")]
    assert listed.returncode == 0, listed.stderr
    names = [json.loads(line)["name"] for line in listed.stdout.splitlines()]
    assert "vgg16" in names and "resnet18" in names


def test_a_bad_template_is_one_line_and_exit_2(_entry_point_runs) -> None:  # type: ignore[no-untyped-def]
    out = _entry_point_runs[("summary", "template:vgg61")]
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.splitlines()) == 1, out.stderr
    assert out.stderr.startswith("error: template:vgg61: no template named 'vgg61'; did you mean ")
    assert "templates: lenet5, mlp, alexnet" in out.stderr


def test_core_alone_knows_no_templates() -> None:
    """Without ``templates`` imported, ``template:NAME`` is not a kind core resolves and the list
    of templates is refused in one line: core never reaches up for them."""
    code = ("import sys\nfrom core.sources import SourceError, list_sources, source_kind\n"
            "assert source_kind('template') is None and source_kind('torchvision') is not None\n"
            "try:\n    list_sources('template')\nexcept SourceError as exc:\n    print(exc)\n"
            "print('templates' in sys.modules, 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["there is no list of template: sources; kinds with a list: none",
                                       "False False"]


def test_a_registered_kind_resolves_its_names() -> None:
    made: list[str] = []

    def resolve(name: str) -> Project:
        made.append(name)
        if name != "tiny":
            raise SourceError(f"no tiny model named {name!r}")
        return load_source(str(ROOT / "resources" / "demo_lenet.json"))

    register_source("tinytest", resolve)
    try:
        assert load_source("tinytest:tiny").graph.nodes
        with pytest.raises(SourceError, match="no tiny model named 'big'"):
            load_source("tinytest:big")
        assert made == ["tiny", "big"]
        with pytest.raises(SourceError, match="no list of tinytest: sources"):
            list_sources("tinytest")
    finally:
        from core import sources

        sources._KINDS.pop("tinytest")
    with pytest.raises(ProjectError):  # an unknown kind is a file name, as before
        load_source("tinytest:tiny")


def test_one_letter_kinds_are_refused_so_windows_drives_stay_paths() -> None:
    with pytest.raises(ValueError, match="two letters or more"):
        register_source("C", load_source)
    assert [info.name for info in list_sources("template")][:2] == ["lenet5", "mlp"]
    assert source_kind("template") is not None
