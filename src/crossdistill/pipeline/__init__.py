"""The stages of a run over one shared context: ``train.run`` (train.py) and ``evaluate.run`` (eval.py)."""
