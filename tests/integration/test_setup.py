"""Setting up stays quiet and reproducible: the build has no warnings, the installer
follows pip's configuration and the lock, and flanker's parser says nothing on import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


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
