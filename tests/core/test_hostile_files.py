"""Hostile project files (issue 11): each is refused in one sentence naming its place, or loads
and then saves a file that loads again. Nothing here may end in a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.project import ProjectError, load_project, save_project


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
