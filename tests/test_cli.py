"""The `genlib` command, run in-process (fast) and once as the installed console script."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from genlib.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_names_versions_device_mode_and_datasets(capsys, monkeypatch):
    monkeypatch.setenv("GENLIB_QUICK", "1")
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert "torch" in out and "devices: cpu" in out and "mode: quick" in out
    assert "mnist5k" in out and "digits8x8" in out


def test_data_list_and_show(capsys, tmp_path):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "mnist5k" in out and "online" in out
    png = tmp_path / "digits.png"
    code, out, _ = run(capsys, "data", "show", "digits8x8", "--out", str(png), "--n", "16")
    assert code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run(capsys, "data", "show", "nope", "--out", str(png))
    assert code == 2 and "unknown dataset 'nope'; valid names: mnist5k" in err
    code, _, err = run(capsys, "data", "show", "mnist5k", "--out", str(tmp_path / "x.jpg"))
    assert code == 2 and "--out must be a .png" in err


def test_train_list(capsys):
    code, out, _ = run(capsys, "train", "--list")
    assert code == 0 and "gmm-digits8x8" in out and "quick:" in out


def test_train_sample_resume_end_to_end(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code, out, _ = run(capsys, "train", "gmm-toy2d", "--out", str(run_dir), "--steps", "4",
                       "--no-progress", "--seed", "1")
    assert code == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["recipe"] == "gmm-toy2d" and metrics["em_steps"] == 4
    assert np.isfinite(metrics["test_nll_nats"])
    info = json.loads((run_dir / "recipe.json").read_text())
    assert info["seed"] == 1 and info["budget"]["steps"] == 4
    assert (run_dir / "history.json").is_file()

    # a second train into the same folder is refused unless --resume
    code, _, err = run(capsys, "train", "gmm-toy2d", "--out", str(run_dir), "--steps", "8")
    assert code == 2 and "--resume" in err
    code, out, _ = run(capsys, "train", "gmm-toy2d", "--out", str(run_dir), "--steps", "8",
                       "--resume", "--no-progress")
    assert code == 0 and "resumed" in out
    assert json.loads((run_dir / "metrics.json").read_text())["em_steps"] == 8
    # resuming keeps the run's own seed
    assert json.loads((run_dir / "recipe.json").read_text())["seed"] == 1

    npz = tmp_path / "s.npz"
    code, out, _ = run(capsys, "sample", str(run_dir), "--n", "50", "--out", str(npz))
    assert code == 0
    with np.load(npz) as f:
        assert f["points"].shape == (50, 2) and f["points"].dtype == np.float32


def test_sample_digits_writes_uint8_nchw(capsys, tmp_path):
    run_dir = tmp_path / "digits"
    assert run(capsys, "train", "gmm-digits8x8", "--out", str(run_dir), "--steps", "3",
               "--no-progress")[0] == 0
    npz = tmp_path / "d.npz"
    assert run(capsys, "sample", str(run_dir), "--n", "10", "--out", str(npz))[0] == 0
    with np.load(npz) as f:
        assert f["images"].shape == (10, 1, 8, 8) and f["images"].dtype == np.uint8


@pytest.mark.parametrize("argv, message", [
    (["train", "nope", "--out", "x"], "unknown recipe 'nope'; valid recipes: "),
    (["train", "gmm-toy2d"], "needs --out"),
    (["train", "gmm-toy2d", "--out", "x", "--steps", "0"], "--steps must be >= 1"),
    (["train", "gmm-toy2d", "--out", "x", "--device", "tpu"], "--device"),
    (["sample", "nowhere", "--n", "3", "--out", "a.npz"], "not a genlib run folder"),
])
def test_usage_errors_exit_2_with_one_line(capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and err.startswith("genlib: error:")
    if argv[1] == "nope":
        assert "gmm-digits8x8" in err and "gmm-toy2d" in err
    assert not (tmp_path / "x").exists()  # nothing written for a refused command


def test_course_export(capsys, tmp_path):
    src = tmp_path / "ch.md"
    src.write_text("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n")
    code, out, _ = run(capsys, "course", "export", str(src), "--out", str(tmp_path / "student"))
    assert code == 0
    assert "NotImplementedError" in (tmp_path / "student" / "ch.md").read_text()


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "genlib"
    exe = str(script) if script.exists() else shutil.which("genlib")
    assert exe, "the `genlib` console script is not installed (pip install -e .)"
    result = subprocess.run([exe, "train", "--list"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "gmm-toy2d" in result.stdout
