"""``main.py train --task …`` and ``main.py evaluate`` on token data: a character-level language
model on a text file the test writes, a sequence classifier on the generated brackets set, and the
one-line usage errors of tasks and data that do not go together."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from core.cli import main
from core.project import Project, save_project
from core.training.data import open_dataset
from tests.core.test_training_tasks import T, classifier_graph, lm_graph

TEXT = ("the cat sat on the mat. the dog sat on the log. a bird sang in the tree and the cat watched it.\n" * 12)


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def text_lm(tmp_path: Path) -> tuple[Path, Path]:
    """A text file and a project whose Embedding and Linear have the file's character vocabulary."""
    text = tmp_path / "corpus.txt"
    text.write_text(TEXT, encoding="utf-8")
    vocab = open_dataset(f"text:{text}", task="language-model", seq_len=T).num_classes
    project = tmp_path / "lm.json"
    save_project(Project(graph=lm_graph(vocab), name="lm", training={}), project)
    return text, project


def test_language_model_on_a_text_file_json_lines(text_lm: tuple[Path, Path], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    text, project = text_lm
    run = tmp_path / "run"
    assert main(["train", str(project), "--task", "language-model", "--dataset", f"text:{text}", "--epochs", "2",
                 "--batch-size", "16", "--optimizer", "adam", "--lr", "0.02", "--device", "cpu", "--prompt", "the ",
                 "--temperature", "0.5", "--generate-length", "12", "--json", "--quiet", "--out", str(run)]) == 0
    captured = capsys.readouterr()
    lines = _json_lines(captured.out)  # stdout holds only the epoch objects
    assert [line["epoch"] for line in lines] == [1, 2]
    assert lines[1]["val_perplexity"] < lines[0]["val_perplexity"]
    for line in lines:
        assert line["generated"].startswith("the ") and len(line["generated"]) >= 4 + 12
    config = json.loads((run / "config.json").read_text())["training"]
    assert (config["task"], config["temperature"], config["generate_length"]) == ("language-model", 0.5, 12)
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert [float(r["val_perplexity"]) for r in rows] == pytest.approx([line["val_perplexity"] for line in lines])

    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["perplexity"] == pytest.approx(lines[1]["val_perplexity"], rel=1e-4)
    assert 0 < ev["token_accuracy"] <= 1 and ev["tokens"] > 0 and ev["epoch"] == 2
    assert not (run / "evaluation.json").exists()


def test_language_model_human_lines_show_perplexity_and_text(text_lm: tuple[Path, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    text, project = text_lm
    assert main(["train", str(project), "--task", "lm", "--dataset", f"text:{text}", "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--generate-length", "8", "--out", str(tmp_path / "r")]) == 0
    captured = capsys.readouterr()
    epoch, generated = captured.out.splitlines()
    assert epoch.startswith("epoch   1/1  train loss") and " val_ppl " in epoch and " tok/s " in epoch
    assert generated.startswith("  generated: ")
    assert "tokens, " in captured.err and "best validation perplexity" in captured.err


def test_sequence_classifier_on_brackets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = open_dataset("brackets", task="sequence-classification", seq_len=16, train_size=128, val_size=32)
    project = tmp_path / "seq.json"
    save_project(Project(graph=classifier_graph(data.vocab_size, data.num_classes, 16), name="seq", training={}),
                 project)
    # no --dataset: the task's first dataset (brackets), not the image default
    assert main(["train", str(project), "--task", "sequence-classification", "--train-size", "128", "--val-size",
                 "32", "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--json", "--quiet",
                 "--out", str(tmp_path / "r")]) == 0
    (line,) = _json_lines(capsys.readouterr().out)
    assert 0 <= line["val_acc"] <= 1 and "val_perplexity" not in line and "generated" not in line
    assert json.loads((tmp_path / "r" / "config.json").read_text())["training"]["dataset"] == "brackets"
    assert (tmp_path / "r" / "evaluation.json").is_file()  # classifiers keep their class table


@pytest.mark.parametrize(("args", "words"), [
    (["--task", "poetry"], "training.task: unknown task 'poetry'; use one of classification, language-model"),
    (["--task", "language-model", "--dataset", "shapes"], "language-model"),
    (["--task", "language-model", "--tokenize", "bytes"], "invalid choice: 'bytes'"),
    (["--task", "language-model", "--temperature", "0"], "training.temperature: must be a positive number"),
    (["--task", "language-model", "--generate-length", "-1"], "training.generate_length: must be"),
])
def test_task_usage_errors_exit_2(text_lm: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], words: str) -> None:
    _text, project = text_lm
    assert main(["train", str(project), *args, "--device", "cpu", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    if "--tokenize" not in args:  # argparse prints its usage line first; ours is one line
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_threads_sets_torchs_cpu_threads_for_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        run = tmp_path / "run"
        assert main(["train", "template:lstm-classifier", "--threads", "1", "--epochs", "1", "--train-size", "64",
                     "--val-size", "16", "--device", "cpu", "--quiet", "--out", str(run)]) == 0
        assert torch.get_num_threads() == 1
        assert json.loads((run / "config.json").read_text())["training"]["threads"] == 1
        capsys.readouterr()
        assert main(["train", "template:lstm-classifier", "--threads", "0", "--epochs", "1"]) == 2
        assert capsys.readouterr().err.strip() == "error: training.threads: must be a positive integer, got 0"
    finally:
        torch.set_num_threads(before)


def test_replace_head_fits_a_language_models_head_and_embedding_to_a_larger_vocabulary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "words.txt"
    text.write_text(" ".join(f"w{i % 40}" for i in range(3000)), encoding="utf-8")  # 40 words + <unk>
    assert main(["train", "template:rnn-lm", "--dataset", f"text:{text}", "--tokenize", "word"]) == 1  # 27 < 41
    assert "set linear.out_features to 41" in capsys.readouterr().err
    assert main(["train", "template:rnn-lm", "--dataset", f"text:{text}", "--tokenize", "word", "--replace-head",
                 "--epochs", "1", "--train-size", "2000", "--quiet", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "linear.out_features 27 → 41" in err and "resized the embedding: embedding.num_embeddings → 41" in err
    graph = json.loads((tmp_path / "run" / "graph.json").read_text())["graph"]
    params = {n["id"]: n.get("params", {}) for n in graph["nodes"]}
    assert params["embedding"]["num_embeddings"] == 41 and params["linear"]["out_features"] == 41
