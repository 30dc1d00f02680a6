"""The public names and signatures agreed for chapter 2's notebooks (issue 3) stay put."""

from __future__ import annotations

import inspect
import subprocess
import sys

import genlib.prob as prob

AGREED = """log_normal_diag log_normal log_bernoulli log_categorical log_discretized_gaussian
log_discretized_logistic sum_except_batch kl_normal_diag entropy cross_entropy kl_divergence
js_divergence wasserstein_1d mmd Estimate mc_mean monte_carlo sample_inverse_cdf
rejection_sample reparameterize pushforward_log_prob log_abs_det_jacobian nats_to_bits
bits_to_nats bits_per_dim""".split()

SIGNATURES = {
    "log_normal_diag": ["x", "mu", "logvar"],
    "log_normal": ["x", "mu", "sigma"],
    "log_bernoulli": ["x", "logits"],
    "log_categorical": ["x", "logits"],
    "log_discretized_gaussian": ["x", "mu", "log_scale", "n_levels"],
    "log_discretized_logistic": ["x", "mu", "log_scale", "n_levels"],
    "kl_normal_diag": ["mu_q", "logvar_q", "mu_p", "logvar_p"],
    "wasserstein_1d": ["x", "y"],
    "mmd": ["x", "y", "*bandwidth", "*unbiased"],
    "mc_mean": ["values"],
    "monte_carlo": ["f", "sample_fn", "n", "*generator", "*batch_size"],
    "sample_inverse_cdf": ["icdf", "n", "*generator", "*device", "*dtype"],
    "rejection_sample": ["log_target", "proposal_sample", "proposal_log_prob", "log_M", "n",
                         "*generator", "*max_rounds", "*check_envelope"],
    "reparameterize": ["mu", "logvar", "*generator"],
    "pushforward_log_prob": ["base_log_prob", "inverse", "x"],
    "log_abs_det_jacobian": ["fn", "x"],
    "bits_per_dim": ["nll_nats", "dim"],
}


def test_agreed_names_are_exported():
    missing = [name for name in AGREED if name not in prob.__all__ or not hasattr(prob, name)]
    assert not missing


def test_agreed_signatures():
    for name, params in SIGNATURES.items():
        got = [("*" if p.kind == p.KEYWORD_ONLY else "") + p.name
               for p in inspect.signature(getattr(prob, name)).parameters.values()]
        assert got == params, name
    assert inspect.signature(prob.log_discretized_gaussian).parameters["n_levels"].default == 256
    assert inspect.signature(prob.mmd).parameters["unbiased"].default is True
    assert inspect.signature(prob.kl_normal_diag).parameters["mu_p"].default == 0.0


def test_import_does_no_work_beyond_imports():
    """genlib.prob needs torch alone: importing it (in a fresh interpreter) loads neither scipy
    nor mpmath nor a plotting library, which the tests use but the package must not."""
    code = ("import sys, genlib.prob; "
            "bad = [m for m in ('scipy', 'matplotlib', 'mpmath') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
