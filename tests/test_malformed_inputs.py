"""The malformed-input campaign of ``bench/malformed_inputs.py``, its quick subset.

Every case (mutated model files, command-line misuse, malformed host-link frames) must be
refused cleanly: one stderr line naming the problem and exit status 2 for a command, the
specified ERROR (and an intact link after it) for a frame; no traceback, no input accepted
that must be refused, nothing lost or written beside the inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "malformed_inputs.py"


@pytest.mark.slow
def test_the_quick_campaign_finds_no_traceback_silent_acceptance_or_data_loss(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["cases"] >= 50
    groups = result["counts"]
    assert set(groups) == {"files", "cli", "frames"}
    failing = {
        g: {k: c[k] for k in ("traceback", "silent", "data_loss", "wrong") if c[k]}
        for g, c in groups.items()
    }
    assert not any(failing.values()), (failing, result["failures"][:5])
    assert done.returncode == 0, done.stderr[-2000:]
