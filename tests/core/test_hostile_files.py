"""Hostile project files (issue 11): each is refused in one sentence naming its place, or loads
and then saves a file that loads again. Nothing here may end in a traceback."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from core.analysis import analyze
from core.cli import main as main_cli
from core.graph import MAX_GROUP_DEPTH, CycleError, Edge, Graph, describe_cycle
from core.project import ProjectError, load_project, save_project
from core.units import count, human, human_bytes, json_safe


def _doc(**node_extra: Any) -> dict[str, Any]:
    return {
        "format": "netcanvas-project", "version": 1, "name": "hostile",
        "graph": {
            "nodes": [{"id": "input", "type": "Input", "params": {"shape": [1, 8, 8]}, **node_extra},
                      {"id": "output", "type": "Output"}],
            "edges": [{"from": "input", "to": "output"}],
        },
    }


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hostile.json"
    path.write_text(text, encoding="utf-8")
    return path


def _one_sentence(exc: ProjectError) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text and len(text) < 300
    return text


@pytest.mark.parametrize("literal", ["1" * 5000, "-" + "9" * 4301])
def test_integer_beyond_pythons_digit_limit_is_a_project_error_naming_its_place(tmp_path: Path,
                                                                               literal: str) -> None:
    text = json.dumps(_doc(note=[1, 2])).replace("[1, 2]", f"[1, {literal}]")
    with pytest.raises(ProjectError) as info:  # was a bare ValueError File › Open did not catch
        load_project(_write(tmp_path, text))
    msg = _one_sentence(info.value)
    assert msg.startswith("graph.nodes[0].note[1]: an integer of")
    assert "digits" in msg


def test_integer_digit_limit_also_guards_known_fields(tmp_path: Path) -> None:
    text = json.dumps(_doc()).replace('"version": 1', '"version": ' + "7" * 5000)
    with pytest.raises(ProjectError, match=r"^version: an integer of 5000 digits"):
        load_project(_write(tmp_path, text))


@pytest.mark.parametrize("literal", ["1e400", "-1e999"])
def test_number_too_large_for_a_float_is_refused_at_its_place(tmp_path: Path, literal: str) -> None:
    text = json.dumps(_doc(future={"scale": 0.5})).replace("0.5", literal)
    with pytest.raises(ProjectError) as info:  # was: loaded as infinity, saved as Infinity
        load_project(_write(tmp_path, text))
    assert _one_sentence(info.value) == (f"graph.nodes[0].future.scale: {literal} is too large for a number; "
                                         "write a smaller number")


def test_large_finite_numbers_in_unknown_keys_survive_load_save_load(tmp_path: Path) -> None:
    text = json.dumps(_doc(future={"scale": 0.5, "count": 7})).replace("0.5", "1e300").replace(
        ": 7", ": " + "9" * 4000)
    path = _write(tmp_path, text)
    project = load_project(path)
    saved = save_project(project, tmp_path / "again.json")
    assert "Infinity" not in saved.read_text(encoding="utf-8")
    again = load_project(saved)
    assert again.graph.nodes["input"].extra["future"] == {"scale": 1e300, "count": int("9" * 4000)}


def _nested_groups(levels: int) -> dict[str, Any]:
    """``g0`` holds ``g1`` holds ... ``g{levels-1}``, which holds the input node."""
    doc = _doc()
    groups = [{"id": f"g{i}", "label": f"G{i}", "nodes": [f"g{i + 1}"]} for i in range(levels - 1)]
    groups.append({"id": f"g{levels - 1}", "label": "inner", "nodes": ["input"]})
    doc["graph"]["groups"] = groups
    return doc


def test_groups_nested_a_thousand_deep_are_refused_naming_the_group(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(_nested_groups(1000)))
    with pytest.raises(ProjectError) as info:  # was: loaded, then group_nodes hit the recursion limit
        load_project(path)
    assert _one_sentence(info.value) == ("graph.groups[64]: group 'g64' is nested 65 levels deep; "
                                         f"at most {MAX_GROUP_DEPTH} levels are supported")


def test_groups_at_the_depth_limit_load_and_list_their_nodes(tmp_path: Path) -> None:
    project = load_project(_write(tmp_path, json.dumps(_nested_groups(MAX_GROUP_DEPTH))))
    assert project.graph.group_nodes("g0") == ["input"]


def test_group_nodes_walks_deep_nesting_without_recursion() -> None:
    g = Graph()
    g.add_node("Input", "a", {"shape": [3]})
    g.add_node("Output", "b")
    g.add_group("inner", "inner", ["b"])
    inner = "inner"
    for i in range(3000):  # far past Python's recursion limit
        g.add_group(f"g{i}", f"G{i}", [inner])
        inner = f"g{i}"
    g.groups[inner].members.insert(0, "a")
    assert g.group_nodes(inner) == ["a", "b"]


def test_counts_past_pythons_digit_limit_read_in_scientific_form() -> None:
    huge = 12345 * 10**4400
    assert count(61706) == "61,706" and count(None) == "?"
    assert count(huge) == "≈ 1.23e4404"  # f"{huge:,}" raised ValueError
    assert count(-(10**30)) == "≈ -1.00e30"
    assert count(99_999 * 10**20) == "≈ 1.00e25"  # 9.9999 rounds up to the next power of ten
    assert human(138_357_544) == "138.36 M" and human(huge, "MACs") == "≈ 1.23e4404 MACs"  # was OverflowError
    assert human_bytes(1_610_612_736) == "1.50 GiB" and human_bytes(4 * huge) == "≈ 4.94e4404 B"
    report = json_safe({"total_params": huge, "shapes": [(1, 3)], "ok": True})
    assert json.loads(json.dumps(report)) == {"total_params": "≈ 1.23e4404", "shapes": [[1, 3]], "ok": True}


def test_summary_of_an_absurd_network_is_written_not_a_traceback(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    big = 10**2200
    doc = _doc()
    doc["graph"]["nodes"][0]["params"]["shape"] = [big]
    doc["graph"]["nodes"].insert(1, {"id": "fc", "type": "Linear", "params": {"out_features": big}})
    doc["graph"]["edges"] = [{"from": "input", "to": "fc"}, {"from": "fc", "to": "output"}]
    path = _write(tmp_path, json.dumps(doc))
    assert main_cli(["summary", str(path), "--json"]) == 0
    line = capsys.readouterr().out
    assert json.loads(line)["total_params"] == "≈ 1.00e4400"
    assert main_cli(["summary", str(path)]) == 0
    table = capsys.readouterr().out
    assert "Total params:          ≈ 1.00e4400 (≈ 1.00e4400)" in table
    assert "MACs per sample:       ≈ 1.00e4400 (≈ 1.00e4400 MACs, ≈ 2.00e4400 FLOPs)" in table


def test_a_save_removes_the_temporary_files_a_killed_save_left(tmp_path: Path) -> None:
    target = tmp_path / "net.json"
    save_project(load_project(_write(tmp_path, json.dumps(_doc()))), target)
    stale = tmp_path / ".net.json.k3j_9x2a.tmp"  # what mkstemp names it; the kill left it here
    fresh = tmp_path / ".net.json.q7w8e9r0.tmp"  # another process writing right now
    foreign = [tmp_path / ".net.json.backup.tmp", tmp_path / ".other.json.k3j_9x2a.tmp",
               tmp_path / "net.json.k3j_9x2a.tmp"]
    for path in (stale, fresh, *foreign):
        path.write_text("half a file", encoding="utf-8")
    an_hour_ago = time.time() - 3600
    for path in (stale, *foreign):
        os.utime(path, (an_hour_ago, an_hour_ago))
    save_project(load_project(target))
    left = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in left  # was: every killed save left one more, forever
    assert {fresh.name, *(p.name for p in foreign)} <= set(left)
    assert load_project(target).name == "hostile"


def test_a_long_cycle_is_named_by_its_first_layers_and_length_not_listed_whole() -> None:
    g = Graph()
    g.add_node("Input", "input", {"shape": [4]})
    g.add_node("Add", "add")
    g.insert_edge(Edge("input", "add", 0))
    layers = 3000
    for i in range(layers):
        g.add_node("ReLU", f"r{i}")
    g.insert_edge(Edge("add", "r0", 0))
    for i in range(layers - 1):
        g.insert_edge(Edge(f"r{i}", f"r{i + 1}", 0))
    g.insert_edge(Edge(f"r{layers - 1}", "add", 1))
    message = next(d.message for d in analyze(g).diagnostics if "cycle" in d.message)
    # was: every layer of the cycle in one line (539 KB for 50,000 layers)
    assert message.startswith("the graph has a cycle: add → r0 → r1 → r2 → r3 → r4 → … → r2999 → add, "
                              "3,001 layers — remove one of these connections (e.g. r2999 → add)")
    assert len(message) < 300
    with pytest.raises(CycleError) as info:
        g.topo_order()
    assert len(str(info.value)) < 200 and str(info.value).endswith("3,001 layers")


def test_a_short_cycle_is_still_listed_whole() -> None:
    assert describe_cycle(["a", "b", "c"]) == "a → b → c → a"


def test_a_wire_out_of_an_output_is_refused_at_its_place() -> None:
    from core.project import ProjectError, project_from_dict

    data = {"format": "netcanvas-project", "version": 1, "name": "g",
            "graph": {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [3, 8, 8]}},
                                {"id": "b", "type": "Output"}, {"id": "c", "type": "ReLU"},
                                {"id": "output", "type": "Output"}],
                      "edges": [{"from": "input", "to": "b"}, {"from": "b", "to": "c"},
                                {"from": "c", "to": "output"}]}}
    with pytest.raises(ProjectError) as info:
        project_from_dict(data)
    assert str(info.value).endswith("graph.edges[1].from: b is an Output node and has no outputs to connect to c")
