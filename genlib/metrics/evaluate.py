"""Evaluate generated images against a dataset in one call, beside the real-data floor.

:func:`evaluate_images` runs the whole protocol: check the images, compute their features and
the reference split's (cached per process), then FID with a bootstrap interval, KID with its
spread over subsets, precision / recall / density / coverage with bootstrap intervals, and
the class histogram of the samples under the shipped classifier (mode dropping). It returns
plain JSON-ready values, with the protocol that produced them.

:func:`real_floor` runs the same protocol on *real* images, the test split against the train
split: the value each metric takes when the "generator" is the data distribution itself.
A sample set is as good as the metric can tell when it scores within the floor's range (the
kit's targets say "within 2x of the floor" for FID). Cached per process.

Feature networks: ``"digits"``, the kit's digit classifier
(:mod:`genlib.metrics.features`, 128 features, for 28 x 28 digits: ``mnist5k``, ``mnist``),
or ``"inception"`` (:mod:`genlib.metrics.inception`, for colour images; needs an optional
package). ``"auto"`` picks by dataset; any callable ``images (N, C, H, W) float [0, 1] ->
features (N, D)`` works too. Chapter 8; the ``genlib eval`` command prints the result.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import torch

from genlib.metrics._checks import as_features, check_int, make_generator
from genlib.metrics._threads import cpu_threads
from genlib.metrics.classes import ClassHistogram, class_histogram
from genlib.metrics.frechet import fid
from genlib.metrics.kid import kid
from genlib.metrics.prdc import prdc
from genlib.metrics.result import MetricResult

__all__ = [
    "FEATURE_NETWORKS",
    "RESULT_KEYS",
    "evaluate_features",
    "evaluate_images",
    "real_floor",
    "format_report",
    "clear_cache",
]

FeatureFn = Callable[[torch.Tensor], Any]   # (N, C, H, W) float32 in [0, 1] -> (N, D)
ClassifierFn = Callable[[torch.Tensor], Any]  # -> (N, K) logits or (N,) labels

#: The named feature networks ``features=`` accepts (besides a callable).
FEATURE_NETWORKS = ("auto", "digits", "inception")
#: The metric keys of :func:`evaluate_images`' result (besides the interval keys and
#: ``protocol``).
RESULT_KEYS = ("n", "fid", "fid_ci", "kid", "kid_sd", "precision", "recall", "density",
               "coverage", "class_hist")
_DIGIT_DATASETS = ("mnist5k", "mnist")
_CACHE: dict[tuple, Any] = {}   # per-process cache of reference features and floors
_CACHE_MAX = 16


def clear_cache() -> None:
    """Forget the cached reference features and real floors of this process."""
    _CACHE.clear()


def _cached(key: tuple | None, compute: Callable[[], Any]) -> Any:
    if key is None:
        return compute()
    if key not in _CACHE:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))       # the oldest entry
        _CACHE[key] = compute()
    return _CACHE[key]


# -------------------------------------------------------------------------- input checks
_RANGE_TOL = 1e-4


def _prepare_images(images: Any, shape: tuple[int, ...], dataset: str) -> torch.Tensor:
    """``images`` as float32 ``(N, C, H, W)`` in ``[0, 1]``, or a clear error naming the usual
    mix-ups (channels last, uint8 vs float, 0..255 floats, [-1, 1], NaN)."""
    if isinstance(images, np.ndarray):
        if images.dtype == object or not (np.issubdtype(images.dtype, np.number)
                                          or images.dtype == np.bool_):
            raise TypeError(f"images must be a numeric array (N, C, H, W), got dtype "
                            f"{images.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor or numpy.ndarray (N, C, H, W), got "
                        f"{type(images).__name__}")
    got = tuple(images.shape)
    want = f"(N, {', '.join(map(str, shape))})"
    if images.ndim != 4 or got[1:] != tuple(shape):
        hint = ""
        if images.ndim == 4 and got[3] == shape[0] and got[1:3] == tuple(shape[1:]):
            hint = "; the images are channels-last (N, H, W, C): use images.transpose(0, 3, 1, 2)"
        elif images.ndim == 3 and shape[0] == 1 and got[1:] == tuple(shape[1:]):
            hint = "; add the channel axis: images[:, None]"
        elif images.ndim == 2 and got[1] == int(np.prod(shape)):
            hint = f"; reshape flat pixels: images.reshape(-1, {', '.join(map(str, shape))})"
        elif images.ndim == 4:
            hint = f"; {dataset} images are {shape[1]} x {shape[2]} with {shape[0]} channel(s)"
        raise ValueError(f"images must have shape {want} to compare with {dataset}, got "
                         f"{got}{hint}")
    n = got[0]
    if n < 2:
        raise ValueError(f"images must hold at least 2 samples, got N={n}")
    if images.dtype == torch.uint8:
        hi = int(images.max())
        if hi <= 1:
            raise ValueError(
                f"images are uint8 (pixel levels 0..255) but their largest value is {hi}: "
                "these look like [0, 1] images cast to uint8 without scaling; use "
                "(x * 255).round().astype(np.uint8), or pass the float images")
        return images.to(torch.float32) / 255.0
    if images.dtype == torch.bool or not images.is_floating_point():
        raise TypeError(f"images must be uint8 (0..255) or float (0..1), got dtype "
                        f"{images.dtype}; convert integer pixels with .astype(np.uint8)")
    x = images.to(torch.float32)
    finite = torch.isfinite(x)
    if not finite.all():
        bad = int((~finite).flatten(1).any(1).sum())
        raise ValueError(f"images hold NaN or infinite values in {bad} of {n} images (a "
                         "diverged sampler?)")
    lo, hi = float(x.min()), float(x.max())
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        if lo >= 0 and hi <= 255:
            hint = ("; these look like pixel levels 0..255 stored as floats: divide by 255 or "
                    "cast to uint8")
        elif lo >= -1 - _RANGE_TOL and hi <= 1 + _RANGE_TOL:
            hint = "; these look like images in [-1, 1]: map them with (x + 1) / 2"
        else:
            hint = ""
        raise ValueError(f"float images must hold values in [0, 1], got values in "
                         f"[{lo:.4g}, {hi:.4g}]{hint}")
    return x.clamp_(0.0, 1.0)


# ------------------------------------------------------------------- feature networks
def _resolve_features(features: str | FeatureFn, dataset: str, shape: tuple[int, ...],
                      device: Any) -> tuple[FeatureFn, str, Hashable | None]:
    """(function, description, cache key) for ``features``."""
    if callable(features):
        name = getattr(features, "__name__", type(features).__name__)
        return features, f"callable {name}", features if isinstance(features, Hashable) else None
    if not isinstance(features, str) or features not in FEATURE_NETWORKS:
        raise ValueError(f"features must be one of {', '.join(map(repr, FEATURE_NETWORKS))} or "
                         f"a callable images -> (N, D) features, got {features!r}")
    if features == "auto":
        if dataset in _DIGIT_DATASETS and tuple(shape) == (1, 28, 28):
            features = "digits"
        elif shape[0] == 3 or dataset == "fashion-mnist":
            features = "inception"
        else:
            raise ValueError(
                f"features='auto' has no feature network for {dataset} {tuple(shape)}: the "
                f"shipped digit classifier judges 28 x 28 digits ({', '.join(_DIGIT_DATASETS)}) "
                "and Inception colour images; pass features=a callable mapping images "
                "(N, C, H, W) in [0, 1] to features (N, D)")
    if features == "digits":
        if tuple(shape) != (1, 28, 28):
            raise ValueError(f"features='digits' judges (1, 28, 28) digits, but {dataset} "
                             f"images are {tuple(shape)}")
        from genlib.metrics import features as digit_module

        sha = str(digit_module.digit_classifier_info().get("sha256", "?"))[:12]
        return (lambda x: digit_module.digit_features(x, device=device),
                f"digits (genlib digit classifier, weights sha256 {sha}...)", "digits")
    from genlib.metrics.inception import inception_features, require_inception_backend

    require_inception_backend()                      # fail before loading any data
    return (lambda x: inception_features(x, device=device), "inception (Inception-v3 pool3)",
            "inception")


def _resolve_classifier(classifier: str | ClassifierFn | None, features_key: Hashable | None,
                        has_labels: bool, device: Any
                        ) -> tuple[ClassifierFn | None, str | None, str | None]:
    """(function, description, "digits" for the shipped classifier else None)."""
    if classifier is None:
        return None, None, None
    if callable(classifier):
        return classifier, f"callable {getattr(classifier, '__name__', 'classifier')}", None
    if classifier not in ("auto", "digits"):
        raise ValueError(f"classifier must be 'auto', 'digits', None or a callable images -> "
                         f"(N, K) logits, got {classifier!r}")
    if classifier == "auto" and not (features_key == "digits" and has_labels):
        return None, None, None
    from genlib.metrics import features as digit_module

    return (lambda x: digit_module.digit_logits(x, device=device),
            "digits (genlib digit classifier)", "digits")


def _digit_logits_from_features(feats: torch.Tensor) -> torch.Tensor:
    """The digit classifier's logits from its own features: its last layer, ``head``, maps
    the pooled features to logits (dropout is off in eval mode), so the network need not run
    a second time. ``(N, D)`` float64 -> ``(N, 10)``."""
    from genlib.metrics.features import load_digit_classifier

    head = load_digit_classifier("cpu").head
    with torch.inference_mode():
        return head(feats.to(torch.float32)).to(torch.float64)


def _features(fn: FeatureFn, x: torch.Tensor, what: str) -> torch.Tensor:
    f = fn(x)
    if isinstance(f, torch.Tensor | np.ndarray):
        f = as_features(f, f"features of {what}", min_rows=1)
        if f.shape[0] == x.shape[0]:
            return f.cpu()
    raise ValueError(f"the feature function must return (N, D) features, one row per image; "
                     f"for {x.shape[0]} {what} it returned "
                     f"{getattr(f, 'shape', type(f).__name__)}")


# ------------------------------------------------------------------------- evaluation
def evaluate_features(feat_gen: Any, feat_real: Any, *, k: int = 5, n_boot: int = 100,
                      kid_subsets: int = 100, kid_subset_size: int = 1000, level: float = 0.95,
                      generator: torch.Generator | None = None) -> dict[str, MetricResult]:
    """FID, KID, precision, recall, density and coverage of ``feat_gen (M, D)`` against
    ``feat_real (N, D)``, each a :class:`MetricResult` (keys ``"fid"``, ``"kid"``,
    ``"precision"``, ``"recall"``, ``"density"``, ``"coverage"``).

    The arguments are those of :func:`~genlib.metrics.frechet.fid`,
    :func:`~genlib.metrics.kid.kid` and :func:`~genlib.metrics.prdc.prdc`; one ``generator``
    (None: seeded with 0) draws every resample and subset, in that order.
    """
    g = make_generator(generator)
    out = {"fid": fid(feat_gen, feat_real, n_boot=n_boot, level=level, generator=g),
           "kid": kid(feat_gen, feat_real, n_subsets=kid_subsets, subset_size=kid_subset_size,
                      generator=g)}
    out.update(prdc(feat_gen, feat_real, k=k, n_boot=n_boot, level=level, generator=g).as_dict())
    return out


def evaluate_images(images: Any, *, against: str = "mnist5k", split: str = "train",
                    features: str | FeatureFn = "auto",
                    classifier: str | ClassifierFn | None = "auto", k: int = 5,
                    n_boot: int = 100, kid_subsets: int = 100, kid_subset_size: int = 1000,
                    generator: torch.Generator | None = None,
                    device: str | torch.device | None = None,
                    num_threads: int | None = 1) -> dict[str, Any]:
    """Sample-quality metrics of generated ``images`` against a dataset split.

    Args:
        images: ``(N, C, H, W)`` uint8 pixel levels 0..255 (as in ``genlib sample`` files) or
            floats in ``[0, 1]``, tensor or array; ``(C, H, W)`` must match the dataset.
        against: the reference dataset (a name of :data:`genlib.data.DATASETS`).
        split: its split to compare with (default the training split).
        features: ``"auto"`` (digits for ``mnist5k``/``mnist``, Inception for colour images),
            ``"digits"``, ``"inception"``, or a callable ``(N, C, H, W) float -> (N, D)``.
        classifier: predicts the samples' classes for the class histogram: ``"auto"`` (the
            digit classifier when the features are the digit classifier's and the dataset has
            labels; else none), ``"digits"``, a callable ``images -> (N, K) logits`` (or
            ``(N,)`` labels), or None.
        k: neighbours for precision / recall / density / coverage.
        n_boot: bootstrap resamples for the FID and P/R/D/C intervals (0: none).
        kid_subsets, kid_subset_size: KID's random subsets.
        generator: draws the resamples and subsets (None: seeded with 0, reproducible).
        device: where the feature network runs (default: the CPU).
        num_threads: CPU threads for the whole evaluation (torch's setting is restored
            afterwards); None keeps the current setting. One by default: on a busy 2-core
            machine two threads made 10,000 samples take 34 s instead of 12 s (see
            ``genlib/metrics/_threads.py``); on an idle one a second thread saves a few seconds.

    Returns:
        A JSON-ready dict with the keys of :data:`RESULT_KEYS`: ``n``; ``fid`` and ``fid_ci``
        (95% interval, ``[lo, hi]``); ``kid`` and ``kid_sd``; ``precision``, ``recall``,
        ``density``, ``coverage`` (each also with a ``*_ci`` interval); ``class_hist`` (counts,
        shares, ``min_share``, ``min_class``, ``missing``; None without a classifier). And
        ``protocol``: dataset, split, reference size, feature network, ``k``, resamples, seed.

    Raises:
        ValueError / TypeError: unknown dataset or split, images of the wrong shape, dtype or
            range, NaNs, or fewer samples than feature dimensions (FID's covariance would be
            singular; the message says how many are needed).
    """
    from genlib.data import DATASETS

    if not isinstance(against, str) or against not in DATASETS:
        raise ValueError(f"against must name a dataset, got {against!r}; valid names: "
                         f"{', '.join(DATASETS)}")
    info = DATASETS[against]
    if info.kind != "images":
        image_sets = ", ".join(n for n, i in DATASETS.items() if i.kind == "images")
        raise ValueError(f"against={against!r} is a set of {info.kind}, not images; image "
                         f"datasets: {image_sets}")
    if split not in info.splits:
        raise ValueError(f"split must be one of {', '.join(map(repr, info.splits))} for "
                         f"{against}, got {split!r}")
    k = check_int(k, "k", minimum=1)
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads", minimum=1)
    g = make_generator(generator)
    with cpu_threads(num_threads):
        return _evaluate(images, against, split, features, classifier, k, n_boot, kid_subsets,
                         kid_subset_size, g, device)


def _evaluate(images: Any, against: str, split: str, features: str | FeatureFn,
              classifier: str | ClassifierFn | None, k: int, n_boot: int, kid_subsets: int,
              kid_subset_size: int, g: torch.Generator, device: Any) -> dict[str, Any]:
    from genlib.data import DATASETS, load

    info = DATASETS[against]
    seed = g.initial_seed()
    shape = tuple(info.shape)
    x = _prepare_images(images, shape, against)
    feat_fn, feat_label, feat_key = _resolve_features(features, against, shape, device)
    dev_key = str(device) if device is not None else "cpu"

    def reference() -> tuple[torch.Tensor, Any]:
        data = load(against, split)
        return _features(feat_fn, data.images, f"{against} {split} images"), data

    ref_key = None if feat_key is None else ("reference", against, split, feat_key, dev_key)
    feat_real, data = _cached(ref_key, reference)
    cls_fn, cls_label, cls_key = _resolve_classifier(classifier, feat_key, data.labels is not None,
                                            device)
    feat_gen = _features(feat_fn, x, "images")
    n, d = feat_gen.shape
    if n <= d:
        raise ValueError(
            f"images: FID needs more samples than feature dimensions, got N={n} images for "
            f"D={d} features ({feat_label}); the covariance of {n} samples has rank <= {n - 1} "
            f"and is singular. Pass at least {d + 1} images (1,000 or more for a stable "
            f"estimate: FID's bias shrinks like 1/N)")
    metrics = evaluate_features(feat_gen, feat_real, k=k, n_boot=n_boot,
                                kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                generator=g)
    hist = None
    if cls_fn is not None:
        if feat_key == "digits" and cls_key == "digits":
            logits = _digit_logits_from_features(feat_gen)    # one pass through the network
        else:
            logits = cls_fn(x)
        hist = _class_hist(logits, data)
    result: dict[str, Any] = {"n": n}
    f, kd = metrics["fid"], metrics["kid"]
    result.update(fid=f.value, fid_ci=list(f.ci) if f.ci else None, kid=kd.value,
                  kid_sd=kd.sd)
    for name in ("precision", "recall", "density", "coverage"):
        m = metrics[name]
        result[name] = m.value
        result[f"{name}_ci"] = list(m.ci) if m.ci else None
    result["class_hist"] = hist.as_dict() if hist is not None else None
    result["protocol"] = {
        "dataset": against, "split": split, "n_real": int(feat_real.shape[0]),
        "features": feat_label, "feature_dim": d, "classifier": cls_label, "k": k,
        "n_boot": n_boot, "level": 0.95, "ci_method": f.method or None,
        "kid_subsets": kid_subsets, "kid_subset_size": min(kid_subset_size, n,
                                                           int(feat_real.shape[0])),
        "seed": seed,
    }
    return result


def _class_hist(out: Any, data: Any) -> ClassHistogram:
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the classifier must return a tensor of (N, K) logits or (N,) labels, "
                        f"got {type(out).__name__}")
    names = tuple(data.classes) if data.classes is not None else None
    if out.ndim == 2:
        if names is not None and len(names) != out.shape[1]:
            names = None
        return class_histogram(out, class_names=names)
    n_classes = len(names) if names is not None else int(data.labels.max()) + 1
    return class_histogram(out, n_classes, class_names=names)


def real_floor(dataset: str = "mnist5k", *, features: str | FeatureFn = "auto",
               classifier: str | ClassifierFn | None = "auto", k: int = 5, n_boot: int = 100,
               kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0,
               device: str | torch.device | None = None,
               num_threads: int | None = 1) -> dict[str, Any]:
    """The metrics of the real ``test`` split against the ``train`` split: the "as good as
    real" yardstick. Same arguments and result as :func:`evaluate_images` (with the seed of the
    resamples as an int); ``protocol["samples"]`` says the samples were real. Cached per
    process (by all arguments): repeated calls are free.
    """
    from genlib.data import DATASETS, load

    if not isinstance(dataset, str) or dataset not in DATASETS:
        raise ValueError(f"dataset must name a dataset, got {dataset!r}; valid names: "
                         f"{', '.join(DATASETS)}")
    if "test" not in DATASETS[dataset].splits:
        raise ValueError(f"{dataset} has no test split (splits: "
                         f"{', '.join(DATASETS[dataset].splits)})")
    seed = check_int(seed, "seed", minimum=0)
    hashable = all(isinstance(v, Hashable) for v in (features, classifier))
    key = (("floor", dataset, features, classifier, k, n_boot, kid_subsets, kid_subset_size,
            seed, str(device)) if hashable else None)

    def compute() -> dict[str, Any]:
        test = load(dataset, "test")
        result = evaluate_images(test.images, against=dataset, split="train",
                                 features=features, classifier=classifier, k=k, n_boot=n_boot,
                                 kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                 generator=torch.Generator().manual_seed(seed), device=device,
                                 num_threads=num_threads)
        result["protocol"]["samples"] = f"real: the {dataset} test split"
        return result

    result = _cached(key, compute)
    return {**result, "protocol": dict(result["protocol"])}


# ---------------------------------------------------------------------------- report
def _fmt(value: float | None, spread: float | None) -> str:
    if value is None:
        return "-"
    if spread is not None and np.isfinite(spread) and spread > 0:
        decimals = int(min(max(0, 1 - np.floor(np.log10(spread))), 8))
        return f"{value:.{decimals}f}"
    return f"{value:.4g}"


def _cell(result: dict[str, Any], name: str) -> tuple[str, str]:
    """(value, uncertainty) strings for metric ``name`` of a result dict."""
    value = result.get(name)
    if name == "kid":
        sd = result.get("kid_sd")
        return _fmt(value, sd), (f"± {_fmt(sd, sd)} (sd)" if sd is not None else "")
    ci = result.get(f"{name}_ci")
    if not ci:
        return _fmt(value, None), ""
    spread = (ci[1] - ci[0]) / 2
    return _fmt(value, spread), f"[{_fmt(ci[0], spread)}, {_fmt(ci[1], spread)}]"


def format_report(result: dict[str, Any], floor: dict[str, Any] | None = None) -> str:
    """A text table of :func:`evaluate_images`' result: each metric, its interval (or sd) and,
    if given, the real floor's value beside it."""
    p = result["protocol"]
    lines = [f"{result['n']:,} samples against {p['dataset']} {p['split']} "
             f"({p['n_real']:,} images); features: {p['features']}, D={p['feature_dim']}",
             f"intervals: {p['level']:.0%} ({p.get('ci_method') or 'none'}); KID: sd over "
             f"{p['kid_subsets']} subsets of {p['kid_subset_size']:,}; k={p['k']}"]
    header = f"{'metric':<16}{'value':>10}  {'interval':<24}"
    if floor is not None:
        header += f"real floor (n={floor['n']:,} test vs train)"
    lines += [header, "-" * len(header)]
    for name, label in (("fid", "FID"), ("kid", "KID"), ("precision", "precision"),
                        ("recall", "recall"), ("density", "density"),
                        ("coverage", "coverage")):
        value, unc = _cell(result, name)
        row = f"{label:<16}{value:>10}  {unc:<24}"
        if floor is not None:
            fv, fu = _cell(floor, name)
            row += f"{fv} {fu}"
        lines.append(row)
    hist = result.get("class_hist")
    if hist is not None:
        which = f"({hist['min_class']})"
        row = f"{'smallest class':<16}{hist['min_share']:>10.1%}  {which:<24}"
        fh = floor.get("class_hist") if floor is not None else None
        if fh is not None:
            row += f"{fh['min_share']:.1%} ({fh['min_class']})"
        lines.append(row)
        missing = ", ".join(hist["missing"]) or "none"
        row = f"{'missing classes':<16}{missing:>10}  {'':<24}"
        if fh is not None:
            row += ", ".join(fh["missing"]) or "none"
        lines.append(row)
    return "\n".join(lines)
