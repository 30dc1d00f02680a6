"""The Inception path for colour images: a clear error naming what to install when no backend
is installed (the case here), features of the right shape when one is."""

from __future__ import annotations

import pytest
import torch

from genlib.metrics import evaluate_images, inception_backend, inception_features
from genlib.metrics.inception import INCEPTION_BACKENDS


@pytest.mark.skipif(inception_backend() is not None, reason="an Inception backend is installed")
def test_without_a_backend_the_error_says_what_to_install_and_that_weights_download():
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ModuleNotFoundError) as err:
        inception_features(images)
    message = str(err.value)
    assert "pip install torch-fidelity" in message and "pytorch-fid" in message
    assert "downloaded" in message and "internet" in message
    with pytest.raises(ModuleNotFoundError, match="not installed: pip install pytorch-fid"):
        inception_features(images, backend="pytorch_fid")
    # evaluating colour images reaches the same error before any data is loaded
    with pytest.raises(ModuleNotFoundError, match="torch-fidelity"):
        evaluate_images(torch.zeros(200, 3, 32, 32), against="shapes")


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="'torch_fidelity', 'pytorch_fid'"):
        inception_features(torch.zeros(2, 3, 8, 8), backend="tensorflow")


@pytest.mark.slow
@pytest.mark.skipif(inception_backend() is None, reason="no Inception backend installed")
def test_features_have_inception_shape():  # pragma: no cover - needs a backend and its weights
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    f = inception_features(images)
    assert f.shape == (3, 2048) and f.dtype == torch.float64
    grey = inception_features(images[:, :1].float() / 255)
    assert grey.shape == (3, 2048)
    assert set(INCEPTION_BACKENDS) >= {inception_backend()}
