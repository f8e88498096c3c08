"""The README's walk-through works exactly as written, against a real ``piazza run``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.piazza.test_run import TOKEN, Run
from tests.support import ROOT, free_port

pytestmark = pytest.mark.e2e


def walkthrough() -> str:
    """The shell blocks between the README's walkthrough markers, in order."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- walkthrough:begin -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    return "\n".join(re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL))


async def test_the_readme_walkthrough(tmp_path: Path) -> None:
    run = Run(tmp_path / "data", free_port(), PIAZZA_BOOTSTRAP_TOKEN="dev-token").start()
    try:
        await run.ready()
        script = walkthrough()
        assert "export PIAZZA=http://127.0.0.1:8000 TOKEN=dev-token" in script
        script = script.replace("http://127.0.0.1:8000", run.url)
        script = script.replace(".venv/bin/piazza", str(Path(sys.executable).parent / "piazza"))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert '{"accepted":1,"duplicates":0}' in done.stdout
        assert "202 " in done.stdout
        assert '"title": "Launch day"' in done.stdout
        assert "Ciao! 👋 When does the sale start?" in done.stdout
        assert "Tomorrow at 9 🎉" in done.stdout
        assert TOKEN != "dev-token"  # the walkthrough really used the README's token
    finally:
        run.kill()
