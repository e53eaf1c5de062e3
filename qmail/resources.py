"""Where the web assets (``web/``) and templates (``templates/``) are.

In a source checkout they sit at the top of the repository; an installed wheel carries
them as the data packages ``qmail.static`` and ``qmail.templates``, so ``qmail serve``
works from any directory.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(checkout_name: str, package: str) -> Path:
    candidate = _CHECKOUT / checkout_name
    if (_CHECKOUT / "pyproject.toml").exists() and candidate.is_dir():
        return candidate
    spec = find_spec(package)  # a namespace package: data only, no __init__.py
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"qmail is installed without its {checkout_name}/ folder")
    return Path(next(iter(spec.submodule_search_locations)))


def templates_dir() -> Path:
    """The ``templates/`` folder: ``pages/`` for the web UI, ``mail/`` for mails."""
    return _folder("templates", "qmail.templates")


def static_dir() -> Path:
    """The ``web/`` folder of static assets (CSS, JavaScript, icons)."""
    return _folder("web", "qmail.static")
