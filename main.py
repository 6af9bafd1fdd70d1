"""NetCanvas entry point: the GUI by default, CLI subcommands otherwise (DESIGN.md §7).

    python main.py [PROJECT] [--screenshot PNG]   open the editor
    python main.py summary SOURCE... [--json]     analysis
    python main.py export|import|templates|train  see ``python main.py --help``

The top of the house: it imports :mod:`templates`, which registers the ``template:NAME`` source
kind in :mod:`core.sources`, before handing over to the editor (gui) or the command line
(core.cli), neither of which imports the templates to resolve a SOURCE.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEMO = ROOT / "resources" / "demo_lenet.json"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    import templates  # noqa: F401  (registers template:NAME in core.sources, for both front-ends)
    from core.cli import SUBCOMMANDS

    if args and (args[0] in SUBCOMMANDS or args[0] in ("-h", "--help")):
        from core.cli import main as cli_main

        return cli_main(args)
    if not any(a == "--screenshot" or a.startswith("--screenshot=") for a in args):
        from gui.display import display_problem

        problem = display_problem()
        if problem:
            print(f"netcanvas: {problem}", file=sys.stderr)
            return 2
    try:
        from gui.app import run_gui
    except ImportError as exc:
        if "gui.app" not in str(exc) and "PySide6" not in str(exc):
            raise
        # The editor is not available in this build: show the demo's analysis instead.
        from core.cli import main as cli_main

        print(f"(the editor is unavailable: {exc}; showing the demo's summary)", file=sys.stderr)
        files = [a for a in args if not a.startswith("-")] or [str(DEMO)]
        return cli_main(["summary", *files])
    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
