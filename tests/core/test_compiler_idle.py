"""An imported model whose forward computes a branch it never returns (issue 12): the branch
reaches no Output, yet its weights are the source's, so the compiled model and the exported file
keep them (idle) and the source's state_dict loads with strict=True; parameters, trainable
parameters, keys and outputs match the source, and the MACs leave the idle branch out."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from core.analysis import Severity, analyze
from core.compiler import compile_graph, idle_layers
from core.export import python_source


class AuxBranch(nn.Module):
    """A classifier with an auxiliary head computed in forward but not returned (a training-only
    head left in an inference forward), one of its layers frozen."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.aux = nn.Linear(8, 3)
        self.aux_bn = nn.BatchNorm1d(3)
        self.aux_bn.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.flatten(self.pool(torch.relu(self.conv(x))), 1)
        self.aux_bn(self.aux(h))  # computed and dropped
        return self.fc(h)


def test_an_imported_dead_branch_keeps_the_sources_weights(tmp_path: Path) -> None:
    from core.importer import import_with_weights

    source = AuxBranch().eval()
    with torch.no_grad():
        source.aux_bn.running_mean.uniform_(-1, 1)
    graph, state = import_with_weights(source, (3, 8, 8))
    a = analyze(graph)
    assert a.ok
    (warning,) = [d for d in a.diagnostics if d.severity is Severity.WARNING]
    assert "the weights of aux and aux_bn are kept but do not run" in warning.message
    assert a.total_params == sum(p.numel() for p in source.parameters())
    assert a.trainable_params == sum(p.numel() for p in source.parameters() if p.requires_grad)
    assert a.buffers == sum(b.numel() for b in source.buffers())
    assert a.macs == 3 * 8 * 9 * 64 + 8 * 5  # conv + fc: the idle aux Linear is not counted

    compiled = compile_graph(graph)
    assert sorted(idle_layers(compiled)) == ["aux", "aux_bn"]
    assert sorted(compiled.state_dict()) == sorted(source.state_dict())
    compiled.load_state_dict(source.state_dict(), strict=True)
    compiled.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), source(x))
    trainable = {k for k, p in compiled.named_parameters() if p.requires_grad}
    assert trainable == {k for k, p in source.named_parameters() if p.requires_grad}

    path = tmp_path / "aux.py"
    path.write_text(python_source(graph, "Aux"))
    spec = importlib.util.spec_from_file_location("aux_export", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    exported: nn.Module = mod.Aux().eval()
    exported.load_state_dict(source.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), source(x))
    assert state.keys() == source.state_dict().keys()
