"""Layer declarations and their registry.

Importing this package registers every built-in layer type. Each submodule declares one
family (convolutions, pooling, …); see :mod:`core.layers.spec` for what a declaration holds.
"""

from core.layers import (  # noqa: F401  (imported for their registrations)
    activation,
    attention,
    conv,
    dropout,
    io,
    linear,
    merge,
    norm,
    pad,
    param,
    pool,
    recurrent,
    sdpa,
    select,
    shape,
    vision,
)
from core.layers.registry import all_specs, canonical_type, get_spec, register, suggest, type_names
from core.layers.spec import (
    GLOBAL,
    Category,
    Emit,
    FitRole,
    FxCall,
    Inferred,
    Kind,
    LayerError,
    LayerSpec,
    ParamError,
    ParamSpec,
    Window,
)

__all__ = [
    "GLOBAL",
    "Category",
    "Emit",
    "FitRole",
    "FxCall",
    "Inferred",
    "Kind",
    "LayerError",
    "LayerSpec",
    "ParamError",
    "ParamSpec",
    "Window",
    "all_specs",
    "canonical_type",
    "get_spec",
    "register",
    "suggest",
    "type_names",
]
