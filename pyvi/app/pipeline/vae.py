"""Problem 4 in the report: the VAE on MNIST (``pyvi vae`` with its defaults)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_vae"]


def run_vae(out: Path, data: str = "embedded", epochs: int = 100, seed: int = 0, threads: int | None = 1,
            progress: bool = True, eval_images: int = 1000) -> dict:
    """Problem 4: trains the VAE (``pyvi vae`` with its defaults) into ``out``, writes ``vae.md``."""
    import argparse

    from pyvi.app import vae_cli

    args = vae_cli.add_arguments(argparse.ArgumentParser()).parse_args(
        ["--data", str(data), "--epochs", str(epochs), "--out", str(out), "--seed", str(seed),
         "--eval-images", str(eval_images)]
        + (["--threads", str(threads)] if threads else []) + ([] if progress else ["--no-progress"]))
    metrics = vae_cli.run(args)
    iwae = metrics["iwae_test_log_likelihood"]
    lines = [
        "## VAE on MNIST (Problem 4)",
        "",
        f"Data: {metrics['data']} ({metrics['num_train']:,} train / {metrics['num_test']:,} test images), "
        f"Bernoulli decoder, 2-D latent, {metrics['epochs']} epochs, {metrics['train_seconds']:.0f} s of training "
        f"on {metrics['device']} with {metrics['threads']} thread(s).",
        "",
        "| final train ELBO | final test ELBO | " + " | ".join(f"IWAE K={k}" for k in iwae) + " |",
        "|---|---|" + "---|" * len(iwae),
        f"| {metrics['final_train_elbo']:.2f} | {metrics['final_test_elbo']:.2f} | "
        + " | ".join(f"{v:.2f}" for v in iwae.values()) + " |",
        "",
        f"IWAE estimates of the test log-likelihood on {metrics['iwae_images']:,} test images; "
        "L_K rises with K towards log p(x) (Problem 2).",
        "",
    ]
    for name, caption in (("elbo_curves", "ELBO on 1,000 train and test images per epoch"),
                          ("real_digits", "100 real digits"), ("generated_digits", "100 generated digits"),
                          ("latent_scatter", "test-set latent means by label"),
                          ("latent_grid", "decoded 20 x 20 grid over the latent rectangle")):
        lines += [f"![{caption}]({out.name}/{name}.png)", ""]
    (out / "vae.md").write_text("\n".join(lines))
    return metrics
