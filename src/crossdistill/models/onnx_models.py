"""ONNX export of the student (a SentenceTransformer) and the cross-encoder, ONNX Runtime wrappers, fidelity checks.

Each exported graph takes int64 ``input_ids``, ``attention_mask`` and ``token_type_ids`` with dynamic batch and
sequence axes, so any client that runs the folder's own tokenizer can serve it. The tokenizer and the truncation
length stay where ``model.save(folder)`` put them; export only adds ``<folder>/onnx/model.onnx`` (fp32) and, if
asked, ``<folder>/onnx/model_qint8.onnx`` (dynamic int8 quantisation of the weights).
"""
from __future__ import annotations

import copy
import json
import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import CrossEncoder, SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

from crossdistill.common.batching import by_length
from crossdistill.models.runtimes import Graph

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 18


class _MeanPooledEncoder(torch.nn.Module):
    """The student's forward pass as one graph: transformer, mean over the unmasked tokens, optional L2 norm."""

    def __init__(self, transformer: torch.nn.Module, normalize: bool):
        super().__init__()
        self.transformer = transformer
        self.normalize = normalize

    def forward(self, input_ids, attention_mask, token_type_ids):
        tokens = self.transformer(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=-1) if self.normalize else pooled


class _RawLogit(torch.nn.Module):
    """The cross-encoder's forward pass as one graph: the classifier's single raw logit per pair, no activation."""

    def __init__(self, classifier: torch.nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.classifier(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits[:, 0]


def _cpu_fp32_copy(module: torch.nn.Module) -> torch.nn.Module:
    """An fp32, eval-mode copy on the CPU: export never moves the caller's model or flips its training flag. The copy
    computes attention eagerly: traced, PyTorch's fused attention (sdpa) leaves Where/IsNaN guards for fully masked
    rows in the graph, which made ONNX Runtime 1.5x slower in fp32 and int8 (SciFact student, this 2-core Xeon) and
    hides the attention pattern from ONNX Runtime's transformer fusions. The outputs are the same (fidelity checks)."""
    copied = copy.deepcopy(module).to("cpu", torch.float32).eval()
    if hasattr(copied, "set_attn_implementation"):
        copied.set_attn_implementation("eager")
    return copied


def _sample_inputs(pair: bool) -> tuple[torch.Tensor, ...]:
    """Two rows, the second padded, so the trace keeps the attention-mask path (a trace of an unpadded batch may
    leave it out); for pairs a segment-B span, so ``token_type_ids`` stays wired into the graph."""
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    types = torch.zeros_like(ids)
    if pair:
        types[:, 4:] = 1
    return ids, mask, types


def _export(module: torch.nn.Module, pair: bool, output_name: str, folder: str | Path, quantize: bool) -> dict:
    """Trace ``module`` into ``<folder>/onnx/model.onnx`` and, with ``quantize``, write its int8 copy beside it."""
    out = Path(folder) / "onnx"
    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "model.onnx"
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES} | {output_name: {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        for category in (torch.jit.TracerWarning, DeprecationWarning, FutureWarning):  # the graph is judged by check_*
            warnings.simplefilter("ignore", category)
        # transformers' padding mask indexes with aranges, never with the negative indices this warns about
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(module, _sample_inputs(pair), str(fp32), input_names=list(INPUT_NAMES), output_names=[output_name],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    int8 = None
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = out / "model_qint8.onnx"
        # Per output channel, matrix products only (the embedding tables stay fp32): measured on a SciFact student,
        # mean cosine to PyTorch 0.9948 (min 0.992) against 0.948 (min 0.914) for per-tensor over every op.
        root = logging.getLogger()   # its advice to pre-process (shape inference) is for static quantisation
        level, _ = root.level, root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
        finally:
            root.setLevel(level)
    return {"fp32": str(fp32), "int8": str(int8) if int8 else None}


def _normalizes(model: SentenceTransformer) -> bool:
    """Whether the student ends in Normalize; ValueError unless it is Transformer -> mean Pooling [-> Normalize]."""
    modules = list(model)
    layout = [Transformer, Pooling, Normalize][:len(modules)]
    if len(modules) < 2 or not all(isinstance(m, kind) for m, kind in zip(modules, layout)) or len(modules) > 3:
        raise ValueError(f"expected Transformer -> Pooling [-> Normalize], got {[type(m).__name__ for m in modules]}")
    mode = getattr(modules[1], "pooling_mode", None) or modules[1].get_pooling_mode_str()  # the latter: sentence-transformers 5
    if mode != "mean":
        raise ValueError(f"only mean pooling is exported, not {mode!r}")
    return len(modules) == 3


def export_bi_encoder_onnx(model: SentenceTransformer, folder: str | Path, quantize: bool = True) -> dict:
    """Export a Transformer -> mean Pooling [-> Normalize] SentenceTransformer; the graph outputs
    ``sentence_embedding`` [batch, dim]. Returns ``{"fp32": path, "int8": path or None}``."""
    graph = _MeanPooledEncoder(_cpu_fp32_copy(model.transformers_model), _normalizes(model))
    return _export(graph, False, "sentence_embedding", folder, quantize)


def export_cross_encoder_onnx(model: CrossEncoder, folder: str | Path, quantize: bool = True) -> dict:
    """Export a one-label CrossEncoder; the graph outputs ``logits`` [batch], the raw logit of each pair.
    Returns ``{"fp32": path, "int8": path or None}``."""
    if model.num_labels != 1:
        raise ValueError(f"expected a one-label cross-encoder, got {model.num_labels} labels")
    return _export(_RawLogit(_cpu_fp32_copy(model.transformers_model)), True, "logits", folder, quantize)


def saved_max_length(folder: str | Path, tokenizer) -> int:
    """The truncation length ``model.save`` recorded in ``folder``: ``max_seq_length`` in sentence_bert_config.json
    where present (sentence-transformers < 6), else the tokenizer's ``model_max_length`` (where 6.x saves both the
    student's ``max_seq_length`` and the cross-encoder's max length), capped at the model's position embeddings."""
    def read(name: str) -> dict:
        path = Path(folder) / name
        return json.loads(path.read_text()) if path.is_file() else {}

    length = read("sentence_bert_config.json").get("max_seq_length") or tokenizer.model_max_length
    return int(min(length, read("config.json").get("max_position_embeddings") or length))


class _OnnxModel:
    """An exported folder: its tokenizer, its truncation length and one of its ONNX files compiled for the CPU by
    ONNX Runtime or (``runtime="openvino"``) OpenVINO."""

    def __init__(self, folder: str | Path, file: str = "model.onnx", threads: int | None = None,
                 runtime: str = "onnxruntime"):
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.max_length = saved_max_length(folder, self.tokenizer)
        self.graph = Graph(str(Path(folder) / "onnx" / file), runtime, threads)
        self.session, self.output_shape = self.graph.session, self.graph.output_shape

    def _run(self, *texts: list[str]) -> np.ndarray:
        """One batch: tokenize (pairs when given two lists), pad to its longest row, run the graph."""
        return self.graph.run(self.tokenizer(*texts, padding=True, truncation="longest_first", max_length=self.max_length,
                                             return_tensors="np"))

    def _batched(self, lengths: Sequence[int], batch_size: int, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Run batches of similar length (longest first, to waste little on padding); results in input order."""
        out = np.zeros((len(lengths), *self.output_shape), dtype=np.float32)
        order = by_length(lengths)
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            out[idx] = run(idx)
        return out


class OnnxBiEncoder(_OnnxModel):
    """The exported student: ``encode`` gives what ``SentenceTransformer.encode`` gives, from ONNX Runtime."""

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Float32 embeddings [n, dim], in input order."""
        texts = list(texts)
        return self._batched([len(t) for t in texts], batch_size, lambda idx: self._run([texts[i] for i in idx]))


class OnnxCrossEncoder(_OnnxModel):
    """The exported cross-encoder: ``predict`` gives the raw logits ``CrossEncoder.predict`` computes."""

    def predict(self, pairs: Sequence[tuple[str, str]], batch_size: int = 64) -> np.ndarray:
        """Float32 raw logits [n] of (query, doc) pairs, in input order."""
        pairs = list(pairs)
        return self._batched([len(q) + len(d) for q, d in pairs], batch_size,
                             lambda idx: self._run([pairs[i][0] for i in idx], [pairs[i][1] for i in idx]))


# ONNX Runtime's arena keeps what the longest batch took: checks run small batches (measured on 600 SciFact documents,
# the student's int8 file at 256 tokens: +1.2 GiB RSS at 64, +0.4 GiB at 16), at the end of a run holding ~3 GiB
CHECK_BATCH = 16


def check_bi_encoder(model: SentenceTransformer, onnx_model: OnnxBiEncoder, texts: Sequence[str],
                     batch_size: int = CHECK_BATCH) -> dict:
    """Cosine between the PyTorch and the ONNX embedding of each text: ``{"min_cosine", "mean_cosine", "n"}``.
    In batches of ``CHECK_BATCH``."""
    texts = list(texts)
    ref = np.asarray(model.encode(texts, convert_to_tensor=False, normalize_embeddings=False, show_progress_bar=False),
                     dtype=np.float64)
    got = onnx_model.encode(texts, batch_size).astype(np.float64)
    norms = np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1), 1e-12)
    cosine = (ref * got).sum(axis=1) / norms
    return {"min_cosine": float(cosine.min()), "mean_cosine": float(cosine.mean()), "n": len(texts)}


def check_cross_encoder(model: CrossEncoder, onnx_model: OnnxCrossEncoder, pairs: Sequence[tuple[str, str]]) -> dict:
    """Absolute difference between the PyTorch and the ONNX raw logits: ``{"max_abs_diff", "mean_abs_diff", "n"}``."""
    pairs = list(pairs)
    ref = np.asarray(model.predict(pairs, activation_fn=torch.nn.Identity(), convert_to_numpy=True, show_progress_bar=False),
                     dtype=np.float64)
    diff = np.abs(ref.reshape(-1) - onnx_model.predict(pairs).astype(np.float64))
    return {"max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean()), "n": len(pairs)}
