"""Looking up millions of ids at once without a Python object per row: pandas 3 keeps string columns in Arrow, so
iterating one (or converting it to object) makes a new Python string per row. Factorizing stays in Arrow and leaves
one lookup per distinct value."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def positions_in(index: pd.Index, values: Sequence[str], what: str = "index") -> np.ndarray:
    """The position in ``index`` (unique ids) of each of ``values``, as an int64 array; a KeyError names the first
    value ``index`` lacks ("document 'd9' is not in the <what>")."""
    codes, distinct = factorize(values)
    found = index.get_indexer(distinct)
    if (found < 0).any():
        raise KeyError(f"{distinct[int(np.argmax(found < 0))]!r} is not in the {what}")
    return found[codes].astype(np.int64, copy=False)


def factorize(values: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
    """(codes, distinct): ``values[i] == distinct[codes[i]]``, in first-seen order."""
    return pd.factorize(values if isinstance(values, (pd.Series, pd.Index)) else pd.Series(values, dtype=object))


def mapped(mapping, values: Sequence[str]) -> np.ndarray:
    """``mapping[v]`` (an int) for each of ``values``, looked up once per distinct value, as an int64 array."""
    codes, distinct = factorize(values)
    return np.fromiter((mapping[v] for v in distinct), np.int64, len(distinct))[codes]
