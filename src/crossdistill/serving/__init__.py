"""Serving: an exported run searched (Searcher: student, corpus embeddings, express lane, score traces) and its ONNX
files checked when written (fidelity)."""
