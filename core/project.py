"""Project files, format version 1 (DESIGN.md §4): load, validate, save atomically.

Loading treats the file as untrusted: it only parses JSON (nothing is ever executed or
imported from it), checks every field, and turns every defect into a :class:`ProjectError`
naming its place, e.g. ``graph.nodes[3].params.stride: must be a positive integer, got -1``.
A project is either loaded whole or not at all. Unknown keys (top level, nodes, edges, groups)
are kept and written back, so files from newer versions survive a round trip.

Saving writes a temporary file in the same folder, fsyncs it and renames it over the target:
a crash mid-save leaves the old file intact, and the next save of that file removes the
temporary file such a crash left behind. The file gets the permissions ``open()`` would give
(the umask's, or the overwritten file's), not the temporary file's 0600.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.graph import MAX_GROUP_DEPTH, Edge, Graph, GraphError, id_problem, lr_mult_problem
from core.layers.registry import canonical_type, get_spec
from core.layers.spec import ParamError

FORMAT = "netcanvas-project"
VERSION = 1
MAX_FILE_BYTES = 64 * 1024 * 1024  # a project is a few hundred KB; refuse absurd files early
MAX_NODES = 100_000
_NODE_KEYS = {"id", "type", "params", "frozen", "init", "lr_mult"}
_EDGE_KEYS = {"from", "to", "port", "from_port"}
_GROUP_KEYS = {"id", "label", "nodes", "collapsed"}
INIT_CHOICES = ("default", "kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform", "zeros")


class ProjectError(ValueError):
    """A project file that cannot be loaded; ``str()`` names the place and the problem."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.problem = message


@dataclass
class Project:
    """A loaded project: the graph plus everything else the file holds."""

    graph: Graph
    name: str = "Untitled"
    training: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # unknown top-level keys, kept verbatim
    path: Path | None = None


def init_problem(init: Any) -> str | None:
    """Why ``init`` is not a weight-initialisation name, or None. ``normal(std)`` takes a std > 0."""
    if not isinstance(init, str):
        return f"must be a string, got {_kind(init)}"
    if init in INIT_CHOICES:
        return None
    if init.startswith("normal(") and init.endswith(")"):
        try:
            std = float(init[7:-1])
        except ValueError:
            std = -1.0
        if math.isfinite(std) and std > 0:
            return None
        return f"normal(std) needs a positive number, got {init!r}"
    return f"must be one of {', '.join(INIT_CHOICES)} or normal(std), got {init!r}"


# -- loading ---------------------------------------------------------------------------------

def load_project(path: str | os.PathLike[str]) -> Project:
    """Read and validate a project file. Raises :class:`ProjectError` (never anything else)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ProjectError(f"file is {size // 1_048_576} MiB; a project file is at most "
                               f"{MAX_FILE_BYTES // 1_048_576} MiB", str(p))
        raw = p.read_bytes()
    except ProjectError:
        raise
    except FileNotFoundError:
        raise ProjectError("no such file", str(p)) from None
    except IsADirectoryError:
        raise ProjectError("is a folder, not a project file", str(p)) from None
    except OSError as exc:
        raise ProjectError(f"cannot read: {exc.strerror or exc}", str(p)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ProjectError(f"not UTF-8 text (byte {exc.start})", str(p)) from None
    project = loads_project(text, origin=str(p))
    project.path = p
    return project


def loads_project(text: str, origin: str = "<string>") -> Project:
    """Parse project JSON text; ``origin`` prefixes syntax-error messages."""
    odd: list[_OddNumber] = []

    def parse_int(literal: str) -> int | _OddNumber:
        # Python refuses to convert integers longer than its int/str digit limit (a ValueError
        # with no place); such a number is kept as a marker and refused below with its place.
        limit = sys.get_int_max_str_digits()
        if limit and len(literal) > limit:
            odd.append(_OddNumber(literal, f"an integer of {len(literal.lstrip('-'))} digits "
                                           f"(at most {limit} are allowed)"))
            return odd[-1]
        return int(literal)

    def parse_float(literal: str) -> float | _OddNumber:
        # 1e400 reads as infinity, which json would write back as ``Infinity``: a file that no
        # JSON reader, this one included, accepts. Refuse it here so a save can never produce one.
        value = float(literal)
        if not math.isfinite(value):
            odd.append(_OddNumber(literal, f"{_cut(literal)} is too large for a number"))
            return odd[-1]
        return value

    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_int=parse_int, parse_float=parse_float)
    except ProjectError as exc:
        raise ProjectError(exc.problem, origin) from None
    except json.JSONDecodeError as exc:
        raise ProjectError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", origin) from None
    except RecursionError:
        raise ProjectError("JSON nested too deeply", origin) from None
    except ValueError as exc:  # any other number json cannot convert: still one sentence
        raise ProjectError(f"not valid JSON: {exc}", origin) from None
    if odd:
        where = _place_of(data, odd[0])
        raise ProjectError(f"{odd[0].problem}; write a smaller number", where or origin)
    return project_from_dict(data)


class _OddNumber:
    """A number literal that cannot live in a project; stands in the decoded data to find its place."""

    def __init__(self, literal: str, problem: str) -> None:
        self.literal = literal
        self.problem = problem


def _place_of(data: Any, target: object) -> str:
    """The dotted path (``graph.nodes[3].params.x``) of ``target`` inside decoded JSON, or ``""``.

    Iterative: json already limited the depth, but this walk must not add a recursion of its own.
    """
    stack: list[tuple[Any, str]] = [(data, "")]
    while stack:
        value, where = stack.pop()
        if value is target:
            return where
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{_cut(str(k))}" if where else _cut(str(k))) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(value))
    return ""


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ProjectError(f"not valid JSON: {name} is not a number JSON allows")


def project_from_dict(data: Any) -> Project:
    """Validate a decoded JSON object and build a :class:`Project`."""
    if not isinstance(data, dict):
        raise ProjectError(f"the file must hold a JSON object, got {_kind(data)}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise ProjectError(f"must be {FORMAT!r}, got {fmt!r} — this is not a NetCanvas project", "format")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectError(f"must be an integer, got {_kind(version)}", "version")
    if version > VERSION:
        raise ProjectError(f"version {version} was written by a newer NetCanvas; this one reads up to {VERSION}",
                           "version")
    if version < 1:
        raise ProjectError(f"must be >= 1, got {version}", "version")
    name = data.get("name", "Untitled")
    if not isinstance(name, str):
        raise ProjectError(f"must be a string, got {_kind(name)}", "name")
    graph_data = data.get("graph", {"nodes": [], "edges": []})
    graph = graph_from_dict(graph_data, "graph")
    layout = data.get("layout", {})
    if not isinstance(layout, dict):
        raise ProjectError(f"must be an object mapping node ids to [x, y], got {_kind(layout)}", "layout")
    for key, pos in layout.items():
        where = f"layout.{key}"
        if key not in graph.nodes:
            continue  # positions of groups or removed nodes are harmless; keep the file loadable
        if (not isinstance(pos, list) or len(pos) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in pos)):
            raise ProjectError(f"must be [x, y] with two finite numbers, got {_short(pos)}", where)
        graph.nodes[key].pos = (float(pos[0]), float(pos[1]))
    training = data.get("training", {})
    if not isinstance(training, dict):
        raise ProjectError(f"must be an object, got {_kind(training)}", "training")
    extra = {k: v for k, v in data.items() if k not in {"format", "version", "name", "graph", "layout", "training"}}
    group_layout = {k: v for k, v in layout.items() if k not in graph.nodes}
    if group_layout:
        extra.setdefault("_layout_extra", group_layout)
    return Project(graph=graph, name=name, training=training, extra=extra)


def graph_from_dict(data: Any, where: str = "graph") -> Graph:
    """Build a :class:`Graph` from the ``graph`` object; raises :class:`ProjectError` with places."""
    if not isinstance(data, dict):
        raise ProjectError(f"must be an object with nodes and edges, got {_kind(data)}", where)
    nodes = data.get("nodes", [])
    edges = data.get("edges", [])
    groups = data.get("groups", [])
    for key, val in (("nodes", nodes), ("edges", edges), ("groups", groups)):
        if not isinstance(val, list):
            raise ProjectError(f"must be a list, got {_kind(val)}", f"{where}.{key}")
    if len(nodes) > MAX_NODES:
        raise ProjectError(f"has {len(nodes)} nodes; at most {MAX_NODES} are supported", f"{where}.nodes")
    g = Graph()
    for i, nd in enumerate(nodes):
        _load_node(g, nd, f"{where}.nodes[{i}]")
    for i, ed in enumerate(edges):
        _load_edge(g, ed, f"{where}.edges[{i}]")
    pending = []
    for i, gd in enumerate(groups):
        at = f"{where}.groups[{i}]"
        if not isinstance(gd, dict):
            raise ProjectError(f"must be an object, got {_kind(gd)}", at)
        gid = gd.get("id")
        problem = id_problem(gid)
        if problem:
            raise ProjectError(problem, f"{at}.id")
        assert isinstance(gid, str)  # id_problem refuses anything else
        if gid in g.nodes or gid in g.groups:
            raise ProjectError(f"duplicate id {gid!r} (already a node or a group)", f"{at}.id")
        label = gd.get("label", gid)
        if not isinstance(label, str) or len(label) > 200:
            raise ProjectError(f"must be a string of at most 200 characters, got {_short(label)}", f"{at}.label")
        members = gd.get("nodes", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ProjectError("must be a list of node or group ids", f"{at}.nodes")
        collapsed = gd.get("collapsed", False)
        if not isinstance(collapsed, bool):
            raise ProjectError(f"must be true or false, got {_short(collapsed)}", f"{at}.collapsed")
        extra = {k: v for k, v in gd.items() if k not in _GROUP_KEYS}
        g.add_group(gid, label, [], collapsed, extra)
        pending.append((gid, members, at))
    for gid, members, at in pending:
        for j, m in enumerate(members):
            if m not in g.nodes and m not in g.groups:
                raise ProjectError(f"no node or group with id {m!r}", f"{at}.nodes[{j}]")
        g.groups[gid].members = list(members)
    _check_group_nesting(g, where)
    return g


def _load_node(g: Graph, nd: Any, at: str) -> None:
    if not isinstance(nd, dict):
        raise ProjectError(f"must be an object, got {_kind(nd)}", at)
    nid = nd.get("id")
    problem = id_problem(nid)
    if problem:
        raise ProjectError(problem, f"{at}.id")
    if nid in g.nodes:
        raise ProjectError(f"duplicate node id {nid!r}", f"{at}.id")
    typ = nd.get("type")
    if not isinstance(typ, str) or not typ:
        raise ProjectError(f"must be a layer type name, got {_short(typ)}", f"{at}.type")
    if len(typ) > 100 or not typ.isascii() or not typ.replace("_", "a").isalnum():
        raise ProjectError(f"must be a layer type name (letters and digits), got {_short(typ)}", f"{at}.type")
    params = nd.get("params", {})
    if not isinstance(params, dict):
        raise ProjectError(f"must be an object, got {_kind(params)}", f"{at}.params")
    spec = get_spec(typ)
    if spec is not None:
        for key, value in params.items():
            try:
                spec.param(key)
            except KeyError:
                known = ", ".join(spec.param_names) or "none"
                raise ProjectError(f"{spec.type} has no parameter {key!r} (known: {known})",
                                   f"{at}.params.{key}") from None
            try:
                spec.param(key).validate(value)
            except ParamError as exc:
                raise ProjectError(str(exc), f"{at}.params.{key}") from None
    else:
        # An unknown type (newer file, typo) stays in the graph; analysis reports it. Its params
        # must still be plain JSON scalars/lists so nothing odd travels further.
        for key, value in params.items():
            if not _plain_json(value):
                raise ProjectError("must be a number, string, boolean or a list of those", f"{at}.params.{key}")
    frozen = nd.get("frozen", False)
    if not isinstance(frozen, bool):
        raise ProjectError(f"must be true or false, got {_short(frozen)}", f"{at}.frozen")
    init = nd.get("init", "default")
    problem = init_problem(init)
    if problem:
        raise ProjectError(problem, f"{at}.init")
    lr_mult = nd.get("lr_mult", 1.0)
    problem = lr_mult_problem(lr_mult)
    if problem:
        raise ProjectError(problem, f"{at}.lr_mult")
    extra = {k: v for k, v in nd.items() if k not in _NODE_KEYS}
    try:
        g.add_node(canonical_type(typ), nid, params, frozen=frozen, init=init, extra=extra, lr_mult=lr_mult)
    except GraphError as exc:  # pragma: no cover - ids were checked above
        raise ProjectError(str(exc), at) from None


def _load_edge(g: Graph, ed: Any, at: str) -> None:
    if not isinstance(ed, dict):
        raise ProjectError(f"must be an object with from and to, got {_kind(ed)}", at)
    src, dst = ed.get("from"), ed.get("to")
    for key, val in (("from", src), ("to", dst)):
        if not isinstance(val, str):
            raise ProjectError(f"must be a node id, got {_short(val)}", f"{at}.{key}")
        if val not in g.nodes:
            raise ProjectError(f"no node with id {val!r}", f"{at}.{key}")
    port = ed.get("port")
    from_port = ed.get("from_port", 0)
    for key, val in (("port", port), ("from_port", from_port)):
        if val is None and key == "port":
            continue
        if isinstance(val, bool) or not isinstance(val, int) or val < 0 or val > 10_000:
            raise ProjectError(f"must be a non-negative integer, got {_short(val)}", f"{at}.{key}")
    assert isinstance(src, str) and isinstance(dst, str)
    if g.nodes[src].type == "Output":  # the editor refuses this wire too (Graph.check_edge)
        raise ProjectError(f"{src} is an Output node and has no outputs to connect to {dst}", f"{at}.from")
    if port is None:
        port = g.free_port(dst)
    if any(e.port == port for e in g.in_edges(dst)):
        holder = next(e.src for e in g.in_edges(dst) if e.port == port)
        raise ProjectError(f"{dst} already has an input on port {port} (from {holder})", at)
    extra = {k: v for k, v in ed.items() if k not in _EDGE_KEYS}
    if extra:
        g.nodes[dst].extra.setdefault("_edge_extra", {})[str(port)] = extra
    # Cycles are not refused here: analysis reports them on the nodes, so the file still opens.
    g.insert_edge(Edge(src, dst, port, from_port))


def _check_group_nesting(g: Graph, where: str) -> None:
    parent: dict[str, str] = {}
    for gid, grp in g.groups.items():
        for m in grp.members:
            if m in parent and parent[m] != gid:
                raise ProjectError(f"{m!r} is in two groups ({parent[m]} and {gid})", f"{where}.groups")
            parent[m] = gid
    # Depth of each group (1 = not inside another group), each chain walked once: a file of
    # thousands of groups nested in one another stays linear, and a loop is found on the way.
    depth: dict[str, int] = {}
    for gid in g.groups:
        path: list[str] = []
        on_path: set[str] = set()
        cur: str | None = gid
        while cur is not None and cur not in depth:
            if cur in on_path:
                raise ProjectError(f"group {cur!r} contains itself", f"{where}.groups")
            path.append(cur)
            on_path.add(cur)
            cur = parent.get(cur)
        base = depth[cur] if cur is not None else 0
        for i, item in enumerate(reversed(path)):
            depth[item] = base + i + 1
    for i, gid in enumerate(g.groups):
        if depth[gid] > MAX_GROUP_DEPTH:
            raise ProjectError(f"group {gid!r} is nested {depth[gid]} levels deep; at most "
                               f"{MAX_GROUP_DEPTH} levels are supported", f"{where}.groups[{i}]")


# -- saving ----------------------------------------------------------------------------------

def graph_to_dict(g: Graph) -> dict[str, Any]:
    nodes = []
    for n in g.nodes.values():
        d: dict[str, Any] = {"id": n.id, "type": n.type}
        if n.params:
            d["params"] = n.params
        if n.frozen:
            d["frozen"] = True
        if n.init != "default":
            d["init"] = n.init
        if n.lr_mult != 1:  # written as the user reads it: 10, not 10.0
            d["lr_mult"] = int(n.lr_mult) if n.lr_mult.is_integer() and abs(n.lr_mult) < 1e15 else n.lr_mult
        d.update({k: v for k, v in n.extra.items() if k != "_edge_extra"})
        nodes.append(d)
    edges = []
    for dst in g.nodes:  # file order of destinations, then port: stable and diff-friendly
        extra = g.nodes[dst].extra.get("_edge_extra", {})
        for e in g.in_edges(dst):
            d = {"from": e.src, "to": e.dst}
            if e.port or len(g.in_edges(dst)) > 1:
                d["port"] = e.port
            if e.from_port:
                d["from_port"] = e.from_port
            d.update(extra.get(str(e.port), {}))
            edges.append(d)
    out: dict[str, Any] = {"nodes": nodes, "edges": edges}
    if g.groups:
        groups = []
        for grp in g.groups.values():
            d = {"id": grp.id, "label": grp.label, "nodes": list(grp.members)}
            if grp.collapsed:
                d["collapsed"] = True
            d.update(grp.extra)
            groups.append(d)
        out["groups"] = groups
    return out


def project_to_dict(project: Project) -> dict[str, Any]:
    g = project.graph
    layout = {n.id: [round(n.pos[0], 2), round(n.pos[1], 2)] for n in g.nodes.values() if n.pos is not None}
    extra = dict(project.extra)
    layout.update(extra.pop("_layout_extra", {}))
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": project.name,
                            "graph": graph_to_dict(g), "layout": layout, "training": project.training}
    data.update(extra)
    return data


def dumps_project(project: Project) -> str:
    return json.dumps(project_to_dict(project), indent=2, ensure_ascii=False) + "\n"


def save_project(project: Project, path: str | os.PathLike[str] | None = None) -> Path:
    """Write atomically (temp file in the same folder, fsync, rename). Returns the path."""
    target = Path(path) if path is not None else project.path
    if target is None:
        raise ValueError("save_project needs a path for a project that was never saved")
    atomic_write_text(target, dumps_project(project))
    project.path = target
    return target


def atomic_write_text(target: Path, text: str) -> None:
    """Write ``text`` to ``target`` so that readers see the old or the new file, never a part."""
    atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_bytes(target: Path, data: bytes) -> None:
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    remove_stale_temp_files(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        replace_file(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


# mkstemp's names: the prefix, 8 random characters from [a-z0-9_], the suffix.
_TEMP_RANDOM = r"[a-z0-9_]{8}"
STALE_TEMP_AGE_S = 60.0


def remove_stale_temp_files(target: str | os.PathLike[str], suffix: str = ".tmp",
                            older_than_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Delete the temporary files an earlier, killed write of ``target`` left next to it.

    Only names of our exact pattern (``.NAME.xxxxxxxx.tmp``) count, and only files untouched for
    ``older_than_s`` seconds: a write in progress in another process (an autosave, a second
    window) keeps its file. Returns what was removed; a file that cannot be removed is left.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    pattern = re.compile(rf"\.{re.escape(target.name)}\.{_TEMP_RANDOM}{re.escape(suffix)}")
    now = time.time()
    removed: list[Path] = []
    with contextlib.suppress(OSError):
        for path in folder.glob(f".{glob.escape(target.name)}.*{glob.escape(suffix)}"):
            if not pattern.fullmatch(path.name):
                continue
            with contextlib.suppress(OSError):
                info = path.lstat()
                if stat.S_ISREG(info.st_mode) and now - info.st_mtime > older_than_s:
                    path.unlink()
                    removed.append(path)
    return removed


def replace_file(tmp: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Rename the finished temporary file ``tmp`` over ``target`` with the permissions a plain
    ``open(target, "w")`` would have left: the old file's when overwriting, else ``0o666 & ~umask``.

    ``mkstemp`` creates its file 0600 whatever the umask, so without this every saved project and
    export would be private to its owner.
    """
    os.chmod(tmp, file_mode(target))
    os.replace(tmp, target)


def file_mode(target: str | os.PathLike[str]) -> int:
    """The permission bits for a file written to ``target`` (see :func:`replace_file`)."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # os.umask() can only be read by setting it, which races with threads creating files at the
    # same moment; Linux reports it in /proc, so set-and-restore is the fallback only.
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def new_project(graph: Graph | None = None, name: str = "Untitled",
                training: Mapping[str, Any] | None = None) -> Project:
    return Project(graph=graph or Graph(), name=name, training=dict(training or {}))


def _plain_json(value: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain_json(v, depth + 1) for v in value)
    return False


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if _plain_json(value) or isinstance(value, dict) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
