"""Developer and CI sessions: ``nox -s tests lint typecheck bench docs demo``.

``nox -s tests`` runs the whole test suite: the core install with the light extras, then each
heavy model stack in its own environment (they cannot share one: SpeechBrain needs torch 2.9.1
with torchaudio, resemblyzer runs on torch 2.13). Arguments after ``--`` go to pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHON = "3.11"
# Light extras installed for the default test run; each has tests that skip without it.
LIGHT_EXTRAS = "onnx,whisper,dask,s3,postgres,plot"
# Every heavy stack: its extra, how to install it, and the pytest marker selecting its tests.
STACKS = {
    "core": {"marker": "not resemblyzer and not speechbrain"},
    "resemblyzer": {"marker": "resemblyzer"},
    "speechbrain": {"marker": "speechbrain"},
}
PYTEST_NO_TESTS = 5


def _install(session: nox.Session, extras: str, *groups: str) -> None:
    """Install voicepriv (editable) with *extras* and the dependency *groups*."""
    session.install("-e", f".[{extras}]" if extras else ".")
    for group in groups:
        session.install(*nox.project.dependency_groups(PYPROJECT, group))


def _install_stack(session: nox.Session, stack: str) -> None:
    if stack == "core":
        _install(session, LIGHT_EXTRAS, "test")
    elif stack == "resemblyzer":
        # resemblyzer pins `webrtcvad`, whose import fails on current setuptools; install its
        # other requirements, take webrtcvad-wheels in its place, and torch's CPU build.
        _install(session, "resemblyzer,onnx", "test")
        session.install("--no-deps", "resemblyzer>=0.1.4")
    elif stack == "speechbrain":
        session.install("torch==2.9.1", "torchaudio==2.9.*")
        _install(session, "speechbrain", "test")


@nox.session(python=PYTHON)
@nox.parametrize("stack", list(STACKS))
def tests(session: nox.Session, stack: str) -> None:
    """Run the test suite for one stack (``nox -s tests`` runs every stack)."""
    _install_stack(session, stack)
    env = {"VOICEPRIV_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if os.environ.get("CI"):
        env["HYPOTHESIS_PROFILE"] = "ci"
    args = ["-m", STACKS[stack]["marker"], *session.posargs]
    # pytest exits 5 when it collected nothing: for us that means the suite went missing.
    guard = (
        "import sys, pytest; code = pytest.main(sys.argv[1:]); "
        f"print('pytest collected no tests: the suite is missing') if code == {PYTEST_NO_TESTS} "
        "else None; "
        f"sys.exit(1 if code == {PYTEST_NO_TESTS} else int(code))"
    )
    session.run("python", "-c", guard, *args, env=env)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "src")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict on src."""
    _install(session, "", "typecheck")
    session.run("mypy", "--strict", "src")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Every benchmark in --quick mode (pass --full to run them at full size)."""
    _install(session, LIGHT_EXTRAS, "test", "bench")
    full = "--full" in session.posargs
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    for script in sorted(Path("benchmarks").glob("[!_]*.py")):
        quick = [] if full else ["--quick"]
        session.run("python", str(script), *quick, "--json", str(out / f"{script.stem}.json"))


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Check the docs: every public name documented, every relative link resolves."""
    _install(session, "")
    session.run("python", "docs/check_docs.py")


@nox.session(python=PYTHON)
def demo(session: nox.Session) -> None:
    """Run ``voicepriv demo`` on the embedded default."""
    _install(session, "")
    session.run("voicepriv", "demo", *session.posargs)
