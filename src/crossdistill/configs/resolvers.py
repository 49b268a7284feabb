"""OmegaConf resolvers the shipped configs use. Registered when ``crossdistill`` is imported, which every way of
composing its configs does first (the console scripts, ``initialize_config_module("crossdistill.configs")``)."""
from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf


def set_or(key: str, default, *, _root_):
    """``${crossdistill.set_or:resume,<default>}``: the value at ``key`` when it is set, else ``default``.

    ``oc.select`` returns a key's null as it is (a null ``resume`` made ``hydra.run.dir`` None); here null, an empty
    string and a missing key all mean "not set"."""
    value = OmegaConf.select(_root_, key, default=None)
    return default if value is None or value == "" else value


def user_cache() -> str:
    """The user's cache folder for crossdistill: ``$CROSSDISTILL_CACHE``, else ``$XDG_CACHE_HOME/crossdistill``, else
    ``~/.cache/crossdistill``, so runs started from different folders share one trained teacher."""
    if os.environ.get("CROSSDISTILL_CACHE"):
        return str(Path(os.environ["CROSSDISTILL_CACHE"]).expanduser())
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(Path(base).expanduser() / "crossdistill")


def register_resolvers() -> None:
    for name, fn in (("crossdistill.set_or", set_or), ("crossdistill.user_cache", user_cache)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
