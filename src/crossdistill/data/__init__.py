"""Data layer: BEIR loading/validation, the embedded SciFact default, dev-split carving."""

from crossdistill.data.beir import BeirDataset, DataError, load_beir
from crossdistill.data.embedded import EMBEDDED_ARCHIVE, scifact_path
from crossdistill.data.splits import carve_dev

__all__ = ["BeirDataset", "DataError", "load_beir", "EMBEDDED_ARCHIVE", "scifact_path", "carve_dev"]
