"""``make test``'s type check: mypy on core, templates and main.py with zero errors, and on gui against
a checked-in baseline that may only shrink.

The baseline (``gui_baseline.txt`` beside this file) counts mypy's errors per gui file. A file with
more errors than its baseline fails the check, naming the new errors; a file with fewer asks for the
baseline to be lowered (``--update`` writes it), so a fixed error can never quietly come back.

Run: ``.venv/bin/python tests/typecheck/check.py [--update]``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).with_name("gui_baseline.txt")
_ERROR = re.compile(r"^(?P<file>[^:]+\.py):\d+: error: ")


def mypy(*targets: str) -> list[str]:
    """mypy's error lines for ``targets`` (imports followed silently: each part is judged on its own)."""
    done = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", *targets],
                          cwd=ROOT, capture_output=True, text=True)
    if done.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(f"typecheck: mypy failed:\n{done.stdout}{done.stderr}")
    return [line for line in done.stdout.splitlines() if _ERROR.match(line)]


def read_baseline() -> Counter[str]:
    counts: Counter[str] = Counter()
    if BASELINE.exists():
        for line in BASELINE.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                count, name = line.split(maxsplit=1)
                counts[name] = int(count)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="write the gui baseline from the current errors")
    args = parser.parse_args(argv)

    strict = mypy("core", "templates", "main.py")
    gui = mypy("gui")
    now = Counter(_ERROR.match(line).group("file") for line in gui)  # type: ignore[union-attr]
    if args.update:
        BASELINE.write_text("# mypy errors per gui file; may only shrink (tests/typecheck/check.py --update)\n"
                            + "".join(f"{n} {f}\n" for f, n in sorted(now.items())), encoding="utf-8")
        print(f"typecheck: baseline written ({sum(now.values())} errors in {len(now)} gui files)")
    base = read_baseline()
    problems: list[str] = []
    if strict:
        problems.append(f"{len(strict)} mypy error(s) in core, templates or main.py (none are allowed):")
        problems += [f"  {line}" for line in strict]
    for name in sorted(set(now) | set(base)):
        if now[name] > base[name]:
            problems.append(f"{name}: {now[name]} mypy errors, the baseline allows {base[name]}:")
            problems += [f"  {line}" for line in gui if line.startswith(f"{name}:")]
        elif now[name] < base[name]:
            problems.append(f"{name}: {now[name]} mypy errors, fewer than the baseline's {base[name]}: "
                            "lower it with tests/typecheck/check.py --update")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    print(f"typecheck: core, templates and main.py clean; gui at its baseline ({sum(now.values())} errors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
