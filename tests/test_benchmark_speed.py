"""scripts/benchmark_speed.py: the targets are judged from the figures, and the tables say which are met."""
from __future__ import annotations

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import benchmark_speed as bs  # noqa: E402


def _bench(onnx_int8_docs_s: float, query_ms: float) -> dict:
    lat = lambda p50, p99: {"p50_ms": p50, "p99_ms": p99, "mean_ms": p50, "n": 300}   # noqa: E731
    return {
        "run": "outputs/x", "docs": 1000, "pairs": 1000, "finished": "2026-12-06T00:00:00+00:00",
        "machine": {"cpu": "X", "cores": 2, "memory_gib": 24, "gpu": None, "torch": "2.13.0"},
        "throughput": {"corpus_docs_per_s": {"sentence_transformers_fp32": 100.0, "torch": 98.0,
                                             "onnx": 160.0, "onnx-int8": onnx_int8_docs_s, "openvino": 120.0},
                       "teacher_pairs_per_s": {"sentence_transformers_fp32": 50.0, "torch": 49.0, "onnx": 70.0,
                                               "onnx-int8": 120.0},
                       "export_and_compile_s": {"onnx": 3.0, "onnx-int8": 9.5}},
        "training": {"triples_per_step": 16, "sentence_transformers_fp32": 10.0, "torch": 25.0},
        "matmul": {"peak_gflops": 200.0, "gflop_per_doc": 1.0, "share": {"torch": 0.49, "onnx": 0.8}},
        "latency": {"sentence_transformers_fp32": lat(10.0, 30.0), "searcher_torch": lat(9.0, 25.0),
                    "searcher_onnx": lat(query_ms, 8.0), "searcher_onnx-int8": lat(query_ms + 1, 9.0),
                    "express_lane_onnx": lat(45.0, 80.0), "express_lane_onnx-int8": lat(30.0, 50.0)},
        "int8_quality": "x"}


ONNX = {"cross_encoder": {"int8": {"test_express_lane_ndcg@10": 0.770, "test_express_lane_ndcg@10_fp32": 0.773}}}


def test_targets_are_judged_from_the_figures():
    bench = _bench(onnx_int8_docs_s=260.0, query_ms=2.5)
    met = bs.targets(bench["throughput"], bench["latency"], ONNX)
    assert met["corpus encoding >= 1.5x ST (fp32, fastest faithful)"] == {"figure": "1.600", "met": True}
    assert met["cross-encoder scoring >= 1.5x ST (fp32, fastest faithful)"] == {"figure": "1.400", "met": False}
    assert met["corpus encoding int8 >= 2.5x ST fp32"]["met"] is True
    assert met["single query p50 < 3 ms"] == {"figure": "2.500", "met": True}
    assert met["single query >= 2.5x faster than ST fp32 encode"] == {"figure": "4.000", "met": True}
    assert met["express lane p50 < 60 ms"]["figure"] == "30.000"
    assert met["int8 reranker nDCG@10 within 0.005 of fp32"] == {"figure": "0.003", "met": True}
    slow = bs.targets(_bench(onnx_int8_docs_s=200.0, query_ms=4.0)["throughput"],
                      _bench(onnx_int8_docs_s=200.0, query_ms=4.0)["latency"], ONNX)
    assert not slow["corpus encoding int8 >= 2.5x ST fp32"]["met"] and not slow["single query p50 < 3 ms"]["met"]


def test_the_table_shows_each_backend_against_sentence_transformers_and_each_target():
    bench = _bench(onnx_int8_docs_s=260.0, query_ms=2.5)
    bench["targets"] = bs.targets(bench["throughput"], bench["latency"], ONNX)
    md = bs.render(bench)
    assert "| onnx-int8 | 260.0 | 2.60 | 120.0 | 2.40 | 9.5 |" in md
    assert "| openvino | 120.0 | 1.20 | – | – | – |" in md
    assert "ours 25.0 triples/s (2.50x)" in md and "torch 49%, onnx 80%" in md
    assert "| searcher_onnx | 2.50 | 8.00 | 2.50 |" in md
    assert "| single query p50 < 3 ms | 2.500 | met |" in md
