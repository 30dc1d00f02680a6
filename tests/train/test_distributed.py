"""DDP with two gloo processes on the CPU (launched by torchrun, as in chapter 10): the ranks end
bit-identical and equal to a single process on the whole batches; plus the sharding maths."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlib.train import init_distributed, is_main_process, load_checkpoint, shard, shard_batch

WORKER = Path(__file__).with_name("_ddp_worker.py")


def _load_worker():
    spec = importlib.util.spec_from_file_location("genlib_test_ddp_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo is tested on POSIX")
def test_two_gloo_ranks_match_a_single_process(tmp_path: Path, monkeypatch) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(WORKER.parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           str(WORKER), str(tmp_path)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)

    # The reference: the same script without torchrun is one process on whole batches.
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    rank, single = _load_worker().train(tmp_path / "single")
    assert rank == 0

    for k in single:
        assert torch.equal(rank0[k], rank1[k]), f"ranks differ in {k}"
        torch.testing.assert_close(rank0[k], single[k], rtol=0, atol=1e-6)
    # Only rank 0 wrote checkpoints, holding both ranks' random streams.
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt-00000012.pt")
    assert ckpt["world_size"] == 2 and set(ckpt["rng"]) == {"0", "1"}
    assert ckpt["images_seen"] == 12 * 32
    # The comparison has teeth: the weights moved well beyond the tolerance in the last 6 steps.
    mid = load_checkpoint(tmp_path / "run" / "checkpoints" / "ckpt-00000006.pt")["state"]["model"]
    assert max((mid[k] - single[k]).abs().max() for k in single) > 1e-3


def test_mean_of_shard_gradients_is_the_full_batch_gradient() -> None:
    """The identity DDP relies on: with equal slices, the average over ranks of each slice's
    mean-loss gradient is the gradient of the mean loss over the whole batch."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 1, generator=g, dtype=torch.float64, requires_grad=True)
    x, y = torch.randn(12, 5, generator=g, dtype=torch.float64), torch.randn(12, 1, generator=g)
    y = y.double()

    def grad(xb, yb):
        return torch.autograd.grad(((xb @ w - yb) ** 2).mean(), w)[0]

    world = 3
    per_rank = [grad(*shard_batch((x, y), r, world)) for r in range(world)]
    torch.testing.assert_close(sum(per_rank) / world, grad(x, y), rtol=1e-12, atol=1e-12)


def test_shard_batch_slices_are_disjoint_and_cover_the_batch() -> None:
    x = torch.arange(12).reshape(6, 2)
    parts = [shard_batch({"x": x, "y": [x[:, 0]]}, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["x"] for p in parts]), x)
    assert torch.equal(parts[1]["y"][0], x[2:4, 0])
    with pytest.raises(ValueError, match="not divisible by world_size=4"):
        shard_batch(x, 0, 4)
    with pytest.raises(ValueError, match="one batch size"):
        shard_batch((x, x[:3]), 0, 2)
    with pytest.raises(ValueError, match="rank"):
        shard_batch(x, 3, 3)


def test_sharded_iterator_delegates_its_state() -> None:
    from genlib.data import BatchIterator

    it = shard(BatchIterator(torch.arange(40).reshape(20, 2), batch_size=4, seed=0), rank=1,
               world_size=2)  # fmt: skip
    first = next(it)
    assert first.shape == (2, 2)
    state = it.state_dict()
    expected = next(it)
    again = shard(BatchIterator(torch.arange(40).reshape(20, 2), batch_size=4, seed=0), rank=1,
                  world_size=2)  # fmt: skip
    again.load_state_dict(state)
    assert torch.equal(next(again), expected)


def test_single_process_defaults(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = init_distributed()
    assert (info.rank, info.world_size, info.backend, info.distributed) == (0, 1, None, False)
    assert is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="RANK.*torchrun"):
        init_distributed()
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        init_distributed()
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="RANK=5"):
        init_distributed()
