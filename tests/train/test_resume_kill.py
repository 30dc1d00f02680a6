"""Kill a training process with SIGKILL at a random step, resume it, and demand bit-identical
final weights (model, EMA, optimizer, scheduler, data order, every random stream).

The worker (``_resume_worker.py``) runs in its own process, exactly as a user's training script
would; SIGKILL cannot be caught, so nothing gets a chance to tidy up: the only thing that makes
resume work is what was already on disk (atomic checkpoints holding every stream).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlib.train import list_checkpoints

WORKER = Path(__file__).with_name("_resume_worker.py")
STEPS, EVERY = 40, 4
DELAY = 0.05  # seconds per step: the kill lands while training is under way, even on a busy CI

# About 10 s on 2 cores: four Python processes that each import torch (~2 s apiece) and train.
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX"),
    pytest.mark.slow,
]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = (
        str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    )
    return env


def _start(run_dir: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(WORKER), str(run_dir), str(out), "--steps", str(STEPS),
           "--every", str(EVERY), *extra]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())  # fmt: skip


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    return out


def _run_and_kill(run_dir: Path, out: Path, kill_after: int, *extra: str) -> int:
    """Start the worker, SIGKILL it once it has printed ``step kill_after``; return the last
    step it printed."""
    proc = _start(run_dir, out, "--delay", str(DELAY), *extra)
    last = -1
    try:
        for line in proc.stdout:
            if line.startswith("step "):
                last = int(line.split()[1])
                if last >= kill_after:
                    proc.send_signal(signal.SIGKILL)
                    break
    finally:
        proc.wait(timeout=60)
        err = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"not killed (rc {proc.returncode}): {err}"
    return last


def _assert_same(a, b, path: str = "") -> None:
    """Recursive equality, tensors compared bit for bit with torch.equal."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, path
        assert torch.equal(a, b), f"{path} differs"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path} keys differ"
        for k in a:
            _assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def test_sigkill_at_random_steps_then_resume_is_bit_identical(tmp_path: Path) -> None:
    rng = random.Random(2024)  # fixed seed: the kill steps are random but the test repeatable
    first_kill = rng.randrange(EVERY + 2, STEPS // 2)
    second_kill = rng.randrange(STEPS // 2 + 2, STEPS - 8)

    reference = tmp_path / "reference.pt"
    uninterrupted = _start(tmp_path / "uninterrupted", reference)  # runs beside the first life

    run_dir, out = tmp_path / "killed", tmp_path / "resumed.pt"
    last = _run_and_kill(run_dir, out, first_kill)
    saved = [s for s, _ in list_checkpoints(run_dir / "checkpoints")]
    assert saved and max(saved) <= last + 1 < STEPS, (saved, last)  # it really was cut short
    assert not out.exists()

    # Second life, killed again: a resumed run must itself be resumable.
    last = _run_and_kill(run_dir, out, second_kill, "--resume")
    assert not out.exists()

    stdout = _finish(_start(run_dir, out, "--resume"))
    _finish(uninterrupted)
    resumed_at = max(saved)
    assert "genlib: resumed from" in stdout
    printed = [int(line.split()[1]) for line in stdout.splitlines() if line.startswith("step")]
    assert printed[-1] == STEPS - 1 and printed[0] > resumed_at  # it continued, not restarted

    a = torch.load(reference, weights_only=True)
    b = torch.load(out, weights_only=True)
    _assert_same(a, b)
    # A sanity check that the comparison has teeth: training moved the weights away from init.
    assert a["ema"]["num_updates"] == STEPS
