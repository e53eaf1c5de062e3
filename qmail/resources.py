"""Where the web assets (``web/``) and templates (``templates/``) are.

In a source checkout they sit at the top of the repository; an installed wheel carries
them as the data packages ``qmail.static`` and ``qmail.templates``, so ``qmail serve``
works from any directory.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _folder(checkout_name: str, package: str) -> Path:
    candidate = _CHECKOUT / checkout_name
    if (_CHECKOUT / "pyproject.toml").exists() and candidate.is_dir():
        return candidate
    return Path(str(resources.files(package)))


def templates_dir() -> Path:
    """The ``templates/`` folder: ``pages/`` for the web UI, ``mail/`` for mails."""
    return _folder("templates", "qmail.templates")


def static_dir() -> Path:
    """The ``web/`` folder of static assets (CSS, JavaScript, icons)."""
    return _folder("web", "qmail.static")
