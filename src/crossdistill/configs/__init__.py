"""Hydra configs, shipped inside the package: train.yaml (crossdistill-train), eval.yaml (crossdistill-eval)."""
