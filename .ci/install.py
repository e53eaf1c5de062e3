"""Make a virtualenv hold exactly what a lock file names, plus qmail itself (editable).

    python3 .ci/install.py VENV LOCKFILE

``make run`` calls it with ``requirements.lock``, ``make test`` and ``make check`` with
``requirements-dev.lock`` (both written by ``make lock``).  Only the standard library: it
runs before anything is installed.

- uv when it can be had: the venv's own pip installs ``UV_REQUIREMENT`` from the package
  index, then ``uv pip sync --require-hashes LOCKFILE`` makes the venv match the lock (and
  removes what the lock no longer names).  Plain pip otherwise (an index without uv, a
  platform uv has no wheel for), or when ``INSTALL_WITH=pip`` is set in the environment:
  ``pip install -r LOCKFILE`` checks the same hashes.
- uv does not read pip's configuration (pip.conf files, ``PIP_*`` variables).  The indexes
  and find-links pip is told to use are handed to uv, so a machine that installs from a
  mirror or local wheels does the same with uv; the lock's hashes pin the files either way.
- flanker 0.9.11 ships parser tables that ply 3.11 no longer accepts (its signature sorts
  the tokens differently), so the first import rebuilds them, writes them into
  site-packages and logs a warning per unreachable start symbol: 28 lines on stderr from
  the first ``qmail`` command.  They are rebuilt here, once, with those warnings off.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

UV_REQUIREMENT = "uv==0.13.9"
PYPI = ("https://pypi.org/simple", "https://pypi.python.org/simple")

# The rebuild of flanker's tables: its parser logs through "flanker.addresslib._parser.*"
# (a logger left at ERROR still lets an ImportError end the install with an error).
BUILD_PARSER_TABLES = """\
import logging
logging.getLogger("flanker.addresslib._parser").setLevel(logging.ERROR)
import flanker.addresslib.address
"""


def main(argv: Sequence[str]) -> int:
    venv, lock = Path(argv[0]), Path(argv[1])
    python = venv / "bin" / "python"
    if not python.exists():
        run([sys.executable, "-m", "venv", str(venv)])
    uv = install_uv(python) if os.environ.get("INSTALL_WITH") != "pip" else None
    if uv is not None:
        say(f"{venv}: installing {lock} with {UV_REQUIREMENT}")
        env = {**os.environ, **uv_environment(pip_config(python), os.environ)}
        uv_pip = [str(uv), "pip", "--quiet"]
        # --compile-bytecode, as pip does: each command would otherwise compile what it
        # imports, every time where PYTHONDONTWRITEBYTECODE is set (2 s more per start)
        sync = ["sync", "--python", str(python), "--require-hashes", "--compile-bytecode"]
        run([*uv_pip, *sync, str(lock)], env)
        run([*uv_pip, "install", "--python", str(python), "--no-deps", "-e", "."], env)
    else:
        say(f"{venv}: installing {lock} with pip")
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        run([*pip, "--require-hashes", "-r", str(lock)])
        run([*pip, "--no-deps", "-e", "."])
    run([str(python), "-c", BUILD_PARSER_TABLES])
    return 0


def install_uv(python: Path) -> Path | None:
    """uv in the venv, installed by the venv's pip; None (and why) when it cannot be had."""
    uv = python.parent / "uv"
    wanted = UV_REQUIREMENT.replace("==", " ")
    if uv.exists() and _output([str(uv), "--version"]).startswith(wanted):
        return uv
    pip = [str(python), "-m", "pip", "install", "--quiet", "--quiet", UV_REQUIREMENT]
    result = subprocess.run(pip, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not uv.exists():
        reason = (result.stderr.strip().splitlines() or ["no uv executable"])[-1]
        say(f"{UV_REQUIREMENT} not available ({reason}); using pip")
        return None
    return uv


def pip_config(python: Path) -> dict[str, str]:
    """The index settings pip would use: ``PIP_*`` variables over the files' values.

    ``pip config list`` prints ``global.find-links='...'``, ``:env:.find-links='...'``.
    """
    listing = _output([str(python), "-m", "pip", "config", "list"])
    rank = {"global": 1, "install": 2, ":env:": 3}  # pip's own order of precedence
    found: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        section, _, name = key.rpartition(".")
        if section not in rank or not value:
            continue
        if name not in found or rank[section] >= found[name][0]:
            found[name] = (rank[section], ast.literal_eval(value))
    return {name: value for name, (_, value) in found.items()}


def uv_environment(pip: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """``UV_*`` variables that point uv where ``pip``'s configuration points pip.

    Only what ``env`` leaves unset: a ``UV_*`` variable of one's own wins.
    """
    wanted: dict[str, str] = {}
    index = pip.get("index-url", "").rstrip("/")
    if index and index not in PYPI:
        wanted["UV_DEFAULT_INDEX"] = index
    if _true(pip.get("no-index", "")):
        wanted["UV_NO_INDEX"] = "1"
    extra = pip.get("extra-index-url", "").split()
    if extra:
        wanted["UV_INDEX"] = " ".join(extra)
        # pip takes the best match across all its indexes; uv by default stops at the first
        # index that has the package at all, and fails when a partial mirror lacks the pin
        wanted["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    if pip.get("find-links"):
        wanted["UV_FIND_LINKS"] = ",".join(pip["find-links"].split())
    if pip.get("cert"):
        wanted["SSL_CERT_FILE"] = pip["cert"]
    taken = {"UV_DEFAULT_INDEX": "UV_INDEX_URL", "UV_INDEX": "UV_EXTRA_INDEX_URL"}
    return {
        name: value
        for name, value in wanted.items()
        if not env.get(name) and not env.get(taken.get(name, name))
    }


def _output(command: Sequence[str]) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=False).stdout


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def run(command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(command, env=env, check=False)
    if result.returncode != 0:
        say(f"failed ({result.returncode}): {' '.join(command)}")
        raise SystemExit(result.returncode)


def say(line: str) -> None:
    print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
