"""ImageData and PointData: frozen, validated; int_pixels inverts the k / (levels - 1) scaling."""

import dataclasses

import pytest
import torch

from genlib.data.containers import ImageData, PointData


def test_int_pixels_inverts_the_scaling_for_every_level():
    for levels in (2, 17, 256):
        k = torch.arange(levels, dtype=torch.uint8).view(1, 1, 1, levels)
        data = ImageData(images=k.float() / (levels - 1), name="x", split="train", levels=levels)
        assert torch.equal(data.int_pixels(), k)
    continuous = ImageData(images=torch.rand(2, 3, 4, 4), name="shapes", split="train")
    with pytest.raises(ValueError, match="continuous pixels"):
        continuous.int_pixels()


def test_frozen_length_and_shape():
    data = ImageData(images=torch.zeros(5, 1, 8, 8), labels=torch.zeros(5, dtype=torch.long),
                     name="x", split="test")  # fmt: skip
    assert len(data) == 5 and data.shape == (1, 8, 8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.split = "train"
    points = PointData(points=torch.zeros(7, 2), name="toy2d-ring", split="train")
    assert len(points) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"images": torch.zeros(5, 8, 8)},
            r"images must be a \(N, C, H, W\) tensor, got \(5, 8, 8\)",
        ),
        ({"images": torch.zeros(5, 1, 8, 8, dtype=torch.uint8)}, "floating point"),
        (
            {"labels": torch.zeros(4, dtype=torch.long)},
            r"labels must have shape \(5,\), got \(4,\)",
        ),
        ({"captions": ("a",) * 4}, "captions must hold 5 strings, got 4"),
        ({"levels": 1}, "levels must be in 2..256"),
        ({"attributes": {"size": torch.zeros(3)}}, "attribute 'size' must have 5 rows"),
    ],
)
def test_inconsistent_fields_are_refused(kwargs, message):
    fields = {"images": torch.zeros(5, 1, 8, 8), "name": "x", "split": "train"} | kwargs
    with pytest.raises(ValueError, match=message):
        ImageData(**fields)
