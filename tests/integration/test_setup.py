"""Setting up stays quiet and reproducible: the build has no warnings, the installer
follows pip's configuration and the lock, and flanker's parser says nothing on import."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.same_on_any_database


def test_building_the_wheel_gives_no_setuptools_warnings(tmp_path):
    build = ["pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(ROOT)]
    result = subprocess.run(
        [sys.executable, "-m", *build],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    # setuptools' BuildBackendWarning and friends (pip's own notes are "WARNING:")
    assert "Warning" not in result.stderr


def load_installer():
    spec = importlib.util.spec_from_file_location("install", ROOT / ".ci" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


installer = load_installer()


def test_uv_is_pointed_at_the_indexes_pip_is_configured_with():
    pip = {
        "index-url": "https://mirror.example/simple/",
        "extra-index-url": "file:///opt/a/simple\nfile:///opt/b/simple",
        "find-links": "/opt/wheels /srv/wheels",
        "cert": "/etc/ssl/certs/ca.pem",
    }
    assert installer.uv_environment(pip, {}) == {
        "UV_DEFAULT_INDEX": "https://mirror.example/simple",
        "UV_INDEX": "file:///opt/a/simple file:///opt/b/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_FIND_LINKS": "/opt/wheels,/srv/wheels",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca.pem",
    }


def test_uv_keeps_pypi_and_its_own_settings():
    assert installer.uv_environment({"index-url": "https://pypi.org/simple/"}, {}) == {}
    own = {"UV_INDEX_URL": "https://own/simple", "UV_EXTRA_INDEX_URL": "https://x/simple"}
    pip = {"index-url": "https://mirror/simple", "extra-index-url": "https://y/simple"}
    assert installer.uv_environment(pip, own) == {"UV_INDEX_STRATEGY": "unsafe-best-match"}


def test_pip_configuration_is_read_with_the_environment_first(tmp_path, monkeypatch):
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://file.example/simple\nfind-links = /w\n")
    for name in [name for name in os.environ if name.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "https://env.example/simple")
    config = installer.pip_config(Path(sys.executable))
    assert config["index-url"] == "https://env.example/simple"
    assert config["find-links"] == "/w"


def test_flanker_parser_tables_are_rebuilt_once_and_quietly(tmp_path):
    """flanker's shipped tables are stale for ply 3.11: the first import rebuilds them."""
    import flanker

    copy = tmp_path / "flanker"
    shutil.copytree(Path(flanker.__file__).parent, copy, ignore=shutil.ignore_patterns("*.pyc"))
    table = copy / "addresslib" / "_parser" / "mailbox_parsetab.py"
    stale = re.sub(r"_lr_signature = .*", "_lr_signature = 'stale'", table.read_text())
    table.write_text(stale)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    plain_import = [sys.executable, "-c", "import flanker.addresslib.address"]

    noisy = subprocess.run(plain_import, env=env, capture_output=True, text=True, check=True)
    assert "is unreachable" in noisy.stderr  # what a first `qmail init` used to print
    table.write_text(stale)
    build = [sys.executable, "-c", installer.BUILD_PARSER_TABLES]
    built = subprocess.run(build, env=env, capture_output=True, text=True, check=True)
    assert built.stderr == ""
    assert "'stale'" not in table.read_text()
    again = subprocess.run(plain_import, env=env, capture_output=True, text=True, check=True)
    assert again.stderr == ""


def test_importing_qmail_prints_nothing():
    probe = [sys.executable, "-c", "import qmail.cli"]
    result = subprocess.run(probe, cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stderr == ""
