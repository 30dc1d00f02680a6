"""Sample-quality metrics as estimators with uncertainty (chapter 8).

One module per concept:

- :mod:`~genlib.metrics.result`          ``MetricResult``: a value with its interval or sd and
  its sample sizes (no metric here returns a bare number)
- :mod:`~genlib.metrics.frechet`         ``frechet_distance``, ``fid`` (bootstrap interval),
  ``fid_infinity`` (FID's 1/n bias measured and extrapolated)
- :mod:`~genlib.metrics.kid`             ``kid``: unbiased polynomial-kernel MMD over subsets
- :mod:`~genlib.metrics.inception_score` ``inception_score`` from class predictions
- :mod:`~genlib.metrics.prdc`            precision / recall, density / coverage (k-NN balls)
- :mod:`~genlib.metrics.classes`         ``class_histogram``: mode dropping by class shares
- :mod:`~genlib.metrics.classnoise`      ``class_count_noise``: what random class counts add
  to the FID of independent samples, beside a class-stratified floor; ``fid_with_class_counts``
- :mod:`~genlib.metrics.likelihood`      ``nll_summary``: test NLL in nats, bits, bits/dim with
  its standard error
- :mod:`~genlib.metrics.features`        the shipped digit classifier and its features
- :mod:`~genlib.metrics.inception`       Inception-v3 features via an optional package
- :mod:`~genlib.metrics.evaluate`        ``evaluate_images`` and ``real_floor``: the whole
  protocol in one call (the ``genlib eval`` command)

Importing this package does no work: the digit classifier's weights load on first use, and
its names (``digit_features``, ``digit_logits``, ``load_digit_classifier``, ...) are imported
from :mod:`genlib.metrics.features` only when asked for.
"""

import importlib

from genlib.metrics.classes import ClassHistogram, class_histogram
from genlib.metrics.classnoise import (
    ClassCountNoise,
    class_count_noise,
    fid_with_class_counts,
    mean_term_excess,
    stratified_counts,
)
from genlib.metrics.evaluate import (
    FEATURE_NETWORKS,
    RESULT_KEYS,
    clear_cache,
    evaluate_features,
    evaluate_images,
    format_report,
    real_floor,
)
from genlib.metrics.frechet import (
    FIDInfinity,
    fid,
    fid_infinity,
    fit_inverse_n,
    frechet_distance,
    gaussian_stats,
    sqrtm_psd,
    trace_sqrt_product,
)
from genlib.metrics.inception import inception_backend, inception_features
from genlib.metrics.inception_score import inception_score
from genlib.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from genlib.metrics.likelihood import bits_per_dim, bits_to_nats, nats_to_bits, nll_summary
from genlib.metrics.prdc import PRDC, knn_radii, prdc
from genlib.metrics.result import MetricResult

# names served lazily from genlib.metrics.features (its import stays off the import path)
_FEATURE_NAMES = ("ClassifierConfig", "DigitClassifier", "load_digit_classifier",
                  "digit_features", "digit_logits", "digit_classifier_info")

__all__ = [
    "MetricResult",
    "frechet_distance",
    "gaussian_stats",
    "sqrtm_psd",
    "trace_sqrt_product",
    "fid",
    "FIDInfinity",
    "fid_infinity",
    "fit_inverse_n",
    "kid",
    "nll_summary",
    "nats_to_bits",
    "bits_to_nats",
    "bits_per_dim",
    "mmd2_unbiased",
    "polynomial_kernel",
    "inception_score",
    "PRDC",
    "prdc",
    "knn_radii",
    "ClassHistogram",
    "class_histogram",
    "ClassCountNoise",
    "class_count_noise",
    "fid_with_class_counts",
    "mean_term_excess",
    "stratified_counts",
    "inception_backend",
    "inception_features",
    "FEATURE_NETWORKS",
    "RESULT_KEYS",
    "evaluate_features",
    "evaluate_images",
    "real_floor",
    "format_report",
    "clear_cache",
    *_FEATURE_NAMES,
]


def __getattr__(name: str):
    """``genlib.metrics.digit_features`` etc.: imported from :mod:`genlib.metrics.features` on
    first use."""
    if name in _FEATURE_NAMES:
        return getattr(importlib.import_module("genlib.metrics.features"), name)
    raise AttributeError(f"module 'genlib.metrics' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_FEATURE_NAMES])
