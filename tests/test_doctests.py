"""The `Example:` sections of the public docstrings run as doctests."""

import doctest
import importlib

import pytest

MODULES = ["pyvi", "pyvi._backend", "pyvi.targets.base", "pyvi.targets.banana", "pyvi.targets.gaussian",
           "pyvi.targets.funnel", "pyvi.targets.gaussian_mixture", "pyvi.targets.hybrid_rosenbrock",
           "pyvi.targets.log_density", "pyvi.targets.numba_target", "pyvi.targets.c_target",
           "pyvi.models.logistic_regression", "pyvi.models.logistic_torch", "pyvi.models.user_banana",
           "pyvi.hmc.sampler", "pyvi._numba.threads",
           "pyvi.convergence", "pyvi.ops.banana", "pyvi.ops.coupling", "pyvi.refine", "pyvi.binarize", "pyvi._seeds",
           "pyvi.targets.torch_target", "pyvi.ground_truth", "pyvi.summary", "pyvi.distributed", "pyvi._layout"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert tried > 0, f"{name} has no examples"
    assert failures == 0
