"""Problems 1 and 2 in the report, on the trained flows (and the VAE):

- Problem 1: MCMC refinement never increases KL. Every flow sample runs its own HMC chain (fixed
  kernel, detailed balance); the k-NN KL of the refined samples to exact posterior draws is
  tracked against the number of transitions T.
- Problem 2: L_1 <= L_2 <= ... <= L_K <= log p(y) for each flow, with the exact log p(y) as the
  line, and the VAE's IWAE estimates on test images.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pyvi._seeds import derived_seed

__all__ = ["run_refinement", "run_bounds", "TRANSITIONS", "BOUND_KS"]

TRANSITIONS = (0, 1, 2, 5, 10, 20, 50)
BOUND_KS = (1, 2, 5, 10, 100)


def run_refinement(out: Path, banana, trained: dict, num_samples: int = 20_000, seed: int = 0, step_size: float = 0.05,
                   num_steps: int = 20) -> dict:
    """KL(q_T || p) by k-NN (k = 5, against ``num_samples`` exact draws) for T in TRANSITIONS;
    writes ``refine.png``, ``refine.md``, ``refine.json``."""
    from pyvi.app import plots
    from pyvi.divergence import knn_kl_estimate
    from pyvi.refine import mcmc_refine

    reference = banana.sample_exact(num_samples, seed=derived_seed(seed, 31))
    starts = {}
    for offset, (name, (flow, _)) in enumerate(trained.items()):
        with torch.no_grad():
            generator = torch.Generator().manual_seed(derived_seed(seed, 40 + offset))
            starts[name] = flow.sample(num_samples, generator).double().numpy()
    # A poor q shows the decrease best; q = p is the equality case, where nothing may change.
    prior_draws = np.random.default_rng(derived_seed(seed, 33)).normal(size=(num_samples, 2))
    starts["prior N(0, I)"] = prior_draws * banana.sigma_theta
    starts["exact draws (q = p)"] = banana.sample_exact(num_samples, seed=derived_seed(seed, 32))
    results = {}
    for offset, (name, start) in enumerate(starts.items()):
        refined = mcmc_refine(start, banana, max(TRANSITIONS), step_size, num_steps,
                              seed=derived_seed(seed, 50 + offset))
        estimates = [knn_kl_estimate(refined.samples[t], reference, k=5) for t in TRANSITIONS]
        results[name] = {"T": list(TRANSITIONS), "knn_kl": [e.value for e in estimates],
                         "knn_kl_se": [e.standard_error for e in estimates],
                         "accept_prob": float(refined.accept_prob.mean())}
    plots.series_with_errors({name: (np.array(r["T"]) + 0.5, r["knn_kl"], r["knn_kl_se"]) for name, r in results.items()},
                             out / "refine.png", "HMC transitions T (+0.5, log scale)", "k-NN KL(q_T ‖ p), nats",
                             "Problem 1: refinement by HMC never increases KL", logx=True, hline=(0.0, "KL = 0"))
    (out / "refine.json").write_text(json.dumps(results, indent=1) + "\n")
    header = "| q | " + " | ".join(f"T = {t}" for t in TRANSITIONS) + " | accept |"
    lines = [
        "## MCMC refinement never increases KL (Problem 1)",
        "",
        f"{num_samples:,} samples of each trained flow (and of the prior, a poor q), each moved by its own HMC chain (step {step_size}, "
        f"L = {num_steps}, no adaptation: detailed balance holds). k-NN KL (k = 5) to {num_samples:,} exact "
        "draws, ± one standard error. Non-increasing within noise; from q = p it stays at 0 (the equality "
        "case: only q = p, or a kernel that cannot move, gives equality). The derivation is in docs/theory.md.",
        "",
        header,
        "|---|" + "---|" * (len(TRANSITIONS) + 1),
    ]
    for name, r in results.items():
        cells = " | ".join(f"{v:.4f} ± {e:.4f}" for v, e in zip(r["knn_kl"], r["knn_kl_se"]))
        lines.append(f"| {name} | {cells} | {r['accept_prob']:.3f} |")
    lines += ["", "![KL against transitions](refine.png)", ""]
    (out / "refine.md").write_text("\n".join(lines))
    return results


def run_bounds(out: Path, banana, trained: dict, vae_metrics: dict | None = None, num_estimates: int = 4000,
               seed: int = 0) -> dict:
    """L_K for K in BOUND_KS for each flow (and the VAE's IWAE estimates when given); writes
    ``bounds.png``, ``bounds.md``, ``bounds.json``."""
    from pyvi.app import plots
    from pyvi.vi import iwae_bound

    log_evidence = banana.log_evidence()
    results = {}
    for offset, (name, (flow, _)) in enumerate(trained.items()):
        bound_seed = derived_seed(seed, 70 + offset)
        estimates = [iwae_bound(flow, banana, K, num_estimates, seed=bound_seed) for K in BOUND_KS]
        results[name] = {"K": list(BOUND_KS), "bound": [e.value for e in estimates],
                         "bound_se": [e.standard_error for e in estimates]}
    plots.series_with_errors({name: (np.array(r["K"]), r["bound"], r["bound_se"]) for name, r in results.items()},
                             out / "bounds.png", "K (importance samples)", "L_K",
                             "Problem 2: L_1 <= L_2 <= ... <= log p(y)", logx=True,
                             hline=(log_evidence, f"log p(y) = {log_evidence:.4f} (exact)"))
    lines = [
        "## Importance-weighted bounds (Problem 2)",
        "",
        f"L_K = E log((1/K) Σ p(y, θ_k)/q(θ_k)) for each trained flow, from {num_estimates:,} independent "
        f"K-sample estimates (± one standard error); exact log p(y) = {log_evidence:.4f}.",
        "",
        "| q | " + " | ".join(f"L_{k}" for k in BOUND_KS) + " | log p(y) − L_1 |",
        "|---|" + "---|" * (len(BOUND_KS) + 1),
    ]
    for name, r in results.items():
        cells = " | ".join(f"{v:.4f} ± {e:.4f}" for v, e in zip(r["bound"], r["bound_se"]))
        lines.append(f"| {name} | {cells} | {log_evidence - r['bound'][0]:.4f} |")
    lines += ["", "![bounds against K](bounds.png)", ""]
    if vae_metrics is not None:
        iwae = vae_metrics["iwae_test_log_likelihood"]
        ks = np.array([int(k) for k in iwae])
        plots.series_with_errors({"VAE, test images": (ks, list(iwae.values()), np.zeros(len(ks)))},
                                 out / "bounds_vae.png", "K (importance samples)", "L_K (nats per image)",
                                 "VAE: IWAE bound on test images (no exact line)", logx=True)
        results["vae"] = {"K": ks.tolist(), "bound": list(iwae.values())}
        lines += ["The VAE's bound on its test images rises with K the same way (log p(x) is unknown):", "",
                  "| K | " + " | ".join(str(k) for k in ks) + " |", "|---|" + "---|" * len(ks),
                  "| L_K | " + " | ".join(f"{v:.2f}" for v in iwae.values()) + " |", "",
                  "![VAE bounds against K](bounds_vae.png)", ""]
    (out / "bounds.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "bounds.md").write_text("\n".join(lines))
    return results
