"""crossdistill's evaluation entry point: `python eval.py model=<SentenceTransformer folder or hub id>`, optionally
with `reranker=<CrossEncoder folder>`, `run_file=<TREC run>` and `data=beir data.path=<BEIR folder>`.
The same as the installed `crossdistill-eval` console script."""
from crossdistill.cli import evaluate

if __name__ == "__main__":
    evaluate()
