"""Type stub of pyvi._core: the k-NN KL entry point only (merge into the full stub). Validation
errors are ValueError."""

from typing import TypedDict

import numpy as np
import numpy.typing as npt

class KnnKLResult(TypedDict):
    value: float
    terms: npt.NDArray[np.float64]
    rho: npt.NDArray[np.float64]
    nu: npt.NDArray[np.float64]
    copies_x: npt.NDArray[np.int64]
    copies_y: npt.NDArray[np.int64]

def knn_kl(
    x: npt.ArrayLike, y: npt.ArrayLike, k: int = 1, num_threads: int = 1, leaf_size: int = 24
) -> KnnKLResult:
    """k-NN estimate of KL(P || Q) from x ~ P (n, d) and y ~ Q (m, d) (Wang et al. 2009, eq. 5;
    copies of each x_i left out, as in pyvi.divergence). num_threads = 0 uses all cores."""
