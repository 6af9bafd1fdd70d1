"""A GAN project's two networks: split one canvas into its generator and its discriminator.

A GAN project draws both networks on one canvas, each with its own ``Input`` and ``Output`` and no
wire between them (the training engine feeds the generator's images to the discriminator).
:func:`split_gan` finds the two weakly connected components and tells which is which:

1. a group whose id or label is ``generator`` / ``discriminator`` (any case) holding a component's
   nodes names it (the templates draw two labelled groups);
2. otherwise shapes decide: the generator's output shape is the other network's input shape, and
   the discriminator answers one value per sample (``()``, ``(1,)`` or ``(1, 1, 1)``).

Anything else (one network, three, a component with two Inputs, both readings possible) is a
:class:`GanGraphError` whose text is one sentence naming what and where.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from core.graph import Graph
from core.layers.spec import Shape, fmt_shape
from core.project import Project

ROLES = ("generator", "discriminator")


class GanGraphError(ValueError):
    """The graph is not two networks a GAN can train; ``str()`` is one sentence naming what and where."""


@dataclass(frozen=True)
class GanNetworks:
    """The two networks of a GAN graph, each a copy holding only its own nodes, edges and groups."""

    generator: Graph  # node ids unchanged, so checkpoints and probes name the canvas's nodes
    discriminator: Graph
    noise_shape: tuple[int, ...]  # the generator Input's shape, e.g. (100,) or (100, 1, 1)
    image_shape: tuple[int, ...]  # the discriminator Input's shape (C, H, W)


def split_gan(graph: Graph) -> GanNetworks:
    """Split ``graph`` into the generator and the discriminator (see the module docstring)."""
    comps = _components(graph)
    if len(comps) != 2:
        raise GanGraphError(
            f"a GAN needs exactly two separate networks (a generator and a discriminator) on the canvas, "
            f"this graph has {len(comps)}" + (f": {_describe(graph, comps)}" if len(comps) > 2 else ""))
    ends = [_ends(graph, c) for c in comps]
    roles = _roles_from_groups(graph, comps)
    shapes: dict[str, Shape | None] | None = None
    if roles is None:
        shapes = _shapes(graph)
        roles = _roles_from_shapes(graph, ends, shapes)
    gi, di = roles
    (g_in, g_out), (d_in, _) = ends[gi], ends[di]
    noise = input_shape(graph, g_in)
    image = input_shape(graph, d_in)
    shapes = shapes if shapes is not None else _shapes(graph)
    made = shapes.get(g_out)
    if made is not None and tuple(made) != image:
        raise GanGraphError(
            f"the generator's Output {g_out!r} makes {fmt_shape(made)} images but the discriminator's "
            f"Input {d_in!r} takes {fmt_shape(image)}: make them the same shape")
    return GanNetworks(_subgraph(graph, comps[gi]), _subgraph(graph, comps[di]), noise, image)


def is_gan_graph(graph: Graph) -> bool:
    """Whether :func:`split_gan` accepts ``graph`` (the CLI and export ask before choosing a network)."""
    try:
        split_gan(graph)
    except GanGraphError:
        return False
    return True


def network_project(project: Project, network: str) -> Project:
    """A project holding only ``network`` (``generator`` or ``discriminator``) of a GAN project: what
    ``main.py export --network`` writes. Its name says which network; it has no training section
    (one network of a GAN cannot train alone)."""
    if network not in ROLES:
        raise GanGraphError(f"the network must be generator or discriminator, got {network!r}")
    nets = split_gan(project.graph)
    graph = nets.generator if network == "generator" else nets.discriminator
    return Project(graph=graph, name=f"{project.name} {network.capitalize()}")


def _components(graph: Graph) -> list[set[str]]:
    """Weakly connected components in file order of their first node (union-find over the edges)."""
    parent = {n: n for n in graph.nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in graph.edges:
        a, b = find(e.src), find(e.dst)
        if a != b:
            parent[b] = a
    comps: dict[str, set[str]] = {}
    for n in graph.nodes:
        comps.setdefault(find(n), set()).add(n)
    return list(comps.values())


def _describe(graph: Graph, comps: list[set[str]]) -> str:
    firsts = [next(n for n in graph.nodes if n in c) for c in comps]
    shown = ", ".join(repr(n) for n in firsts[:4]) + (", …" if len(firsts) > 4 else "")
    return f"separate parts start at {shown}"


def _ends(graph: Graph, comp: set[str]) -> tuple[str, str]:
    """The component's one Input and one Output."""
    ins = [n for n in graph.nodes if n in comp and graph.nodes[n].type == "Input"]
    outs = [n for n in graph.nodes if n in comp and graph.nodes[n].type == "Output"]
    first = next(n for n in graph.nodes if n in comp)
    if len(ins) != 1 or len(outs) != 1:
        raise GanGraphError(
            f"each GAN network needs one Input and one Output, the network containing {first!r} has "
            f"{len(ins)} Input{'s' if len(ins) != 1 else ''} and {len(outs)} Output{'s' if len(outs) != 1 else ''}")
    return ins[0], outs[0]


def _roles_from_groups(graph: Graph, comps: list[set[str]]) -> tuple[int, int] | None:
    """(generator index, discriminator index) from groups named so, or ``None`` when none decides."""
    found: dict[str, int] = {}
    for grp in graph.groups.values():
        names = {grp.id.lower(), grp.label.strip().lower()}
        for role in ROLES:
            if role not in names:
                continue
            members = graph.group_nodes(grp.id)
            if not members:
                continue
            hit = {i for i, c in enumerate(comps) if c & set(members)}
            if len(hit) != 1:
                raise GanGraphError(f"the group {grp.id!r} ({role}) holds nodes of both networks: "
                                    f"keep each network's layers in its own group")
            i = hit.pop()
            if found.get(role, i) != i:
                raise GanGraphError(f"two groups named {role!r} hold different networks: keep one")
            found[role] = i
    if not found:
        return None
    g, d = found.get("generator"), found.get("discriminator")
    if g is not None and d is not None and g == d:
        raise GanGraphError(f"the groups named generator and discriminator hold the same network "
                            f"(the one containing {_first(graph, comps[g])!r})")
    if g is None:
        assert d is not None
        g = 1 - d
    if d is None:
        d = 1 - g
    return g, d


def _roles_from_shapes(graph: Graph, ends: list[tuple[str, str]],
                       shapes: dict[str, Shape | None]) -> tuple[int, int]:
    fits = []
    for gi, di in ((0, 1), (1, 0)):
        made, judged = shapes.get(ends[gi][1]), shapes.get(ends[di][1])
        image = input_shape(graph, ends[di][0])
        if made is not None and judged is not None and tuple(made) == image and _one_value(judged):
            fits.append((gi, di))
    if len(fits) == 1:
        return fits[0]
    what = "both networks could be either" if fits else (
        "neither network's output has the other's input shape with a one-value discriminator output")
    raise GanGraphError(f"cannot tell the generator from the discriminator ({what}): put each network "
                        f"in a group labelled Generator or Discriminator")


def _one_value(shape: Iterable[int]) -> bool:
    return math.prod(shape) == 1


def _shapes(graph: Graph) -> dict[str, Shape | None]:
    # Imported here: analysis pulls in every layer declaration, and only a split needs it.
    from core.analysis import analyze

    return {nid: r.output_shape for nid, r in analyze(graph).nodes.items()}


def input_shape(graph: Graph, node_id: str) -> tuple[int, ...]:
    """The per-sample shape an Input node feeds (its ``shape`` param, or the declaration's default)."""
    shape = graph.nodes[node_id].params.get("shape", [3, 32, 32])
    if isinstance(shape, int):
        return (shape,)
    return tuple(int(s) for s in shape)


def _first(graph: Graph, comp: set[str]) -> str:
    return next(n for n in graph.nodes if n in comp)


def _subgraph(graph: Graph, keep: set[str]) -> Graph:
    """A copy with only ``keep``'s nodes, their edges, and the groups that still hold something."""
    g = graph.copy()
    for nid in [n for n in g.nodes if n not in keep]:
        g.remove_node(nid)
    # Groups emptied by the removal go, innermost first, so a parent holding only them goes too.
    changed = True
    while changed:
        changed = False
        for gid in list(g.groups):
            grp = g.groups[gid]
            grp.members = [m for m in grp.members if m in g.nodes or m in g.groups]
            if not grp.members:
                del g.groups[gid]
                changed = True
    return g


__all__ = ["ROLES", "GanGraphError", "GanNetworks", "input_shape", "is_gan_graph", "network_project", "split_gan"]
