"""Weight-space interpolation of a distilled student with its zero-shot start (WiSE-FT, Wortsman et al. 2022):
weights = (1 - alpha) x start + alpha x distilled, and the rule that picks alpha on dev."""
from __future__ import annotations

from collections.abc import Mapping

import torch


def interpolate(start: Mapping[str, torch.Tensor], tuned: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * start + alpha * tuned`` for every floating-point tensor (others, e.g. position ids, as tuned)."""
    if start.keys() != tuned.keys():
        raise ValueError(f"the start and the distilled student differ in their weights: {sorted(start.keys() ^ tuned.keys())[:5]}")
    return {k: ((1 - alpha) * start[k].float() + alpha * tuned[k].float()).to(tuned[k].dtype)
            if tuned[k].is_floating_point() else tuned[k] for k in tuned}


def choose_alpha(dev: Mapping[float, float], tolerance: float) -> float:
    """The alpha nearest the start (smallest) whose dev value is within ``tolerance`` of the best alpha's: what the
    start knew is kept wherever dev says it costs (almost) nothing in-domain. Ties in dev go to the smaller alpha."""
    best = max(dev.values())
    return min(alpha for alpha, value in dev.items() if value >= best - tolerance)
