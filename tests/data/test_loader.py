"""BatchIterator: seeded order, full coverage per epoch, exact resume, clear errors."""

import itertools

import pytest
import torch

from genlib.data.loader import BatchIterator, epoch_permutation


def take(it, k):
    return [b.clone() if isinstance(b, torch.Tensor) else b for b in itertools.islice(it, k)]


def test_same_seed_same_batches_other_seed_other_batches():
    x = torch.arange(50)
    a = take(BatchIterator(x, batch_size=8, seed=3), 20)
    b = take(BatchIterator(x, batch_size=8, seed=3), 20)
    c = take(BatchIterator(x, batch_size=8, seed=4), 20)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))


@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last"), [(50, 8, True), (50, 8, False), (48, 8, True), (7, 7, True)]
)
def test_every_example_once_per_epoch(n, batch_size, drop_last):
    it = BatchIterator(torch.arange(n), batch_size=batch_size, drop_last=drop_last, seed=1)
    per_epoch = n // batch_size + (1 if n % batch_size and not drop_last else 0)
    assert len(it) == per_epoch
    orders = []
    for epoch in range(3):
        batches = take(it, per_epoch)
        assert all(len(b) == batch_size for b in batches[: n // batch_size])
        seen = torch.cat(batches)
        assert len(torch.unique(seen)) == len(seen)  # no example twice within an epoch
        assert len(seen) == (n if not drop_last else n - n % batch_size)
        # the epoch is exactly the prefix of its own permutation
        assert torch.equal(seen, epoch_permutation(n, 1, epoch)[: len(seen)])
        orders.append(seen)
    if n > 7:
        assert not torch.equal(orders[0], orders[1])  # a fresh order every epoch


def test_rows_of_several_tensors_stay_aligned_and_shuffle_false_keeps_order():
    x = torch.arange(30).float()[:, None].repeat(1, 3)  # (30, 3)
    y = torch.arange(30) * 10
    for xb, yb in take(BatchIterator(x, y, batch_size=4, seed=2), 12):
        assert xb.shape == (4, 3) and torch.equal(xb[:, 0].long() * 10, yb)
    ordered = take(BatchIterator(y, batch_size=10, shuffle=False), 6)
    assert torch.equal(torch.cat(ordered), torch.cat([y, y]))


def test_epochs_bound_the_iteration():
    it = BatchIterator(torch.arange(10), batch_size=3, epochs=2)
    batches = list(it)
    assert len(batches) == 2 * len(it) == 6
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("stop", [5, 6, 7, 13])  # mid-epoch, at and just past epoch boundaries
def test_resume_gives_the_batches_of_an_uninterrupted_run(stop, tmp_path):
    data = torch.arange(20)
    reference = take(BatchIterator(data, batch_size=3, seed=9), 25)  # 6 batches per epoch
    first = BatchIterator(data, batch_size=3, seed=9)
    assert all(torch.equal(a, b) for a, b in zip(take(first, stop), reference, strict=False))
    torch.save(first.state_dict(), tmp_path / "it.pt")
    state = torch.load(tmp_path / "it.pt", weights_only=True)  # plain ints and bools
    expected = {5: (0, 5), 6: (0, 6), 7: (1, 1), 13: (2, 1)}[stop]  # the epoch rolls over lazily
    assert (state["epoch"], state["position"]) == expected
    resumed = BatchIterator(data, batch_size=3, seed=9)
    resumed.load_state_dict(state)
    rest = take(resumed, 25 - stop)
    assert all(torch.equal(a, b) for a, b in zip(rest, reference[stop:], strict=True))


def test_state_dict_locates_the_next_batch():
    it = BatchIterator(torch.arange(20), batch_size=3, seed=0)
    take(it, 6)
    assert (it.epoch, it.position) == (0, 6)  # epoch 0 done, rolls over on the next call
    take(it, 1)
    assert (it.epoch, it.position) == (1, 1)
    assert it.state_dict() == {"epoch": 1, "position": 1, "seed": 0, "n": 20, "batch_size": 3,
                               "shuffle": True, "drop_last": True}  # fmt: skip


def test_a_state_from_another_iterator_is_refused():
    state = BatchIterator(torch.arange(20), batch_size=3).state_dict()
    with pytest.raises(ValueError, match=r"state_dict has batch_size=3 but this iterator has"):
        BatchIterator(torch.arange(20), batch_size=4).load_state_dict(state)
    with pytest.raises(ValueError, match=r"state_dict has n=20"):
        BatchIterator(torch.arange(21), batch_size=3).load_state_dict(state)
    with pytest.raises(ValueError, match=r"position'\] must be in 0..6"):
        BatchIterator(torch.arange(20), batch_size=3).load_state_dict(state | {"position": 7})


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_bad_batch_size(bad):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1; got"):
        BatchIterator(torch.arange(10), batch_size=bad)


def test_bad_tensors_and_sizes():
    with pytest.raises(ValueError, match=r"share their first dimension N; got lengths \[10, 9\]"):
        BatchIterator(torch.arange(10), torch.arange(9), batch_size=2)
    with pytest.raises(ValueError, match="at least one tensor"):
        BatchIterator(batch_size=2)
    with pytest.raises(ValueError, match=r"tensors\[1\] must be a tensor of shape \(N, ...\)"):
        BatchIterator(torch.arange(10), [1, 2], batch_size=2)
    with pytest.raises(ValueError, match=r"batch_size=11 exceeds the N=10 examples"):
        BatchIterator(torch.arange(10), batch_size=11)
    assert len(BatchIterator(torch.arange(10), batch_size=11, drop_last=False)) == 1
    with pytest.raises(ValueError, match="seed must be an integer >= 0; got -1"):
        BatchIterator(torch.arange(10), batch_size=2, seed=-1)


def test_device_cpu_and_permutation_properties():
    it = BatchIterator(torch.arange(12), batch_size=4, device="cpu")
    assert next(it).device.type == "cpu"
    p = epoch_permutation(1000, seed=5, epoch=2)
    assert torch.equal(torch.sort(p).values, torch.arange(1000))
    assert torch.equal(p, epoch_permutation(1000, seed=5, epoch=2))
    assert not torch.equal(p, epoch_permutation(1000, seed=5, epoch=3))
    assert not torch.equal(p, epoch_permutation(1000, seed=6, epoch=2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_resident_batches_equal_the_cpu_batches():
    x, y = torch.randn(100, 3), torch.arange(100)
    cpu = take(BatchIterator(x, y, batch_size=16, seed=1), 15)
    gpu_it = BatchIterator(x, y, batch_size=16, seed=1, device="cuda")
    assert gpu_it.tensors[0].is_cuda  # the whole dataset moved once
    for (xc, yc), (xg, yg) in zip(cpu, take(gpu_it, 15), strict=True):
        assert xg.is_cuda and torch.equal(xg.cpu(), xc) and torch.equal(yg.cpu(), yc)
