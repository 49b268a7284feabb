"""The runtime that runs inference inside the pipeline (``inference_backend``): PyTorch, or an ONNX export of the
weights in hand run by ONNX Runtime (fp32 or dynamic int8) or by OpenVINO (the ``openvino`` extra).

Corpus encoding (zero-shot, per-epoch dev, tests, transfer), query encoding and the cross-encoder's scoring
(mining, reranking) pass their tokenized batches through :func:`forward`. A non-PyTorch runtime exports the model
once per state of its weights (a student changes every epoch: the next call after an optimizer step exports
again) and keeps the compiled graph while the weights stay as they are. Every backend's fidelity to PyTorch is
checked in ``tests/test_runtimes.py``; the speed of each is measured by ``scripts/benchmark_speed.py``.
"""
from __future__ import annotations

import importlib.util
import tempfile
import weakref

import numpy as np
import torch

BACKENDS = ("torch", "onnx", "onnx-int8", "openvino")


def _weights_state(model: torch.nn.Module) -> tuple:
    """What changes whenever the weights do, read without touching their bytes: every parameter's storage and its
    version counter (an optimizer step, ``load_state_dict`` or any in-place write bumps it)."""
    return tuple((p.data_ptr(), p._version) for p in model.parameters())


class Graph:
    """An ONNX file compiled for the CPU by ONNX Runtime (``onnxruntime``) or OpenVINO (``openvino``, reading the
    same file): ``run(feeds) -> np.ndarray`` (its first output), ``input_names``, ``output_shape`` (per row)."""

    def __init__(self, path: str, runtime: str = "onnxruntime", threads: int | None = None, precision: str = "32"):
        self.runtime = runtime
        if runtime == "openvino":
            import openvino

            config = {"INFERENCE_PRECISION_HINT": "bf16" if str(precision).startswith("bf16") else "f32"}
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            self.session = openvino.Core().compile_model(str(path), "CPU", config)
            self.input_names = [i.get_any_name() for i in self.session.inputs]
            self.output_shape = tuple(d.get_length() for d in self.session.outputs[0].get_partial_shape()[1:])
            self._request = self.session.create_infer_request()
        elif runtime == "onnxruntime":
            import onnxruntime

            options = onnxruntime.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.input_names = [i.name for i in self.session.get_inputs()]
            self.output_shape = tuple(self.session.get_outputs()[0].shape[1:])   # () for logits, (dim,) embeddings
        else:
            raise ValueError(f"runtime must be onnxruntime or openvino, got {runtime!r}")

    def run(self, features: dict) -> np.ndarray:
        """The graph's output for the tokenizer's ``features`` (arrays or tensors; segment ids zero if absent)."""
        ids = np.asarray(features["input_ids"])
        feeds = {name: np.asarray(features[name], dtype=np.int64) if name in features else np.zeros_like(ids, np.int64)
                 for name in self.input_names}
        if self.runtime == "openvino":
            return self._request.infer(feeds)[0].copy()
        return self.session.run(None, feeds)[0]


class _Compiled(Graph):
    """One model exported as it is now and compiled for ``backend``."""

    def __init__(self, model, backend: str, precision: str):
        from crossdistill.models.onnx_models import export_bi_encoder_onnx, export_cross_encoder_onnx

        export = export_cross_encoder_onnx if hasattr(model, "num_labels") else export_bi_encoder_onnx   # CrossEncoder
        with tempfile.TemporaryDirectory(prefix="crossdistill-runtime-") as tmp:   # read whole before it goes
            paths = export(model, tmp, quantize=backend == "onnx-int8")
            super().__init__(paths["int8"] if backend == "onnx-int8" else paths["fp32"],
                             "openvino" if backend == "openvino" else "onnxruntime", precision=precision)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model -> {backend: (state, graph)}


def compiled(model, backend: str, precision: str = "32") -> _Compiled:
    """``model``'s graph for ``backend``, exported again only when its weights (or the precision) changed."""
    state = (str(precision), _weights_state(model))
    held = _COMPILED.setdefault(model, {})
    if backend not in held or held[backend][0] != state:
        held.pop(backend, None)   # the stale graph goes before the new one is built
        held[backend] = (state, _Compiled(model, backend, precision))
    return held[backend][1]


def forward(model, features: dict, backend: str, precision: str, output: str) -> torch.Tensor:
    """``model(features)[output]`` (``sentence_embedding`` or ``scores``) as float32 on ``backend``; ``features``:
    the tokenizer's tensors (``model.preprocess``). ``torch`` runs the model itself under ``precision``'s autocast."""
    if backend == "torch":
        from crossdistill.common.precision import autocast

        with autocast(precision, features["input_ids"].device):
            return model(features)[output].float()
    if backend not in BACKENDS:
        raise ValueError(f"inference_backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    arrays = {k: v.cpu().numpy() for k, v in features.items() if isinstance(v, torch.Tensor)}
    out = torch.from_numpy(compiled(model, backend, precision).run(arrays))
    return out.unsqueeze(-1) if output == "scores" else out   # the cross-encoder's graph gives [batch], not [batch, 1]


def missing_runtime(backend: str) -> str | None:
    """The package ``backend`` needs and this environment lacks, or None."""
    need = {"onnx": ("onnx", "onnxruntime"), "onnx-int8": ("onnx", "onnxruntime"), "openvino": ("onnx", "openvino")}
    return next((name for name in need.get(backend, ()) if importlib.util.find_spec(name) is None), None)

