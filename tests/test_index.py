"""Dense search backends: exact on any device, FAISS flat equal to it, approximate indexes measured against it."""
from __future__ import annotations

import pytest
import torch

from crossdistill.retrieval.dense import exact_search
from crossdistill.retrieval.index import ExactSearch, FaissSearch, recall_against_exact

pytest.importorskip("faiss")


def embeddings(n: int, dim: int = 32, seed: int = 0, topics: int = 30) -> torch.Tensor:
    """Unit vectors around ``topics`` centres, as text embeddings cluster (uniform noise would defeat any index)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(topics, dim, generator=torch.Generator().manual_seed(99))
    x = centres[torch.randint(topics, (n,), generator=g)] + 0.5 * torch.randn(n, dim, generator=g)
    return torch.nn.functional.normalize(x, dim=-1)


def test_recall_against_exact_is_the_mean_share_of_the_exact_top_k():
    exact = {"q1": [("a", 3), ("b", 2)], "q2": [("c", 1), ("d", 0)]}
    approx = {"q1": [("b", 2), ("x", 1)], "q2": [("d", 0), ("c", 1)]}
    assert recall_against_exact(approx, exact, 2) == pytest.approx((1 / 2 + 2 / 2) / 2)


def test_faiss_flat_returns_what_exact_search_returns():
    docs, queries = embeddings(500), embeddings(20, seed=1)
    doc_ids, qids = [f"d{i}" for i in range(500)], [f"q{i}" for i in range(20)]
    exact = exact_search(queries, docs, qids, doc_ids, 10)
    flat = FaissSearch(kind="flat").search(queries, docs, qids, doc_ids, 10)
    assert [[d for d, _ in flat[q]] for q in qids] == [[d for d, _ in exact[q]] for q in qids]
    assert flat["q0"][0][1] == pytest.approx(exact["q0"][0][1], abs=1e-5)
    assert ExactSearch(device="cpu").search(queries, docs, qids, doc_ids, 10) == exact


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_keep_most_of_the_exact_top_100(kind):
    docs, queries = embeddings(3000), embeddings(50, seed=2)
    doc_ids, qids = [f"d{i}" for i in range(3000)], [f"q{i}" for i in range(50)]
    index = FaissSearch(kind=kind, ef_search=128, nprobe=16)   # narrow: 16 of 219 cells, not all of them
    approx = index.search(queries, docs, qids, doc_ids, 100)
    assert index.approximate and all(len(hits) == 100 for hits in approx.values())
    assert recall_against_exact(approx, exact_search(queries, docs, qids, doc_ids, 100), 100) >= 0.9
    # the index is built once per set of embeddings and rebuilt for new ones
    built = index._built[1]
    index.search(queries, docs, qids, doc_ids, 5)
    assert index._built[1] is built
    index.search(queries, docs.clone(), qids, doc_ids, 5)
    assert index._built[1] is not built


def test_the_static_benchmark_corpus_is_scifact_plus_distractors_of_its_own_sentences(tmp_path):
    """benchmark_index.py --embeddings static: SciFact's documents verbatim, then distractors x0.. each made of
    three sentences of one SciFact document and one of another; SciFact's test judgments point at the originals.
    No distractor opens with a document's first sentence (its title): a truncating encoder would see a copy."""
    import sys

    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "scripts"))
    from benchmark_index import static_corpus

    from crossdistill.data.weak import split_sentences

    doc_ids, texts, queries, qrels = static_corpus(5_183 + 2_000, seed=3)
    assert len(doc_ids) == len(texts) == 7_183 and doc_ids[5_183:] == [f"x{i}" for i in range(2_000)]
    # Each distractor is SciFact sentences joined by spaces (read back greedily: re-splitting the text would merge a
    # sentence without end punctuation with the next).
    known: dict[tuple[str, ...], set[str]] = {}
    for t in texts[:5_183]:
        for sentence in split_sentences(t):
            known.setdefault(tuple(sentence.split(" ")[:2]), set()).add(sentence)
    openings = {split_sentences(t)[0] for t in texts[:5_183]}

    def sentences_of(text: str) -> list[str]:
        parts = []
        while text:
            words = text.split(" ")[:2]
            fits = [s for s in known.get(tuple(words), set()) | known.get(tuple(words[:1]), set())
                    if text == s or text.startswith(s + " ")]
            assert fits, text
            parts.append(max(fits, key=len))
            text = text[len(parts[-1]) + 1:]
        return parts

    for text in texts[5_183:]:
        parts = sentences_of(text)
        assert 2 <= len(parts) <= 4 and parts[0] not in openings, text
    assert len(queries) == 300 and {d for judged in qrels.values() for d in judged} <= set(doc_ids[:5_183])
    assert static_corpus(5_183 + 2_000, seed=3)[1] == texts   # seeded
