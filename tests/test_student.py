import pandas as pd
import pytest
import torch

from crossdistill.student.batch import DistillBatch, ScoredBatch
from crossdistill.student.data import collate_pairs, pair_examples
from crossdistill.student.losses import DistillLoss, InBatchNegativesLoss
from crossdistill.student.module import DEFAULT_LOSSES, BiEncoderStudent


def only(**weights: float) -> dict:
    """The default loss entries named, at these weights."""
    return {name: {**DEFAULT_LOSSES[name], "weight": w} for name, w in weights.items()}


def test_grouped_batch_gives_the_same_loss_as_separate_pairs(tiny_bert):
    student = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32,
                               losses=only(margin_mse=1.0)).eval()  # eval: no dropout; margin-MSE alone
    pairs = pd.DataFrame({"qid": ["q1", "q1", "q1", "q2"], "docid_a": ["a", "a", "b", "c"],
                          "docid_b": ["x", "y", "x", "z"], "margin": [1.0, 2.0, -0.5, 3.0]})
    queries = {"q1": "cell gene expression", "q2": "quick brown fox"}
    text = {d: f"{d} the cell and the dog" for d in "abcxyz"}
    examples = pair_examples(pairs, queries, text)
    assert len(examples) == 3  # (q1,a) with two worse docs, (q1,b), (q2,c)
    batch = collate_pairs([examples[i] for i in range(3)])
    with torch.no_grad():
        grouped = student.training_step(batch, 0)
        expected = []
        for r in pairs.itertuples():
            q = student.embed([queries[r.qid]], 64)[0]
            a, b = student.embed([text[r.docid_a], text[r.docid_b]], 32)
            expected.append((3.0 * (q @ a - q @ b) - r.margin) ** 2)
    assert grouped.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-5)


def test_pair_examples_group_interleaved_pairs_in_first_seen_order():
    pairs = pd.DataFrame({"qid": ["q2", "q1", "q2", "q1", "q1"], "docid_a": ["c", "a", "c", "b", "a"],
                          "docid_b": ["z", "x", "y", "x", "y"], "margin": [3.0, 1.0, 0.5, -0.5, 2.0]})
    queries = {"q1": "first query", "q2": "second query"}
    examples = pair_examples(pairs, queries, {d: f"text {d}" for d in "abcxyz"})
    assert [examples[i] for i in range(len(examples))] == [
        {"queries": "second query", "docs_a": "text c", "docs_b": ["text z", "text y"], "margins": [3.0, 0.5]},
        {"queries": "first query", "docs_a": "text a", "docs_b": ["text x", "text y"], "margins": [1.0, 2.0]},
        {"queries": "first query", "docs_a": "text b", "docs_b": ["text x"], "margins": [-0.5]}]
    assert len(pair_examples(pairs.iloc[:0], queries, {})) == 0


def test_auto_scale_must_be_resolved_before_training(tiny_bert):
    with pytest.raises(ValueError, match="student.scale"):
        BiEncoderStudent(model=str(tiny_bert), scale="large")
    student = BiEncoderStudent(model=str(tiny_bert), scale="auto", max_doc_length=32, losses=only(margin_mse=1.0)).eval()
    batch = collate_pairs([{"queries": "cell", "docs_a": "cell gene", "docs_b": ["dog"], "margins": [2.0]}])
    with pytest.raises(RuntimeError, match="not resolved"):
        student.training_step(batch, 0)
    student.set_scale(3.0)
    with torch.no_grad():
        loss = student.training_step(batch, 0)
        q, (a, b) = student.embed(["cell"], 64)[0], student.embed(["cell gene", "dog"], 32)
    assert loss.item() == pytest.approx(((3.0 * (q @ a - q @ b) - 2.0) ** 2).item(), rel=1e-5)


def test_in_batch_term_adds_weighted_cross_entropy_over_the_batch_docs(tiny_bert):
    from crossdistill.student.losses import InBatchNegativesLoss

    plain = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32, losses=only(margin_mse=1.0)).eval()
    mixed = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32,
                             losses=only(margin_mse=1.0, in_batch=0.5)).eval()
    mixed.load_state_dict(plain.state_dict())
    # groups 0 and 1 share a query: each one's better doc is no negative for the other; group 2's worse doc "a" is
    # the same text as group 0's better doc, so it is no negative for that query either.
    batch = collate_pairs([{"queries": "cell gene", "docs_a": "a", "docs_b": ["x", "y"], "margins": [1.0, 2.0]},
                           {"queries": "cell gene", "docs_a": "b", "docs_b": ["z"], "margins": [0.5]},
                           {"queries": "brown fox", "docs_a": "c", "docs_b": ["a"], "margins": [3.0]}])
    with torch.no_grad():
        base, total = plain.training_step(batch, 0), mixed.training_step(batch, 0)
        q = plain.embed(["cell gene", "cell gene", "brown fox"], 64)
        docs = plain.embed(["a", "b", "c", "x", "y", "z", "a"], 32)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, [1, 6]] = True   # query 0: the other better doc of its query, and its own text again
    mask[1, [0, 6]] = True   # query 1 (the same query): group 0's better doc, in both places
    expected = InBatchNegativesLoss(3.0)(q, docs, torch.arange(3), mask)
    assert total.item() == pytest.approx(base.item() + 0.5 * expected.item(), rel=1e-5)
    wrong = InBatchNegativesLoss(3.0)(q, docs, torch.arange(3), torch.zeros(3, 7, dtype=torch.bool))
    assert abs(wrong.item() - expected.item()) > 1e-4   # the mask matters in this batch


def test_kl_term_adds_weighted_listwise_kl_and_margin_mse_can_be_turned_off(tiny_bert):
    from crossdistill.student.losses import ListwiseKLLoss, MarginMSELoss

    kl_only = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32,
                               losses={"kl": {**DEFAULT_LOSSES["kl"], "weight": 2.0, "temperature": 0.5}}).eval()
    batch = collate_pairs([{"queries": "cell gene", "docs_a": "a", "docs_b": ["x", "y"], "margins": [1.0, 2.0]},
                           {"queries": "brown fox", "docs_a": "c", "docs_b": ["z"], "margins": [3.0]}])
    with torch.no_grad():
        total = kl_only.training_step(batch, 0)
        q = kl_only.embed(["cell gene", "brown fox"], 64)
        docs = kl_only.embed(["a", "c", "x", "y", "z"], 32)
    owner, margins = torch.tensor([0, 0, 1]), torch.tensor([1.0, 2.0, 3.0])
    expected = ListwiseKLLoss(3.0, temperature=0.5)(q, docs[:2], docs[2:], owner, margins)
    assert total.item() == pytest.approx(2.0 * expected.item(), rel=1e-5)
    margin = MarginMSELoss(3.0)(q[owner], docs[:2][owner], docs[2:], margins)
    assert abs(margin.item()) > 1e-3   # it would have changed the total, had it been on


class CenteringLoss(DistillLoss):
    """A loss defined here, outside the package: the squared norm of the batch's mean query embedding."""

    def __init__(self, weight: float = 1.0):
        super().__init__(weight)

    def from_batch(self, batch: ScoredBatch) -> torch.Tensor:
        return batch.query.mean(0).pow(2).sum()


def test_a_new_loss_is_one_class_and_one_config_entry(tiny_bert, tiny_beir, tmp_path):
    """Added with an override (no other file touched): built, weighted, summed and logged like the shipped ones."""
    from hydra.utils import instantiate

    from conftest import compose, tiny_overrides

    cfg = compose([*tiny_overrides(tiny_bert, tiny_beir, tmp_path, tmp_path / "cache"), "student.scale=3.0",
                   f"+student.losses.centering={{_target_: {__name__}.CenteringLoss, weight: 0.25}}"])
    student = instantiate(cfg.student).eval()
    assert list(student.losses) == ["margin_mse", "in_batch", "kl", "start_anchor", "centering"]
    batch = collate_pairs([{"queries": "cell gene", "docs_a": "a", "docs_b": ["x", "y"], "margins": [1.0, 2.0]},
                           {"queries": "brown fox", "docs_a": "c", "docs_b": ["z"], "margins": [3.0]}])
    logged = {}
    student.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    with torch.no_grad():
        total = student.training_step(batch, 0)
        scored = student.encode_batch(batch)
    parts = {name: student.losses[name].from_batch(scored).item() for name in ("margin_mse", "in_batch", "centering")}
    assert total.item() == pytest.approx(parts["margin_mse"] + 10 * parts["in_batch"] + 0.25 * parts["centering"],
                                         rel=1e-5)
    assert logged["student/centering_loss"] == pytest.approx(parts["centering"], rel=1e-5)
    assert "student/kl_loss" not in logged   # weight 0: not computed
    # the checkpointed hyperparameters are plain values: a checkpoint loads weights-only with the new term
    assert student.hparams.losses["centering"] == {"_target_": f"{__name__}.CenteringLoss", "weight": 0.25}


def test_losses_check_what_they_are_given(tiny_bert):
    with pytest.raises(ValueError, match="every weight is 0"):
        BiEncoderStudent(model=str(tiny_bert), scale=3.0, losses=only(margin_mse=0.0)).training_step(
            collate_pairs([{"queries": "q", "docs_a": "a", "docs_b": ["b"], "margins": [1.0]}]), 0)
    with pytest.raises(ValueError, match="is not a DistillLoss"):
        BiEncoderStudent(model=str(tiny_bert), losses={"x": {"_target_": "torch.nn.MSELoss"}})
    with pytest.raises(ValueError, match="3 worse docs, 2 owners and 3 margins"):
        DistillBatch(["q"], ["a"], ["b", "c", "d"], torch.tensor([0, 0]), torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="mask must be"):
        InBatchNegativesLoss(1.0)(torch.ones(2, 4), torch.ones(3, 4), torch.arange(2), torch.ones(2, 2, dtype=torch.bool))


def _one_batch():
    return collate_pairs([{"queries": "cell gene", "docs_a": "a cell", "docs_b": ["x dog"], "margins": [2.0]},
                          {"queries": "brown fox", "docs_a": "c fox", "docs_b": ["a cell"], "margins": [1.0]}])


def test_start_anchor_is_the_squared_distance_to_the_start_weights_and_pulls_back(tiny_bert):
    from crossdistill.student.losses import StartAnchorLoss

    student = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32,
                               losses=only(margin_mse=1.0, start_anchor=0.25)).eval()
    anchor = student.losses["start_anchor"]
    assert anchor().item() == 0.0   # at the start
    named = dict(student.encoder.named_parameters())
    weight = next(n for n in named if n.endswith("layer.0.attention.self.query.weight"))
    bias = next(n for n in named if n.endswith("layer.0.output.dense.bias"))
    with torch.no_grad():
        named[weight][0, :3] += torch.tensor([0.1, -0.2, 0.3])
        named[bias][:2] -= 0.5
    assert anchor().item() == pytest.approx(0.01 + 0.04 + 0.09 + 2 * 0.25, rel=1e-5)
    # the step's loss is margin-MSE plus 0.25 x that distance; its gradient on a moved weight points back to the start
    plain = BiEncoderStudent(model=str(tiny_bert), scale=3.0, max_doc_length=32, losses=only(margin_mse=1.0)).eval()
    plain.load_state_dict(student.state_dict())
    batch = _one_batch()
    total, base = student.training_step(batch, 0), plain.training_step(batch, 0)
    assert total.item() == pytest.approx(base.item() + 0.25 * 0.64, rel=1e-5)
    total.backward()
    base.backward()
    pull = named[bias].grad[:2] - dict(plain.encoder.named_parameters())[bias].grad[:2]
    assert torch.allclose(pull, torch.tensor([-0.25, -0.25]), atol=1e-6)   # 0.25 x 2 x (w - w_start) = 0.25 x 2 x -0.5
    # never saved: checkpoints hold the weights alone, and a student loaded later anchors to its own start
    assert not any("start_anchor" in k for k in student.state_dict())
    assert StartAnchorLoss(weight=0.0)._params == []
    with pytest.raises(RuntimeError, match="bind"):
        StartAnchorLoss(weight=1.0)()


def test_frozen_embeddings_and_lower_layers_keep_their_start_weights_through_training(tmp_path):
    from tiny_models import save_tiny_bert

    two_layers = save_tiny_bert(tmp_path / "bert2", layers=2)
    student = BiEncoderStudent(model=str(two_layers), scale=3.0, max_doc_length=32, losses=only(margin_mse=1.0),
                               freeze_embeddings=True, frozen_layers=1)
    start = {k: v.clone() for k, v in student.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in student.parameters() if p.requires_grad], lr=1.0)
    for _ in range(2):
        optimizer.zero_grad()
        student.training_step(_one_batch(), 0).backward()
        optimizer.step()
    after = student.state_dict()
    moved = {k for k in start if not torch.equal(start[k], after[k])}
    assert moved and all(".layer.1." in k for k in moved), sorted(moved)[:5]   # only the upper layer trained
    assert not any("embeddings" in k or ".layer.0." in k for k in moved)
    with pytest.raises(ValueError, match="student.frozen_layers must be in"):
        BiEncoderStudent(model=str(two_layers), frozen_layers=3)
