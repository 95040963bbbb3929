"""The flight network (seed 002): site embedding, cross network, MLP, threshold head.

Input: ``features`` ``[B, F]`` (weather at three hours, site and date features; scaled by the
loader's scalers, which are never parameters here) and ``site`` ``[B]`` int64. The site's
embedding is concatenated to the features, giving ``x0``; ``cross_layers`` DCN-style layers
``x_{l+1} = x0 * (W_l x_l + b_l) + x_l`` model explicit feature interactions (wind x lapse rate,
say) at little cost; an MLP follows, then the head:

- ``head: independent``: K logits, one per threshold (sigmoid outside, e.g. in a BCE-with-logits
  loss). Nothing ties them, so the monotonicity penalty of the losses is what keeps
  ``P(score > 10) <= P(score > 0)``.
- ``head: ordinal``: monotone by construction. The MLP gives ``a`` and ``d_1..d_K`` and
  ``logit_k = a - sum_{j <= k} softplus(d_j)``, so the logits, and ``P(score > t_k)``, never
  increase with k, for any input and any weights.

``pred`` = logits ``[B, K]``, ``target`` = ``targets`` ``[B, K]`` (K = 11 thresholds).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from trainset.errors import TrainsetError
from trainset.models.mlp import (ACTIVATIONS, ConfiguredModel, check_choice, check_float, check_hidden, check_int,
                                 make_mlp, resolve_params, variable)

logger = logging.getLogger(__name__)

__all__ = ["CrossNetwork", "FlightNet", "ordinal_logits"]

HEADS = ("independent", "ordinal")


def ordinal_logits(raw: torch.Tensor) -> torch.Tensor:
    """``[B, 1 + K]`` raw outputs ``(a, d_1..d_K)`` -> ``[B, K]`` non-increasing logits."""
    return raw[:, :1] - torch.cumsum(nn.functional.softplus(raw[:, 1:]), dim=1)


class CrossNetwork(nn.Module):
    """``layers`` cross layers ``x_{l+1} = x0 * (W_l x_l + b_l) + x_l`` (DCN-v2, full-rank W)."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x0: torch.Tensor) -> torch.Tensor:
        x = x0
        for layer in self.layers:
            x = x0 * layer(x) + x
        return x


def _n_sites(info: dict[str, Any], model: str) -> int:
    value = info.get("n_sites")
    if value is None and info.get("site_ids") is not None:
        value = len(info["site_ids"])
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainsetError(f"model {model!r}: info['n_sites'] must be a positive integer, got {value!r}. "
                            "Fix: describe the dataset with trainset.models.describe_dataset (it counts site_ids)")
    return int(value)


class FlightNet(ConfiguredModel):
    """Site embedding + cross network + MLP + independent or ordinal threshold head.

    Params
    ------
    embedding_dim : int, default 16
    cross_layers : int, default 2 (0: no cross network)
    hidden : list of int, default [128, 64]
    activation : str, default "relu"
    dropout : float, default 0.0
    head : "independent" | "ordinal", default "independent"
    """

    name = "flight"
    DEFAULTS: ClassVar[dict[str, Any]] = {"embedding_dim": 16, "cross_layers": 2, "hidden": [128, 64],
                                          "activation": "relu", "dropout": 0.0, "head": "independent"}

    def __init__(self, params: dict[str, Any], info: dict[str, Any]) -> None:
        super().__init__(params, info)
        features, _ = variable(info, "features", self.name)
        targets, _ = variable(info, "targets", self.name)
        variable(info, "site", self.name)
        if len(features) != 1 or len(targets) != 1:
            raise TrainsetError(f"model {self.name!r}: features {features} and targets {targets} must be [F] and "
                                "[K] per sample. Fix: use a flight (thresholds) dataset")
        self.n_sites, self.n_targets = _n_sites(info, self.name), targets[0]
        self.embedding = nn.Embedding(self.n_sites, params["embedding_dim"])
        dim = features[0] + params["embedding_dim"]
        self.cross = CrossNetwork(dim, params["cross_layers"])
        self.body = make_mlp(dim, params["hidden"], None, params["activation"], params["dropout"])
        width = params["hidden"][-1] if params["hidden"] else dim
        ordinal = params["head"] == "ordinal"
        self.head = nn.Linear(width, self.n_targets + 1 if ordinal else self.n_targets)

    @classmethod
    def from_config(cls, params: dict[str, Any] | None, info: dict[str, Any]) -> "FlightNet":
        """Validate ``params`` against :attr:`DEFAULTS` and build the model for ``info``."""
        params = resolve_params(cls.name, cls.DEFAULTS, params)
        params["embedding_dim"] = check_int(cls.name, "embedding_dim", params["embedding_dim"])
        params["cross_layers"] = check_int(cls.name, "cross_layers", params["cross_layers"], minimum=0)
        params["hidden"] = check_hidden(cls.name, "hidden", params["hidden"])
        check_choice(cls.name, "activation", params["activation"], tuple(ACTIVATIONS))
        params["dropout"] = check_float(cls.name, "dropout", params["dropout"], 0.0, 1.0)
        check_choice(cls.name, "head", params["head"], HEADS)
        return cls(params, info)

    def logits(self, features: torch.Tensor, site: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` threshold logits (non-increasing in k for the ordinal head)."""
        site = site.long()
        bad = (site < 0) | (site >= self.n_sites)
        if bool(bad.any()):
            raise TrainsetError(f"model {self.name!r}: site index {int(site[bad][0])} outside 0..{self.n_sites - 1}. "
                                "Fix: build the model with the dataset's n_sites (all sites, not one split's)")
        x0 = torch.cat([features.float(), self.embedding(site)], dim=1)
        raw = self.head(self.body(self.cross(x0)))
        return ordinal_logits(raw) if self.params["head"] == "ordinal" else raw

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``pred`` = logits ``[B, K]``, ``target`` = ``targets``."""
        return {"pred": self.logits(batch["features"], batch["site"]), "target": batch["targets"]}
