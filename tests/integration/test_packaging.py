"""An installed wheel carries web/, templates/ and the migrations: `qmail serve` works
from any directory."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
pytestmark = pytest.mark.same_on_any_database


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("qmail-*.whl")
    return path


def test_wheel_carries_assets_templates_and_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in ROOT.joinpath("web").rglob("*"):
        if path.is_file():
            assert f"qmail/static/{path.relative_to(ROOT / 'web')}" in names
    for path in ROOT.joinpath("templates").rglob("*"):
        if path.is_file():
            assert f"qmail/templates/{path.relative_to(ROOT / 'templates')}" in names
    assert "qmail/migrations/script.py.mako" in names
    assert "qmail/migrations/versions/0001_initial_schema.py" in names
    assert "qmail/py.typed" in names


def test_installed_package_finds_its_files_outside_the_checkout(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from qmail.resources import static_dir, templates_dir\n"
        "print((static_dir() / 'qmail.css').is_file(),"
        " (templates_dir() / 'pages' / 'error.html').is_file(), static_dir())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.startswith("True True ")
    assert str(site) in result.stdout
