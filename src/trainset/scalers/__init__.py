"""Per-feature scalers fitted on the training split of a stored dataset, kept as JSON.

The old flight trainer computed mean/std on training rows but stored them as ``nn.Parameter``
inside the model, so weight decay shrank them during training, and it divided by the raw std,
so a constant feature gave inf (anchors section 3). Here scale statistics are plain data: fitted
once from the training split, written to JSON (never pickle) beside the dataset, applied to
batches by loaders and inverted for predictions. They are never model parameters.

Kinds
-----
``standard``, ``minmax``, ``robust``
    scikit-learn's ``StandardScaler`` / ``MinMaxScaler`` (``partial_fit``: streamed over
    fixed-size chunks of training rows, bounded memory) and ``RobustScaler`` (needs all rows at
    once: fitted on at most ``max_robust_rows`` rows, the rows of whole training samples drawn
    without replacement by ``numpy.random.default_rng([seed, part number, crc32(variable)])``).
    Their fitted statistics are exported as lists: ``mean``/``scale``,
    ``data_min``/``data_range``, ``center``/``scale``. Params are the scikit-learn ones
    (``with_mean``, ``with_std``; ``feature_range``; ``with_centering``, ``with_scaling``,
    ``quantile_range``, ``unit_variance``) plus ``eps``.
``identity``, ``linear_max``, ``sqrt_max``, ``zscore``, ``log``
    The flu transforms of :mod:`trainset.transforms` (their params, e.g. ``scale``,
    ``offset``, ``eps``). Each chunk is fitted with ``Transform.fit`` and the chunk states are
    merged (max of maxima; Chan's pooled mean and std for ``zscore``).

Feature axis
------------
Statistics are per feature and reduce over every other axis. ``feature_axis`` counts axes of
the *batched* array (axis 0 is the sample axis and cannot be the feature axis). Default: ``-1``
for the scikit-learn kinds (``data`` [N,T,D] -> D features over N and T; ``features`` [N,F];
``irfs`` [N,S,H+1,V] -> one scale per variable V) and ``1`` for the flu transforms, whose
convention is ``(sample, feature, ...)`` (``frames`` [N,1,W,P] -> one feature).

Spreads below ``eps`` (std, range, IQR; default 1e-8) are replaced by ``eps``, so a constant
feature maps to 0 (``minmax``: to the lower end of ``feature_range``) instead of dividing by zero.

Several parts (macro worlds): statistics are kept per variable *and* per part
(``statistics[variable][part]``), and :meth:`ScalerSet.transform` picks each row's statistics
from the batch's ``part`` list, one vectorised operation per part. Entries
beyond a part's own feature count (padding by ``collate_mixed_worlds``) and entries masked out
by ``<variable>_mask`` (``shock_mask`` for ``irfs``) are left unchanged.

Read back, statistics are checked before use (:mod:`trainset.scalers.checks`): finite numbers,
one per feature, divisors > 0; and at training start the scalers must record the identity of
the dataset being trained (:func:`trainset.open.dataset_identity`, the same for the NetCDF and
every copy converted from it).
"""

from trainset.scalers.fit import fit_dataset_scalers, fit_scalers
from trainset.scalers.scaler_set import ScalerSet
from trainset.scalers.spec import KINDS, ScalerSpec, parse_spec

__all__ = ["KINDS", "ScalerSet", "ScalerSpec", "fit_dataset_scalers", "fit_scalers", "parse_spec"]
