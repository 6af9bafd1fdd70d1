"""DCGAN templates: two labelled networks that split, compile, match a hand-written torch DCGAN,
start from DCGAN's N(0, 0.02) weights and carry the paper's training settings."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from core.analysis import analyze
from core.compiler import compile_graph
from core.gan_graph import split_gan
from core.project import dumps_project, loads_project
from core.sources import SourceError
from core.training.config import TrainConfig
from templates import build_template, list_templates

CASES = {"dcgan": ((3, 32, 32), "shapes"), "dcgan-mnist": ((1, 28, 28), "mnist")}


def torch_dcgan(image: tuple[int, int, int]) -> tuple[nn.Sequential, nn.Sequential]:
    """The DCGAN of the paper / PyTorch's tutorial, sized like the templates, written by hand."""
    c, h, _ = image
    if h == 32:
        g = nn.Sequential(
            nn.ConvTranspose2d(100, 256, 4, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(True),
            nn.ConvTranspose2d(64, c, 4, 2, 1, bias=False), nn.Tanh())
        d = nn.Sequential(
            nn.Conv2d(c, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.LeakyReLU(0.2, True),
            nn.Conv2d(256, 1, 4, 1, 0, bias=False), nn.Flatten())
    else:
        g = nn.Sequential(
            nn.ConvTranspose2d(100, 256, 7, 1, 0, bias=False), nn.BatchNorm2d(256), nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(True),
            nn.ConvTranspose2d(128, c, 4, 2, 1, bias=False), nn.Tanh())
        d = nn.Sequential(
            nn.Conv2d(c, 64, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
            nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2, True),
            nn.Conv2d(128, 1, 7, 1, 0, bias=False), nn.Flatten())
    return g, d


@pytest.mark.parametrize("name", sorted(CASES))
def test_template_is_two_labelled_networks_that_split(name: str) -> None:
    image, _ = CASES[name]
    project = build_template(name)
    a = analyze(project.graph)
    assert a.ok and list(a.diagnostics) == []  # two networks on one canvas raise no warning
    assert list(a.input_shapes) == [(100, 1, 1), image]
    assert list(a.output_shapes) == [image, (1,)]
    labels = {g.id: g.label for g in project.graph.groups.values()}
    assert labels["generator"] == "Generator" and labels["discriminator"] == "Discriminator"
    nets = split_gan(project.graph)
    assert nets.noise_shape == (100, 1, 1) and nets.image_shape == image
    assert all(n.startswith("generator.") or n == "noise" or n == "fake_image" for n in nets.generator.nodes)
    assert all(n.startswith("discriminator.") or n in ("image", "logit") for n in nets.discriminator.nodes)
    assert not any(n.type == "Sigmoid" for n in project.graph.nodes.values())  # BCE-with-logits
    info = next(i for i in list_templates() if i.name == name)
    assert info.input_shape == image and len(info.description) > 40


@pytest.mark.parametrize("name", sorted(CASES))
def test_networks_conform_to_a_hand_written_torch_dcgan(name: str) -> None:
    image, _ = CASES[name]
    nets = split_gan(build_template(name, width=64).graph)  # the usual DCGAN size, as the reference
    ours = [compile_graph(nets.generator, seed=0), compile_graph(nets.discriminator, seed=0)]
    theirs = torch_dcgan(image)
    for mine, ref in zip(ours, theirs, strict=True):
        mine_sd, ref_sd = mine.state_dict(), ref.state_dict()
        assert [tuple(v.shape) for v in mine_sd.values()] == [tuple(v.shape) for v in ref_sd.values()]
        ref.load_state_dict(dict(zip(ref_sd, mine_sd.values(), strict=True)))
    torch.manual_seed(1)
    z = torch.randn(4, 100, 1, 1)
    for m in (*ours, *theirs):
        m.train()  # batch statistics, as in a training step
    fake = ours[0](z)
    assert fake.shape == (4, *image) and fake.abs().max() <= 1
    torch.testing.assert_close(fake, theirs[0](z))
    logits = ours[1](fake)
    assert logits.shape == (4, 1)
    torch.testing.assert_close(logits, theirs[1](fake))


@pytest.mark.parametrize("name", sorted(CASES))
def test_dcgan_initialisation(name: str) -> None:
    project = build_template(name)
    convs = [n for n in project.graph.nodes.values() if n.type in ("Conv2d", "ConvTranspose2d")]
    assert convs and all(n.init == "normal(0.02)" and n.params.get("bias") is False for n in convs)
    nets = split_gan(project.graph)
    model = compile_graph(nets.generator, seed=3)
    weights = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(weights.mean().item()) < 0.002 and weights.std().item() == pytest.approx(0.02, rel=0.05)
    again = loads_project(dumps_project(project))  # the init is saved with the project
    assert all(again.graph.nodes[n.id].init == "normal(0.02)" for n in convs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_training_settings_are_the_papers(name: str) -> None:
    _, dataset = CASES[name]
    config = TrainConfig.from_dict(build_template(name).training)
    assert (config.task, config.dataset, config.optimizer) == ("gan", dataset, "adam")
    assert config.lr == 2e-4 and config.betas == (0.5, 0.999) and config.epochs >= 3
    assert config.batch_size in (64, 128) and config.extra == {}


@pytest.mark.parametrize("name", sorted(CASES))
def test_networks_stand_side_by_side_without_overlap(name: str) -> None:
    graph = build_template(name).graph
    g_nodes, d_nodes = graph.group_nodes("generator"), graph.group_nodes("discriminator")
    g_right = max(graph.nodes[n].pos[0] for n in g_nodes)
    assert all(graph.nodes[n].pos[0] >= g_right + 200 for n in d_nodes)
    assert min(graph.nodes[n].pos[1] for n in d_nodes) == min(graph.nodes[n].pos[1] for n in g_nodes) == 0
    for e in graph.edges:  # data flows down in both
        assert graph.nodes[e.src].pos[1] < graph.nodes[e.dst].pos[1]
    rows: dict[float, list[float]] = {}
    for node in graph.nodes.values():
        rows.setdefault(node.pos[1], []).append(node.pos[0])
    for xs in rows.values():
        xs.sort()
        assert all(b - a >= 200 for a, b in itertools.pairwise(xs))


def test_width_option_scales_both_networks() -> None:
    nets = split_gan(build_template("dcgan").graph)  # the default: CPU-sized
    g = [n.params["out_channels"] for n in nets.generator.nodes.values() if n.type == "ConvTranspose2d"]
    d = [n.params["out_channels"] for n in nets.discriminator.nodes.values() if n.type == "Conv2d"]
    assert g == [128, 64, 32, 3] and d == [32, 64, 128, 1]
    assert analyze(build_template("dcgan-mnist", width=16).graph).ok
    for bad in (0, 2000, 1.5, True):
        with pytest.raises(SourceError, match="DCGAN width must be an integer from 1 to 1024"):
            build_template("dcgan", width=bad)
