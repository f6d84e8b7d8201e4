"""Check the documentation: every public name has a docstring, every relative link resolves.

Run by ``nox -s docs`` and by the test suite (tests/test_docs.py). Exits 1 and lists every
problem when something is missing.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def undocumented_names() -> list[str]:
    """``module.name`` for every public name (in a module's ``__all__``) without a docstring."""
    import voicepriv

    problems = []
    modules = [voicepriv.__name__]
    for info in pkgutil.walk_packages(voicepriv.__path__, prefix="voicepriv."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            modules.append(info.name)
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional dependency: the module must still import
            problems.append(f"{name}: does not import without optional extras ({exc})")
            continue
        if not (module.__doc__ or "").strip():
            problems.append(f"{name}: module has no docstring")
        for public in getattr(module, "__all__", ()):
            value = getattr(module, public, None)
            if value is None:
                problems.append(f"{name}.{public}: listed in __all__ but missing")
                continue
            documentable = inspect.isclass(value) or inspect.isfunction(value)
            if documentable and not inspect.getdoc(value):
                problems.append(f"{name}.{public}: no docstring")
    return problems


def broken_links() -> list[str]:
    """``file: target`` for every relative Markdown link in docs/ and README.md that is missing."""
    problems = []
    pages = [*DOCS.glob("*.md"), DOCS.parent / "README.md"]
    for page in pages:
        for match in LINK.finditer(page.read_text(encoding="utf-8")):
            target = match.group(1)
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                problems.append(f"{page.name}: broken link {target}")
    return problems


def main() -> int:
    """Print every problem; exit code 1 when there is any."""
    problems = undocumented_names() + broken_links()
    for problem in problems:
        print(problem)
    print(f"docs check: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
