"""Content hashes that key the caches: equal inputs give equal keys, any changed byte a new one."""
from __future__ import annotations

import hashlib
import json

import torch


def state_dict_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over parameter names and bytes: two teachers with equal weights share mined artifacts."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def cache_key(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]
