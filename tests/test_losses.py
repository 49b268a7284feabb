import math

import pytest
import torch

from crossdistill.student.losses import MarginMSELoss
from crossdistill.teacher.losses import listwise_softmax, pairwise_logistic, pointwise_bce

SCORES = torch.tensor([[2.0, 1.0, -1.0], [0.5, 1.5, 0.0]])


def test_listwise_softmax_matches_hand_computation():
    row0 = -2.0 + math.log(math.exp(2.0) + math.exp(1.0) + math.exp(-1.0))
    row1 = -0.5 + math.log(math.exp(0.5) + math.exp(1.5) + math.exp(0.0))
    assert listwise_softmax(SCORES).item() == pytest.approx((row0 + row1) / 2, abs=1e-6)


def test_pairwise_logistic_matches_hand_computation():
    margins = [1.0, 3.0, -1.0, 0.5]
    expected = sum(math.log1p(math.exp(-m)) for m in margins) / 4
    assert pairwise_logistic(SCORES).item() == pytest.approx(expected, abs=1e-6)


def test_pointwise_bce_matches_hand_computation():
    def bce(x, y):
        p = 1 / (1 + math.exp(-x))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = sum(bce(x, 1.0 if j == 0 else 0.0) for row in SCORES.tolist() for j, x in enumerate(row)) / 6
    assert pointwise_bce(SCORES).item() == pytest.approx(expected, abs=1e-6)


def test_margin_mse_matches_formula():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    a = torch.tensor([[0.5, 0.5], [1.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, -1.0]])
    teacher_margin = torch.tensor([1.0, 2.0])
    # student margins: q.a - q.b = (0.5 - 0) and (2 - (-2)) = 0.5 and 4.0, times scale 2 -> 1.0 and 8.0
    expected = ((1.0 - 1.0) ** 2 + (8.0 - 2.0) ** 2) / 2
    assert MarginMSELoss(scale=2.0)(q, a, b, teacher_margin).item() == pytest.approx(expected)


def test_margin_mse_equals_sentence_transformers_loss():
    from sentence_transformers.sentence_transformer.losses import MarginMSELoss as STMarginMSELoss

    torch.manual_seed(0)
    q, a, b = torch.randn(3, 8, 16).unbind(0)
    labels = torch.randn(8)
    st_loss = STMarginMSELoss(model=None).compute_loss_from_embeddings([q, a, b], labels)
    assert MarginMSELoss(scale=1.0)(q, a, b, labels).item() == pytest.approx(st_loss.item(), rel=1e-6)


def test_in_batch_negatives_matches_hand_computation_and_skips_masked_docs():
    from crossdistill.student.losses import InBatchNegativesLoss

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    docs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    target = torch.tensor([0, 1])
    mask = torch.tensor([[False, False, True], [False, False, False]])   # doc 2 is no negative for query 0
    # scale 2: query 0 logits (2, 0) over docs 0, 1; query 1 logits (0, 2, 1) over docs 0, 1, 2
    row0 = -2.0 + math.log(math.exp(2.0) + math.exp(0.0))
    row1 = -2.0 + math.log(math.exp(0.0) + math.exp(2.0) + math.exp(1.0))
    loss = InBatchNegativesLoss(scale=2.0)(q, docs, target, mask)
    assert loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    # a mask on the target itself never removes it
    assert InBatchNegativesLoss(2.0)(q, docs, target, torch.ones(2, 3, dtype=torch.bool)).item() == pytest.approx(0.0)


def test_listwise_kl_matches_hand_computation_on_groups_of_different_sizes():
    from crossdistill.student.losses import ListwiseKLLoss

    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])            # student: s(q, a) = 1 for both groups
    b = torch.tensor([[0.0, 1.0], [0.5, 0.0], [0.0, 0.0]])
    owner = torch.tensor([0, 0, 1])                        # group 0: a + 2 worse docs; group 1: a + 1
    margins = torch.tensor([1.0, 2.0, 0.5])                # teacher: t_b = t_a - margin

    def kl(teacher, student):
        p = torch.softmax(torch.tensor(teacher), 0)
        return float((p * (p.log() - torch.log_softmax(torch.tensor(student), 0))).sum())

    scale = 2.0   # student scores 2 * <q, d>: group 0 (2, 0, 1), group 1 (2, 0)
    expected = (kl([0.0, -1.0, -2.0], [2.0, 0.0, 1.0]) + kl([0.0, -0.5], [2.0, 0.0])) / 2
    assert ListwiseKLLoss(scale)(q, a, b, owner, margins).item() == pytest.approx(expected, abs=1e-6)
    t = 2.0       # a temperature softens both sides, and T^2 restores the gradient scale
    soft = (kl([0.0, -0.5, -1.0], [1.0, 0.0, 0.5]) + kl([0.0, -0.25], [1.0, 0.0])) / 2 * t * t
    assert ListwiseKLLoss(scale, temperature=t)(q, a, b, owner, margins).item() == pytest.approx(soft, abs=1e-6)


def test_listwise_kl_equals_sentence_transformers_distill_kl(tiny_bert):
    from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss

    from crossdistill.student.losses import ListwiseKLLoss

    torch.manual_seed(0)
    q, a, b1, b2 = torch.randn(4, 5, 8).unbind(0)
    t_a, t_b = torch.randn(5), torch.randn(5, 2)
    labels = torch.cat([t_a[:, None], t_b], 1)             # teacher scores of (a, b1, b2) per query
    st = DistillKLDivLoss(model=None).compute_loss_from_embeddings([q, a, b1, b2], labels)
    owner = torch.arange(5).repeat_interleave(2)
    b = torch.stack([b1, b2], 1).reshape(10, 8)
    ours = ListwiseKLLoss(scale=1.0)(q, a, b, owner, (t_a[:, None] - t_b).reshape(10))
    assert ours.item() == pytest.approx(st.item(), rel=1e-5)
