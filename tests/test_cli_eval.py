"""`genlib eval FILE.npz --against DATASET`: real test digits score at the real-data floor,
noisy ones far from it; the table and the JSON carry every metric with its interval; mistakes
in the file or the arguments are one clear line and exit status 2. Uses the shipped digit
classifier end to end."""

import json

import numpy as np
import pytest

from genlib.cli import main
from genlib.data import load
from genlib.metrics import RESULT_KEYS


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def digits():
    return (load("mnist5k", "test").images.numpy() * 255).round().astype(np.uint8)


def write(tmp_path, name, **arrays):
    path = tmp_path / name
    np.savez_compressed(path, **arrays)
    return path


def test_real_digits_sit_at_the_floor_and_noisy_ones_far_above(capsys, tmp_path, digits):
    real = write(tmp_path, "real.npz", images=digits)
    code, out, err = run(capsys, "eval", str(real), "--against", "mnist5k", "--json",
                         str(tmp_path / "real.json"))
    assert code == 0, err
    for label in ("FID", "KID", "precision", "recall", "density", "coverage", "smallest class",
                  "real floor (n=1,000 test vs train)", "digit classifier"):
        assert label in out
    result = json.loads((tmp_path / "real.json").read_text())
    assert set(RESULT_KEYS) <= set(result) and result["n"] == 1000
    floor = result["floor"]
    # the real test digits *are* the floor's samples: same numbers, same seed
    for key in ("fid", "kid", "precision", "recall", "density", "coverage"):
        assert result[key] == pytest.approx(floor[key], rel=1e-9)
    assert floor["fid_ci"][0] <= result["fid"] <= floor["fid_ci"][1]
    assert result["class_hist"]["min_share"] > 0.07 and result["class_hist"]["missing"] == []

    rng = np.random.default_rng(0)
    noise = digits / 255 + rng.normal(0, 0.35, digits.shape)
    noisy = write(tmp_path, "noisy.npz",
                  images=(np.clip(noise, 0, 1) * 255).round().astype(np.uint8))
    code, out, _ = run(capsys, "eval", str(noisy), "--against", "mnist5k", "--json",
                       str(tmp_path / "noisy.json"))
    assert code == 0
    bad = json.loads((tmp_path / "noisy.json").read_text())
    assert bad["fid"] > 5 * floor["fid"] and bad["fid_ci"][0] > floor["fid_ci"][1]
    assert bad["kid"] > floor["kid"] + 5 * floor["kid_sd"]
    assert bad["precision"] < floor["precision"] - 0.2


def test_clear_errors(capsys, tmp_path, digits):
    def error(*argv):
        code, _, err = run(capsys, "eval", *argv)
        assert code == 2 and err.startswith("genlib: error:") and err.count("\n") == 1, err
        return err

    assert "no such file" in error(str(tmp_path / "missing.npz"), "--against", "mnist5k")
    points = write(tmp_path, "points.npz", points=np.zeros((10, 2), np.float32))
    assert "holds no 'images' array (it holds: points)" in error(str(points), "--against",
                                                                  "mnist5k")
    not_npz = tmp_path / "junk.npz"
    not_npz.write_text("not a zip")
    assert "cannot read" in error(str(not_npz), "--against", "mnist5k")
    real = write(tmp_path, "real.npz", images=digits[:300])
    assert "valid names: mnist5k" in error(str(real), "--against", "mnist60k")
    nhwc = write(tmp_path, "nhwc.npz", images=digits[:300].transpose(0, 2, 3, 1))
    assert "channels-last" in error(str(nhwc), "--against", "mnist5k")
    floats = write(tmp_path, "f.npz", images=digits[:300].astype(np.float32))
    assert "divide by 255" in error(str(floats), "--against", "mnist5k")
    few = write(tmp_path, "few.npz", images=digits[:50])
    assert "at least 129 images" in error(str(few), "--against", "mnist5k")
    assert "--json must name a .json file" in error(str(real), "--against", "mnist5k",
                                                    "--json", str(tmp_path / "out.txt"))
