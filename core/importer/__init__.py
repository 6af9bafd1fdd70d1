"""Import a PyTorch ``nn.Module`` as an editable graph, through ``torch.fx`` (DESIGN.md §6).

:func:`import_module` traces the module symbolically (every module class the layer registry
knows is kept whole, as a leaf), runs the trace once on fake tensors to learn every value's
shape without computing anything, and turns the fx graph into a :class:`~core.graph.Graph`
whose node ids are the source's module paths, so torchvision's weights load with
``strict=True``. Anything it cannot represent is refused with :class:`ModelImportError`, naming
the operation and the module path; nothing is ever dropped silently.

The package is split where the knowledge changes, each part importing only the ones below it:

- :mod:`~core.importer.errors` and :mod:`~core.importer.values`: the error every stage raises and
  the values (references to graph nodes) that stand for tensors during the conversion;
- :mod:`~core.importer.modules`: which module classes are layers, their constructor arguments
  read back, module paths as node ids;
- :mod:`~core.importer.trace`: torch.fx tracing and shape propagation (knows no editable graph);
- :mod:`~core.importer.ops`: the handlers that turn functional calls (``x + y``, ``torch.cat``,
  ``F.relu``, ``x.view`` …) into layer nodes, through the small ``Conversion`` interface that
  :mod:`~core.importer.op_base` declares with the helpers every handler uses;
  :mod:`~core.importer.ops_more` adds the model zoos' patterns (drop path, ``torch.stack``, a fixed
  blur kernel, -inf padding before a max pool) and is asked first; :mod:`~core.importer.ops_vit`
  (attention modules called with arguments, Swin's patch merging) before it;
- :mod:`~core.importer.converter`: the walk over the fx graph that builds nodes and groups;
- :mod:`~core.importer.pipeline`: the stages in order, plus the checks against torch; the nodes
  are placed by :func:`core.layout.lay_out`, the layout Auto-arrange uses;
- :mod:`~core.importer.torchvision_models`: ``torchvision:NAME`` sources.

This file only re-exports the public API.
"""

from __future__ import annotations

from core.importer.errors import ModelImportError
from core.importer.modules import id_paths, layer_classes, module_params, user_params
from core.importer.pipeline import import_module, import_with_weights
from core.importer.torchvision_models import (
    import_torchvision,
    torchvision_input_shape,
    torchvision_model,
    torchvision_names,
)
from core.importer.trace import BATCH

__all__ = ["BATCH", "ModelImportError", "id_paths", "import_module", "import_torchvision", "import_with_weights",
           "layer_classes", "module_params", "torchvision_input_shape", "torchvision_model",
           "torchvision_names", "user_params"]
