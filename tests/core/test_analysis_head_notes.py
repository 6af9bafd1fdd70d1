"""The "receptive field smaller than the input" note belongs to the head (issue 12): a
squeeze-excitation branch's global pooling is multiplied back onto the feature map, so its field
being smaller than the image says nothing about what the classifier sees (EfficientNet-B0 had
nine such notes, MobileNetV3-Small four)."""

from __future__ import annotations

from core.analysis import Analysis, Analyzer, Severity, analyze
from core.graph import Graph


def se_net(output: bool = True) -> Graph:
    """conv → SE (pool → 1×1 conv → sigmoid, multiplied back) → head (pool → flatten → linear)."""
    g = Graph()
    g.add_node("Input", "input", {"shape": [3, 32, 32]})
    for nid, typ, params in [("conv", "Conv2d", {"out_channels": 8, "padding": 1}),
                             ("se.pool", "AdaptiveAvgPool2d", {"output_size": 1}),
                             ("se.fc", "Conv2d", {"out_channels": 8, "kernel_size": 1}), ("se.gate", "Sigmoid", {}),
                             ("mul", "Multiply", {}), ("pool", "AdaptiveAvgPool2d", {"output_size": 1}),
                             ("flatten", "Flatten", {}), ("fc", "Linear", {"out_features": 10})]:
        g.add_node(typ, nid, params)
    for src, dst in [("input", "conv"), ("conv", "se.pool"), ("se.pool", "se.fc"), ("se.fc", "se.gate"),
                     ("conv", "mul"), ("se.gate", "mul"), ("mul", "pool"), ("pool", "flatten"), ("flatten", "fc")]:
        g.add_edge(src, dst)
    if output:
        g.add_node("Output", "output")
        g.add_edge("fc", "output")
    return g


def notes(a: Analysis) -> list[str | None]:
    return [d.node for d in a.diagnostics if d.severity is Severity.INFO and "smaller than" in d.message]


def test_only_the_head_gets_the_note_not_the_squeeze_branch() -> None:
    a = analyze(se_net())
    assert a.ok
    assert notes(a) == ["pool"]
    assert a.nodes["se.pool"].rf is not None and a.nodes["se.pool"].rf.is_global


def test_the_note_follows_edits_in_an_incremental_analysis() -> None:
    g = se_net()
    analyzer = Analyzer(g)
    assert notes(analyzer.run()) == ["pool"]
    g.set_param("conv", "kernel_size", 5)  # a parameter edit: recomputed incrementally
    g.set_param("conv", "padding", 2)
    assert notes(analyzer.run()) == ["pool"]
    g.set_param("input", "shape", [3, 5, 5])  # the field now covers the input: no note anywhere
    assert notes(analyzer.run()) == []
    g.set_param("input", "shape", [3, 32, 32])
    assert notes(analyzer.run()) == ["pool"]
    assert analyzer.run().to_dict() == analyze(g).to_dict()


def test_an_error_after_the_head_keeps_its_note() -> None:
    g = se_net()
    g.set_param("fc", "in_features", 3)  # fc refuses the 8 features: it and the Output get unknown shapes
    a = analyze(g)
    assert not a.ok and notes(a) == ["pool"]


def test_while_no_output_exists_every_global_layer_keeps_its_note() -> None:
    assert notes(analyze(se_net(output=False))) == ["se.pool", "pool"]


def test_mobilenet_v3_small_has_no_squeeze_notes_and_keeps_the_head_note() -> None:
    from core.importer import import_torchvision

    project = import_torchvision("mobilenet_v3_small")
    g = project.graph
    a = analyze(g)
    assert a.ok and notes(a) == []  # four SE blocks at 224 px: none of them is the head
    # at 1024 px the head's field (639 px) no longer covers the image: that one note, on the head's pool
    g.set_param("input", "shape", [3, 1024, 1024])
    a = analyze(g)
    assert notes(a) == ["avgpool"]
    assert a.nodes["avgpool"].rf is not None and a.nodes["avgpool"].rf.is_global
