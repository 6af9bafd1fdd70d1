"""Project files: round trips, unknown keys kept, atomic saves, and every kind of bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from core.analysis import analyze
from core.project import (
    ProjectError,
    atomic_write_text,
    dumps_project,
    load_project,
    loads_project,
    project_to_dict,
    save_project,
)
from tests.conftest import ROOT

DEMO = ROOT / "resources" / "demo_lenet.json"


def _doc(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": "netcanvas-project", "version": 1, "name": "t",
        "graph": {
            "nodes": [
                {"id": "input", "type": "Input", "params": {"shape": [1, 28, 28]}},
                {"id": "conv1", "type": "Conv2d", "params": {"out_channels": 6, "kernel_size": 5, "padding": 2}},
                {"id": "flat", "type": "Flatten"},
                {"id": "fc", "type": "Linear", "params": {"out_features": 10}},
                {"id": "output", "type": "Output"},
            ],
            "edges": [{"from": "input", "to": "conv1"}, {"from": "conv1", "to": "flat"},
                      {"from": "flat", "to": "fc"}, {"from": "fc", "to": "output"}],
        },
        "layout": {"conv1": [120, 40]},
        "training": {},
    }
    doc.update(overrides)
    return doc


def _load(doc: Any) -> Any:
    return loads_project(json.dumps(doc))


def test_demo_round_trip(tmp_path: Path) -> None:
    p = load_project(DEMO)
    assert p.name == "LeNet-5 on Shapes"
    assert len(p.graph.nodes) == 14
    out = tmp_path / "demo.json"
    save_project(p, out)
    again = load_project(out)
    assert project_to_dict(again) == project_to_dict(p)
    assert analyze(again.graph).to_dict() == analyze(p.graph).to_dict()


def test_layout_and_unknown_keys_are_kept(tmp_path: Path) -> None:
    doc = _doc(future_feature={"a": [1, 2]})
    doc["graph"]["nodes"][1]["note"] = "kept"
    doc["graph"]["edges"][0]["style"] = "dashed"
    doc["graph"]["groups"] = [{"id": "features", "label": "Features", "nodes": ["conv1"], "color": "red"}]
    p = _load(doc)
    assert p.graph.nodes["conv1"].pos == (120.0, 40.0)
    data = json.loads(dumps_project(p))
    assert data["future_feature"] == {"a": [1, 2]}
    assert data["graph"]["nodes"][1]["note"] == "kept"
    assert data["graph"]["edges"][0]["style"] == "dashed"
    assert data["graph"]["groups"][0]["color"] == "red"
    assert data["layout"]["conv1"] == [120, 40]


def test_atomic_save_keeps_old_file_when_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "p.json"
    p = _load(_doc())
    save_project(p, target)
    before = target.read_bytes()

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    p.name = "changed"
    with pytest.raises(OSError):
        save_project(p, target)
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["p.json"]  # no temporary file left behind


@pytest.mark.skipif(os.name != "posix", reason="permission bits are POSIX")
def test_saved_files_follow_the_umask_and_keep_an_overwritten_files_mode(tmp_path: Path) -> None:
    # The temporary file behind an atomic save is created 0600; the saved file must not stay so.
    old = os.umask(0o027)
    try:
        target = tmp_path / "p.json"
        save_project(_load(_doc()), target)
        assert os.stat(target).st_mode & 0o777 == 0o640
        code = tmp_path / "net.py"
        atomic_write_text(code, "print('hi')\n")
        assert os.stat(code).st_mode & 0o777 == 0o640
        os.chmod(target, 0o604)  # the user's own choice survives a save over the file
        save_project(_load(_doc(name="again")), target)
        assert os.stat(target).st_mode & 0o777 == 0o604
        assert load_project(target).name == "again"
    finally:
        os.umask(old)


BAD: list[tuple[str, Any, str]] = [
    ("not an object", [1, 2], "must hold a JSON object"),
    ("wrong format", _doc(format="something-else"), "format: must be 'netcanvas-project'"),
    ("newer version", _doc(version=9), "version: version 9 was written by a newer NetCanvas"),
    ("version string", _doc(version="1"), "version: must be an integer"),
    ("nodes not list", _doc(graph={"nodes": {}, "edges": []}), "graph.nodes: must be a list"),
]


@pytest.mark.parametrize(("label", "doc", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_top_level(label: str, doc: Any, expected: str) -> None:
    with pytest.raises(ProjectError) as info:
        _load(doc)
    assert expected in str(info.value)


def _with_node(i: int, **changes: Any) -> dict[str, Any]:
    doc = _doc()
    doc["graph"]["nodes"][i].update(changes)
    return doc


NODE_BAD: list[tuple[str, dict[str, Any], str]] = [
    ("negative stride", _with_node(1, params={"out_channels": 6, "kernel_size": 5, "stride": -1}),
     "graph.nodes[1].params.stride: must be a positive integer, got -1"),
    ("string size", _with_node(1, params={"out_channels": "six"}),
     "graph.nodes[1].params.out_channels: must be a positive integer, got 'six'"),
    ("float channels", _with_node(1, params={"out_channels": 6.5}), "graph.nodes[1].params.out_channels"),
    ("bool as int", _with_node(1, params={"out_channels": True}), "got true"),
    ("unknown param", _with_node(1, params={"out_chanels": 6}), "Conv2d has no parameter 'out_chanels'"),
    ("kernel list length", _with_node(1, params={"kernel_size": [3, 3, 3]}), "a list of 2, got a list of 3"),
    ("id injection", _with_node(1, id="x; import os"), "graph.nodes[1].id"),
    ("id quote", _with_node(1, id='a"b'), "graph.nodes[1].id"),
    ("id newline", _with_node(1, id="a\nb"), "graph.nodes[1].id"),
    ("id cyrillic", _with_node(1, id="сonv1"), "graph.nodes[1].id"),
    ("id keyword", _with_node(1, id="class"), "keyword"),
    ("id number first", _with_node(1, id="0.conv"), "graph.nodes[1].id"),
    ("id not string", _with_node(1, id=5), "graph.nodes[1].id: must be a string"),
    ("duplicate id", _with_node(2, id="conv1"), "graph.nodes[2].id: duplicate node id 'conv1'"),
    ("type not string", _with_node(1, type=None), "graph.nodes[1].type"),
    ("frozen not bool", _with_node(1, frozen="yes"), "graph.nodes[1].frozen"),
    ("bad init", _with_node(1, init="magic"), "graph.nodes[1].init"),
    ("bad normal init", _with_node(1, init="normal(-1)"), "graph.nodes[1].init"),
    ("input shape negative", _with_node(0, params={"shape": [3, -2, 2]}), "graph.nodes[0].params.shape"),
    ("params not object", _with_node(1, params=[1]), "graph.nodes[1].params: must be an object"),
]


@pytest.mark.parametrize(("label", "doc", "expected"), NODE_BAD, ids=[b[0] for b in NODE_BAD])
def test_bad_nodes(label: str, doc: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProjectError) as info:
        _load(doc)
    assert expected in str(info.value)


def test_bad_edges_and_groups() -> None:
    doc = _doc()
    doc["graph"]["edges"].append({"from": "conv1", "to": "ghost"})
    with pytest.raises(ProjectError, match=r"graph.edges\[4\].to: no node with id 'ghost'"):
        _load(doc)
    doc = _doc()
    doc["graph"]["edges"].append({"from": "input", "to": "conv1", "port": 0})
    with pytest.raises(ProjectError, match=r"graph.edges\[4\]: conv1 already has an input on port 0"):
        _load(doc)
    # A second input without a port loads (the file is still editable) and analysis reports it.
    doc = _doc()
    doc["graph"]["edges"].append({"from": "input", "to": "conv1"})
    a = analyze(_load(doc).graph)
    assert any(d.node == "conv1" and "takes 1 input, but has 2" in d.message for d in a.errors)
    doc = _doc()
    doc["graph"]["edges"][0]["port"] = -1
    with pytest.raises(ProjectError, match=r"graph.edges\[0\].port: must be a non-negative integer"):
        _load(doc)
    doc = _doc()
    doc["graph"]["groups"] = [{"id": "g", "label": "G", "nodes": ["nope"]}]
    with pytest.raises(ProjectError, match=r"graph.groups\[0\].nodes\[0\]: no node or group with id 'nope'"):
        _load(doc)
    doc = _doc()
    doc["graph"]["groups"] = [{"id": "a", "label": "A", "nodes": ["b"]}, {"id": "b", "label": "B", "nodes": ["a"]}]
    with pytest.raises(ProjectError, match="contains itself"):
        _load(doc)
    doc = _doc(layout={"conv1": [1, "x"]})
    with pytest.raises(ProjectError, match=r"layout.conv1: must be \[x, y\]"):
        _load(doc)


def test_truncated_and_invalid_json(tmp_path: Path) -> None:
    text = DEMO.read_text()
    bad = tmp_path / "trunc.json"
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(ProjectError, match="not valid JSON"):
        load_project(bad)
    nan = tmp_path / "nan.json"
    nan.write_text(json.dumps(_doc()).replace("120", "NaN"))
    with pytest.raises(ProjectError, match="NaN"):
        load_project(nan)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ProjectError, match="not UTF-8"):
        load_project(binary)
    with pytest.raises(ProjectError, match="no such file"):
        load_project(tmp_path / "missing.json")
    with pytest.raises(ProjectError, match="is a folder"):
        load_project(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ProjectError):
        load_project(deep)


def test_unknown_type_loads_and_is_diagnosed() -> None:
    doc = _with_node(2, type="Flaten")
    p = _load(doc)
    a = analyze(p.graph)
    assert not a.ok
    msg = next(d.message for d in a.errors if d.node == "flat")
    assert "unknown layer type 'Flaten'" in msg and "did you mean Flatten" in msg
    assert a.nodes["fc"].out_shapes is None  # downstream of an error: unknown, no error of its own
    assert not [d for d in a.errors if d.node == "fc"]


def test_huge_linear_is_reported_not_allocated() -> None:
    doc = _doc()
    doc["graph"]["nodes"][3]["params"] = {"out_features": 1_000_000_000}
    p = _load(doc)
    a = analyze(p.graph)
    assert a.nodes["fc"].params == 6 * 28 * 28 * 1_000_000_000 + 1_000_000_000
    assert a.total_params > 10**12


def test_cycle_in_file_is_a_diagnostic_not_a_crash() -> None:
    doc = _doc()
    doc["graph"]["nodes"].insert(3, {"id": "add", "type": "Add"})
    doc["graph"]["edges"] = [
        {"from": "input", "to": "conv1"}, {"from": "conv1", "to": "add", "port": 0},
        {"from": "add", "to": "flat"}, {"from": "flat", "to": "fc"}, {"from": "fc", "to": "output"},
        {"from": "flat", "to": "add", "port": 1},
    ]
    p = _load(doc)
    a = analyze(p.graph)
    assert any("cycle" in d.message for d in a.errors)
