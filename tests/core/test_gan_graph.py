"""split_gan: a GAN canvas into its generator and discriminator; the sample grid's picture and PNG."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from core.gan_graph import GanGraphError, is_gan_graph, split_gan
from core.graph import Graph
from core.training.gan_sample import GAP, GAP_VALUE, grid_image, save_grid, to_uint8


def _chain(g: Graph, prefix: str, in_shape: list[int], out_features: int) -> list[str]:
    ids = [f"{prefix}_in", f"{prefix}_fc", f"{prefix}_act", f"{prefix}_out"]
    g.add_node("Input", ids[0], {"shape": in_shape})
    g.add_node("Linear", ids[1], {"out_features": out_features})
    g.add_node("Tanh", ids[2])
    g.add_node("Output", ids[3])
    for a, b in itertools.pairwise(ids):
        g.add_edge(a, b)
    return ids


def _gan(groups: bool = True, d_first: bool = False) -> Graph:
    g = Graph()
    if d_first:
        d = _chain(g, "disc", [12], 1)
        gen = _chain(g, "gen", [8], 12)
    else:
        gen = _chain(g, "gen", [8], 12)
        d = _chain(g, "disc", [12], 1)
    if groups:
        g.add_group("generator", "Generator", gen)
        g.add_group("discriminator", "Discriminator", d)
    return g


def test_split_by_groups_keeps_ids_edges_and_groups():
    g = _gan()
    nets = split_gan(g)
    assert set(nets.generator.nodes) == {"gen_in", "gen_fc", "gen_act", "gen_out"}
    assert set(nets.discriminator.nodes) == {"disc_in", "disc_fc", "disc_act", "disc_out"}
    assert [(e.src, e.dst) for e in nets.generator.edges] == [("gen_in", "gen_fc"), ("gen_fc", "gen_act"),
                                                             ("gen_act", "gen_out")]
    assert list(nets.generator.groups) == ["generator"]
    assert list(nets.discriminator.groups) == ["discriminator"]
    assert nets.noise_shape == (8,)
    assert nets.image_shape == (12,)
    assert len(g.nodes) == 8 and len(g.groups) == 2  # the original is untouched


def test_split_by_shapes_without_groups_in_either_order():
    for d_first in (False, True):
        nets = split_gan(_gan(groups=False, d_first=d_first))
        assert "gen_fc" in nets.generator.nodes and "disc_fc" in nets.discriminator.nodes
        assert nets.noise_shape == (8,)


def test_group_label_decides_case_insensitively_and_one_group_is_enough():
    g = _gan(groups=False)
    # the shapes say gen is the generator; a label naming disc "GENERATOR" wins over the shapes
    g.add_group("net_a", "GENERATOR", ["disc_in", "disc_fc"])
    with pytest.raises(GanGraphError, match="makes 1 images but"):
        split_gan(g)  # but then the "generator" makes 1 value, not the other's 8-input: refused


def test_nested_group_names_the_network():
    g = _gan(groups=False)
    g.add_group("inner", "Body", ["disc_fc", "disc_act"])
    g.add_group("critic", "Discriminator", ["inner"])
    nets = split_gan(g)
    assert "disc_fc" in nets.discriminator.nodes
    assert set(nets.discriminator.groups) == {"inner", "critic"}


@pytest.mark.parametrize("build, message", [
    (lambda g: _chain(g, "only", [8], 1), "exactly two separate networks.*has 1"),
    (lambda g: [_chain(g, p, [4], 4) for p in ("a", "b", "c")], "has 3: separate parts start at 'a_in'"),
])
def test_wrong_number_of_networks(build, message):
    g = Graph()
    build(g)
    with pytest.raises(GanGraphError, match=message):
        split_gan(g)
    assert not is_gan_graph(g)


def test_network_with_two_inputs_is_refused():
    g = _gan()
    g.add_node("Input", "extra_in", {"shape": [12]})
    g.add_node("Add", "mix")
    g.add_edge("gen_fc", "mix")
    g.add_edge("extra_in", "mix")
    with pytest.raises(GanGraphError, match="one Input and one Output, the network containing 'gen_in' has 2 Inputs"):
        split_gan(g)


def test_group_spanning_both_networks_is_refused():
    g = _gan(groups=False)
    g.add_group("generator", "G", ["gen_fc", "disc_fc"])
    with pytest.raises(GanGraphError, match=r"'generator' .*holds nodes of both networks"):
        split_gan(g)


def test_ambiguous_shapes_are_refused_with_the_fix():
    g = Graph()
    _chain(g, "a", [1], 1)
    _chain(g, "b", [1], 1)
    with pytest.raises(GanGraphError, match=r"both networks could be either.*labelled Generator or Discriminator"):
        split_gan(g)
    g2 = Graph()
    _chain(g2, "a", [8], 5)
    _chain(g2, "b", [12], 3)
    with pytest.raises(GanGraphError, match="neither network"):
        split_gan(g2)


def test_mismatched_image_shape_with_groups_names_both_ends():
    g = Graph()
    gen = _chain(g, "gen", [8], 10)
    d = _chain(g, "disc", [12], 1)
    g.add_group("generator", "Generator", gen)
    g.add_group("discriminator", "Discriminator", d)
    with pytest.raises(GanGraphError,
                       match="'gen_out' makes 10 images but the discriminator's Input 'disc_in' takes 12"):
        split_gan(g)


def test_grid_layout_gaps_and_grey_to_rgb():
    imgs = torch.stack([torch.full((1, 4, 5), 10 * (i + 1), dtype=torch.uint8) for i in range(5)])
    grid = grid_image(imgs)  # 5 images → 3 per row, 2 rows
    assert grid.shape == (2 * 4 + GAP, 3 * 5 + 2 * GAP, 3) and grid.dtype == torch.uint8
    assert grid[0, 0].tolist() == [10, 10, 10]
    assert grid[0, 5 + GAP].tolist() == [20, 20, 20]  # second tile after the gap
    assert grid[0, 5].tolist() == [GAP_VALUE] * 3  # the gap
    assert grid[4 + GAP, 5 + GAP].tolist() == [50, 50, 50]  # image 5: row 2, column 2
    assert grid[-1, -1].tolist() == [GAP_VALUE] * 3  # the unused last cell stays grey
    assert grid_image(imgs, nrow=5).shape == (4, 5 * 5 + 4 * GAP, 3)
    assert grid_image(imgs, nrow=50).shape == (4, 5 * 5 + 4 * GAP, 3)  # never wider than n


def test_grid_keeps_rgb_channels_in_place():
    img = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    img[0, 0] = 200
    img[0, 2] = 7
    assert grid_image(img)[1, 1].tolist() == [200, 0, 7]


@pytest.mark.parametrize("images, message", [
    (torch.zeros(0, 3, 4, 4, dtype=torch.uint8), "no images"),
    (torch.zeros(2, 2, 4, 4, dtype=torch.uint8), "1 or 3 channels"),
    (torch.zeros(2, 3, 4, 4), "uint8"),
    (torch.zeros(3, 4, 4, dtype=torch.uint8), r"\(n, C, H, W\)"),
])
def test_grid_refuses_bad_images(images, message):
    with pytest.raises(ValueError, match=message):
        grid_image(images)


def test_save_grid_writes_the_png_atomically(tmp_path):
    imgs = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    target = save_grid(imgs, tmp_path / "samples" / "epoch_001.png", nrow=3)
    with Image.open(target) as im:
        assert im.mode == "RGB" and im.size == (3 * 8 + 2 * GAP, 2 * 8 + GAP)
        assert torch.equal(torch.tensor(np.array(im)), grid_image(imgs, 3))
    assert [p.name for p in target.parent.iterdir()] == ["epoch_001.png"]  # no temporary file left


def test_to_uint8_maps_tanh_range():
    assert to_uint8(torch.tensor([-1.0, 0.0, 1.0, 2.0])).tolist() == [0, 128, 255, 255]


def test_network_project_holds_one_network_and_no_training():
    from core.gan_graph import network_project
    from core.project import Project

    project = Project(_gan(), name="Toy GAN", training={"task": "gan"})
    gen = network_project(project, "generator")
    assert gen.name == "Toy GAN Generator" and gen.training == {}
    assert set(gen.graph.nodes) == {"gen_in", "gen_fc", "gen_act", "gen_out"}
    with pytest.raises(GanGraphError, match="generator or discriminator, got 'critic'"):
        network_project(project, "critic")
