"""Towers, pooling and losses on hand-made tensors: shapes, masking, unknown slots."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from segrec.models import ModelConfig, SampledSoftmax, TowerSizes, TwoTower, full_softmax_loss
from segrec.models.loss import NEG, basket_softmax_loss
from segrec.models.towers import HistoryPooling

SIZES = TowerSizes(
    n_customers=6, n_items=11, segment_sizes=[4, 3], attribute_sizes=[4, 5], n_numeric=4
)
CFG = ModelConfig(
    dim=8, hidden=16, segment_dim=4, history_len=5, dropout=0.0, item_bias=False, segment_bias=False
)


def make(cfg: ModelConfig = CFG, seed: int = 0) -> TwoTower:
    torch.manual_seed(seed)
    attrs = torch.randint(1, 4, (SIZES.n_items, 2))
    attrs[0] = 0
    return TwoTower(cfg, SIZES, attrs).eval()


def inputs(b: int = 3) -> tuple[torch.Tensor, ...]:
    customer = torch.tensor([1, 0, 5][:b])
    segments = torch.tensor([[1, 2], [0, 0], [3, 1]][:b])
    history = torch.tensor([[3, 4, 0, 0, 0], [0, 0, 0, 0, 0], [1, 2, 3, 4, 5]][:b])
    numeric = torch.linspace(-1, 1, 4 * b).reshape(b, 4)
    return customer, segments, history, numeric


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_shapes_and_unit_norm(pooling: str) -> None:
    model = make(replace(CFG, pooling=pooling))
    u = model.customer_vectors(*inputs())
    v = model.item_vectors()
    assert u.shape == (3, 8) and v.shape == (SIZES.n_items, 8)
    assert torch.allclose(u.norm(dim=1), torch.ones(3), atol=1e-5)
    assert torch.isfinite(u).all()


def test_item_bias_is_one_more_column_of_the_same_inner_product() -> None:
    model = make(replace(CFG, item_bias=True))
    with torch.no_grad():
        model.item_bias.weight.copy_(torch.linspace(-2, 2, SIZES.n_items).unsqueeze(1))
    u, v = model.customer_vectors(*inputs()), model.item_vectors()
    assert model.output_dim == 9 and u.shape == (3, 9) and v.shape == (SIZES.n_items, 9)
    cosine = u[:, :8] @ v[:, :8].T
    # u' . v' / temperature = cosine / temperature + bias: popularity stays one dot product
    expected = cosine / CFG.temperature + model.item_bias.weight.T
    assert torch.allclose((u @ v.T) * model.logit_scale(), expected, atol=1e-4)
    assert torch.allclose(u[:, :8].norm(dim=1), torch.ones(3), atol=1e-5)


def test_segment_bias_adds_each_label_bias_inside_the_inner_product() -> None:
    model = make(replace(CFG, item_bias=True, segment_bias=True))
    assert model.n_labels == 7 and model.output_dim == 8 + 1 + 7
    with torch.no_grad():
        model.segment_bias.weight.copy_(torch.randn(SIZES.n_items, 7))
    customer, segments, history, numeric = inputs()
    u, v = model.customer_vectors(customer, segments, history, numeric), model.item_vectors()
    table = model.segment_bias.weight  # (items, 4 + 3): family 0's labels, then family 1's
    expected = (u[:, :9] @ v[:, :9].T) * model.logit_scale()
    expected = expected + table[:, segments[:, 0]].T + table[:, 4 + segments[:, 1]].T
    assert torch.allclose((u @ v.T) * model.logit_scale(), expected, atol=1e-4)
    # Without segments (the ids-only ablation) there is nothing to bias by.
    ids_only = make(replace(CFG, segment_bias=True, use_segments=False, use_history=False))
    assert ids_only.n_labels == 0 and ids_only.output_dim == 8


def test_copurchase_prior_adds_its_scaled_product_inside_the_inner_product() -> None:
    cfg = replace(CFG, copurchase_rank=3)
    sizes = replace(SIZES, copurchase_items=4)
    torch.manual_seed(1)
    model = TwoTower(cfg, sizes).eval()
    rows = torch.tensor([0, 1, 0, 2, 3, 0, 4, 0, 0, 0, 0])  # items 1, 3, 4, 6 modelled
    history_table, item_table = torch.randn(5, 3), torch.randn(5, 3)
    history_table[0] = item_table[0] = 0.0
    model.set_copurchase(rows, history_table, item_table, scale=7.0)
    history = inputs()[2]
    u, v = model.customer_vectors(*inputs()), model.item_vectors()
    assert model.output_dim == 11 and u.shape == (3, 11) and v.shape == (SIZES.n_items, 11)
    # The prior's score: 7 * sum over the history of h[rows[i]] . w[rows[j]], by hand.
    prior = torch.zeros(3, SIZES.n_items)
    for b in range(3):
        for i in history[b].tolist():
            for j in range(SIZES.n_items):
                prior[b, j] += 7.0 * float(history_table[rows[i]] @ item_table[rows[j]])
    cosine = u[:, :8] @ v[:, :8].T
    expected = cosine / CFG.temperature + prior
    assert torch.allclose((u @ v.T) * model.logit_scale(), expected, atol=1e-3)
    # The tables travel with the state dict; the scale is the one learned parameter.
    trainable = {n for n, p in model.named_parameters() if "copurchase" in n}
    assert trainable == {"copurchase_log_scale"}
    assert {"copurchase_rows", "copurchase_history", "copurchase_items"} <= set(model.state_dict())


def test_copurchase_prior_needs_its_tables_and_the_history() -> None:
    with pytest.raises(ValueError, match="copurchase_items is 0"):
        TwoTower(replace(CFG, copurchase_rank=3), SIZES)
    with pytest.raises(ValueError, match="copurchase_rank > 0 reads the history"):
        replace(CFG, copurchase_rank=3, use_history=False).check()


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_padding_is_masked(pooling: str) -> None:
    pool = HistoryPooling(pooling, 4, 5)
    emb = torch.randn(2, 5, 4)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = pool(emb, mask)
    emb2 = emb.clone()
    emb2[0, 2:] = 100.0  # whatever sits in the padded slots must not matter
    assert torch.allclose(pool(emb2, mask), out)
    assert torch.equal(out[1], torch.zeros(4))  # no history: zeros, not NaN
    if pooling == "mean":
        assert torch.allclose(out[0], emb[0, :2].mean(0))


def test_unknown_ids_and_labels_answer() -> None:
    model = make()
    _, segments, history, numeric = inputs()
    far = torch.tensor([0, 0, 0]), torch.zeros_like(segments)
    u = model.customer_vectors(*far, history, numeric)
    assert torch.isfinite(u).all()


def test_cold_customer_vector_depends_on_segments_and_history() -> None:
    model = make()
    unknown = torch.tensor([0, 0])
    numeric = torch.zeros(2, 4)
    same_hist = torch.tensor([[3, 0, 0, 0, 0], [3, 0, 0, 0, 0]])
    u = model.customer_vectors(unknown, torch.tensor([[1, 1], [2, 1]]), same_hist, numeric)
    assert not torch.allclose(u[0], u[1])
    hist = torch.tensor([[3, 0, 0, 0, 0], [7, 8, 0, 0, 0]])
    u = model.customer_vectors(unknown, torch.tensor([[1, 1], [1, 1]]), hist, numeric)
    assert not torch.allclose(u[0], u[1])


def test_switched_off_inputs_are_ignored() -> None:
    model = make(replace(CFG, use_segments=False, use_history=False, use_numeric=False))
    customer, segments, history, numeric = inputs()
    a = model.customer_vectors(customer, segments, history, numeric)
    b = model.customer_vectors(customer, segments * 0, history * 0, numeric * 0)
    assert torch.equal(a, b)
    assert not hasattr(model.customer_tower, "pooling")


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match=r"model\.pooling"):
        make(replace(CFG, pooling="max"))
    with pytest.raises(ValueError, match="at least one"):
        make(replace(CFG, use_ids=False, use_segments=False, use_history=False, use_numeric=False))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # 0 days would loop for ever on one snapshot date, a negative count grow without end.
        ("segment_snapshot_days", 0, r"model\.segment_snapshot_days must be null or >= 1"),
        ("segment_bias_support", 0.0, r"model\.segment_bias_support must be null or > 0"),
        ("negative_uniform_share", 2.0, r"model\.negative_uniform_share must be in \[0, 1\]"),
        ("n_negatives", 0, r"model\.n_negatives must be >= 1"),
        ("dropout", 1.0, r"model\.dropout must be in \[0, 1\)"),
        ("lr", 0.0, r"model\.lr must be > 0"),
        ("batch_size", 1, r"model\.batch_size must be >= 2 with model\.use_numeric"),
    ],
)
def test_values_that_fail_deep_inside_are_refused_by_name(
    key: str, value: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        replace(CFG, **{key: value}).check()


def test_one_basket_batches_are_fine_without_numeric_features() -> None:
    replace(CFG, batch_size=1, use_numeric=False).check()


def test_a_head_without_bias_or_prior_columns_is_refused() -> None:
    """Segment biases need segments: with them off and nothing else past the cosine, the
    head would rank new items by their index."""
    cfg = replace(CFG, segment_bias=True, use_segments=False, prior_heads=[0, 3])
    cfg.check()  # the ablation of a model with segment biases switches them off this way
    with pytest.raises(ValueError, match=r"model\.prior_heads .* this model has none"):
        make(cfg)
    with pytest.raises(ValueError, match=r"model\.prior_heads .* this model has none"):
        TwoTower(replace(cfg, use_segments=True), replace(SIZES, segment_sizes=[]))
    assert make(replace(cfg, item_bias=True)).output_dim == CFG.dim + 1


def _fit_steps(model: TwoTower, loss_fn, steps: int = 40) -> tuple[float, float]:
    """Planted task: basket b of customer c holds items c + 1 and c + 2; returns the
    (first, last) loss."""
    customer, segments, history, numeric = inputs()
    targets = torch.cat([customer + 1, customer + 2])
    rows = torch.arange(3).repeat(2)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        u = model.customer_vectors(customer, segments, history, numeric)
        loss = loss_fn(model, u, targets, rows)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses[0], losses[-1]


def test_full_softmax_loss_decreases() -> None:
    first, last = _fit_steps(make(), full_softmax_loss)
    assert last < 0.6 * first


def test_sampled_softmax_loss_decreases_and_masks_hits() -> None:
    freq = torch.arange(SIZES.n_items).float()
    loss_fn = SampledSoftmax(freq, lines_per_batch=6, n_negatives=8)
    first, last = _fit_steps(make(), loss_fn)
    assert last < 0.6 * first
    assert loss_fn.negative_p[0] == 0  # never samples the unknown item
    assert (loss_fn.negative_p[1:] > 0).all()  # ... but every real one, bought or not


def test_full_softmax_leaves_the_baskets_other_lines_out_of_its_negatives() -> None:
    """Each line's softmax: its own item and every item its basket did not buy, the same
    objective as the sampled loss's (so ``loss: auto`` switching kinds changes no aim)."""
    model = make()
    customer, segments, history, numeric = inputs(1)
    u = model.customer_vectors(customer, segments, history, numeric)
    logits = (u * model.logit_scale()) @ model.item_vectors().T  # (1, n_items)
    others = torch.ones(SIZES.n_items, dtype=torch.bool)
    others[[0, 5, 6]] = False
    expected = [
        float(torch.logaddexp(logits[0, t], logits[0, others].logsumexp(0)) - logits[0, t])
        for t in (5, 6)
    ]
    got = full_softmax_loss(model, u, torch.tensor([5, 6]), torch.tensor([0, 0]))
    assert float(got) == pytest.approx(sum(expected) / 2, rel=1e-5)


def test_basket_softmax_loss_and_gradient_match_torch_ops() -> None:
    """The hand-written log-sum-exp gives the loss and the gradient that a masked fill and
    ``torch.logsumexp`` give: with a column bias, repeated masked and picked pairs, and a
    row whose columns are all masked (finite, no NaN)."""
    torch.manual_seed(0)
    logits = (torch.randn(4, 7, dtype=torch.float64) * 8).requires_grad_()
    bias = torch.randn(7, dtype=torch.float64)
    # Basket 0's item 4 on two lines: their own-logit gradients add up.
    rows, own = torch.tensor([0, 0, 0, 1, 2, 3]), torch.tensor([1, 4, 4, 4, 0, 6])
    masked = (torch.cat([rows, torch.tensor([2, 2, 3])]), torch.cat([own, torch.tensor([5, 5, 2])]))
    masked = (torch.cat([masked[0], torch.full((7,), 3)]), torch.cat([masked[1], torch.arange(7)]))
    weights = torch.tensor([1.0, 0.5, 0.25, 2.0, 1.0, 1.0], dtype=torch.float64)

    def reference(x: torch.Tensor) -> torch.Tensor:
        z = x - bias
        hit = torch.zeros_like(z, dtype=torch.bool)
        hit[masked] = True
        lse = z.masked_fill(hit, NEG).logsumexp(dim=1)
        line = torch.logaddexp(z[rows, own], lse[rows]) - z[rows, own]
        return (line * weights).sum() / weights.sum()

    got = basket_softmax_loss(logits, bias, masked, own, rows, weights)
    (got_grad,) = torch.autograd.grad(got, logits)
    want = reference(logits)
    (want_grad,) = torch.autograd.grad(want, logits)
    assert torch.isfinite(got) and float(got) == pytest.approx(float(want), rel=1e-12)
    assert torch.allclose(got_grad, want_grad, rtol=1e-10, atol=1e-12)
    assert got_grad[3].abs().max() < 1e-12  # the all-masked row's line: no pull anywhere


@pytest.mark.parametrize("sampled", [False, True])
def test_known_items_are_no_negatives_when_masked(sampled: bool) -> None:
    """With ``known``, an item of the customer's history leaves its basket's loss alone,
    whatever its vector; without, moving it changes the loss."""
    model = make(replace(CFG, share_item_embeddings=False))  # item 3's vector moves alone
    customer, segments, history, numeric = inputs(1)  # history: items 3 and 4
    targets, rows = torch.tensor([5, 6]), torch.tensor([0, 0])
    loss_fn = (
        SampledSoftmax(torch.ones(SIZES.n_items), lines_per_batch=2, n_negatives=64)
        if sampled
        else full_softmax_loss
    )

    def loss(known: torch.Tensor | None) -> float:
        torch.manual_seed(0)  # the same sampled negatives every call
        u = model.customer_vectors(customer, segments, history, numeric)
        return float(loss_fn(model, u, targets, rows, None, known))

    before = (loss(history), loss(None))
    with torch.no_grad():
        model.item_tower.ids.weight[3] *= -5.0
    assert loss(history) == pytest.approx(before[0], abs=1e-6)
    assert loss(None) != pytest.approx(before[1], abs=1e-3)


def test_tower_weight_scales_the_cosine_and_leaves_the_biases() -> None:
    model = make(replace(CFG, item_bias=True, tower_weights=[0.0, 0.5, 1.0]))
    with torch.no_grad():
        model.item_bias.weight.copy_(torch.linspace(-2, 2, SIZES.n_items).unsqueeze(1))
    full = (model.customer_vectors(*inputs()) @ model.item_vectors().T) * model.logit_scale()
    model.set_tower_weight(0.5)
    half = (model.customer_vectors(*inputs()) @ model.item_vectors().T) * model.logit_scale()
    bias = model.item_bias.weight.T
    assert torch.allclose(half - bias, 0.5 * (full - bias), atol=1e-4)
    assert "tower_weight" in model.state_dict()  # the chosen weight is saved with the model
    with pytest.raises(ValueError, match="tower_weights is null"):
        make().set_tower_weight(0.5)
    with pytest.raises(ValueError, match=r"model\.tower_weights"):
        replace(CFG, tower_weights=[]).check()


@pytest.mark.parametrize("sampled", [False, True])
def test_line_weights_weigh_the_loss(sampled: bool) -> None:
    """A line of weight 0 does not count; weights 1 are the plain mean."""
    model = make()
    customer, segments, history, numeric = inputs()
    u = model.customer_vectors(customer, segments, history, numeric)
    targets, rows = torch.cat([customer + 1, customer + 2]), torch.arange(3).repeat(2)
    loss_fn = (
        SampledSoftmax(torch.ones(SIZES.n_items), lines_per_batch=6, n_negatives=8)
        if sampled
        else full_softmax_loss
    )

    def loss(t: torch.Tensor, r: torch.Tensor, w: torch.Tensor | None) -> float:
        torch.manual_seed(0)
        return float(loss_fn(model, u, t, r, w))

    ones = torch.ones(6)
    assert loss(targets, rows, ones) == pytest.approx(loss(targets, rows, None), rel=1e-6)
    half = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    if not sampled:  # sampled: the weight-0 lines still shape the candidate set
        # They still are their baskets' positives (no negatives), as history items are.
        only_first = float(loss_fn(model, u, targets[:3], rows[:3], None, (customer + 2)[:, None]))
        assert loss(targets, rows, half) == pytest.approx(only_first, rel=1e-6)
    assert loss(targets, rows, half) != pytest.approx(loss(targets, rows, None), rel=1e-3)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = make()
    model.save(tmp_path / "m")
    again = TwoTower.load(tmp_path / "m")
    assert torch.equal(again.customer_vectors(*inputs()), model.customer_vectors(*inputs()))
    assert torch.equal(again.item_vectors(), model.item_vectors())


def test_item_bias_starts_at_log_popularity() -> None:
    from segrec.training.module import TwoTowerTask

    counts = torch.tensor([0, 100, 10, 1, 0, 0, 0, 0, 0, 0, 50])
    task = TwoTowerTask(make(replace(CFG, item_bias=True)), counts)
    bias = task.model.item_bias.weight[:, 0]
    assert bias[1] > bias[10] > bias[2] > bias[3] > bias[4]
    assert float(bias[1] - bias[2]) == pytest.approx(float(torch.log(torch.tensor(101 / 11))))


@pytest.mark.parametrize(("id_dropout", "cold_dropout"), [(0.0, 1.0), (0.0, 0.4), (0.3, 0.0)])
def test_training_hides_ids_and_whole_customers_as_configured(
    id_dropout: float, cold_dropout: float
) -> None:
    """A hidden customer is what a cold one is (no id, empty history, zero counts); only
    in training, and the segments always stay."""
    from segrec.training.module import TwoTowerTask

    cfg = replace(CFG, id_dropout=id_dropout, cold_dropout=cold_dropout)
    task = TwoTowerTask(make(cfg), torch.ones(SIZES.n_items))
    _, segments, history, numeric = (t.repeat(200, 1) for t in inputs())
    customer = torch.tensor([1, 2, 5]).repeat(200)  # every customer known
    batch = {"customer": customer, "segments": segments, "history": history, "numeric": numeric}
    torch.manual_seed(0)
    task.train()
    c, h, n = task.hidden_inputs(batch)
    cold = (c == 0) & (h == 0).all(dim=1) & (n == 0).all(dim=1)
    no_id = (c == 0) & ~cold
    assert cold.float().mean() == pytest.approx(cold_dropout, abs=0.06)
    assert no_id.float().mean() == pytest.approx(id_dropout * (1 - cold_dropout), abs=0.06)
    kept = ~cold  # warm rows keep their history and counts exactly
    assert torch.equal(h[kept], history[kept]) and torch.equal(n[kept], numeric[kept])
    task.eval()
    unchanged = zip(task.hidden_inputs(batch), (customer, history, numeric), strict=True)
    assert all(torch.equal(a, b) for a, b in unchanged)
    with pytest.raises(ValueError, match=r"model\.cold_dropout must be in \[0, 1\]"):
        replace(CFG, cold_dropout=1.5).check()


def test_prior_head_is_a_saved_setting_that_needs_a_prior(tmp_path: Path) -> None:
    model = make(replace(CFG, item_bias=True, prior_heads=[0, 2]))
    assert model.head_length == 0 and model.cosine_dim == CFG.dim
    model.set_prior_head(2)
    model.save(tmp_path / "m")
    assert TwoTower.load(tmp_path / "m").head_length == 2  # the chosen head travels along
    assert make().head_length == 0
    with pytest.raises(ValueError, match="prior_heads is null"):
        make().set_prior_head(1)
    with pytest.raises(ValueError, match=r"model\.prior_heads"):
        replace(CFG, item_bias=True, prior_heads=[-1]).check()
    with pytest.raises(ValueError, match="needs item_bias, segment_bias or copurchase_rank"):
        replace(CFG, prior_heads=[0, 1]).check()


def test_ranking_bias_families_leave_the_others_columns_to_the_head(tmp_path: Path) -> None:
    sizes = replace(SIZES, segment_families=["age", "rfm"])
    cfg = replace(CFG, item_bias=True, segment_bias=True, ranking_bias_families=["age"])
    model = TwoTower(cfg, sizes)
    # Columns: 8 cosine, 1 item bias, age's 4 labels, then rfm's 3: rfm's score the head.
    assert model.head_only_columns == [13, 14, 15]
    model.save(tmp_path / "m")
    assert TwoTower.load(tmp_path / "m").head_only_columns == [13, 14, 15]
    everything = replace(cfg, ranking_bias_families=None)
    assert TwoTower(everything, sizes).head_only_columns == []
    assert TwoTower(replace(cfg, ranking_bias_families=[]), sizes).head_only_columns == list(
        range(9, 16)
    )
    with pytest.raises(ValueError, match=r"model\.ranking_bias_families: \['region'\] not among"):
        TwoTower(replace(cfg, ranking_bias_families=["age", "region"]), sizes)
    with pytest.raises(ValueError, match=r"model\.ranking_bias_families: 'age', expected null"):
        replace(cfg, ranking_bias_families="age").check()
    # A misspelt family is refused even where the model has no segment biases to drop.
    without = replace(cfg, use_segments=False)
    assert TwoTower(without, sizes).head_only_columns == []
    with pytest.raises(ValueError, match=r"model\.ranking_bias_families: \['agee'\] not among"):
        TwoTower(replace(without, ranking_bias_families=["agee"]), sizes)


def test_segment_bias_support_scales_each_pair_by_its_evidence() -> None:
    """Scale e / (e + a), e = the label's weighted target lines x the item's share of all
    weighted targets (a zero-weight repeat counts for nothing); an item never a target
    stays at 0, and the item vectors carry the scaled biases."""
    from segrec.training.examples import Examples
    from segrec.training.module import TwoTowerTask

    cfg = replace(CFG, item_bias=True, segment_bias=True, segment_bias_support=1.0)
    # Baskets 0 and 2 of customer row 0 (labels 1 and 2), basket 1 of row 1 (labels 2, 0).
    examples = Examples(
        items=torch.tensor([1, 2, 1, 3, 1]),
        weights=torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]),
        first=torch.tensor([0, 2, 4]),
        stop=torch.tensor([2, 4, 5]),
        start=torch.tensor([0, 0, 2]),
        n_baskets=torch.tensor([0, 0, 1]),
        gap_days=torch.zeros(3),
        customers=torch.tensor([1, 2, 1]),
        rows=torch.tensor([0, 1, 0]),
        snapshot=torch.zeros(3, dtype=torch.long),
        segment_table=torch.tensor([[[1, 2], [2, 0]]]),
        history=None,  # type: ignore[arg-type]  # not read
    )
    model = make(cfg)
    TwoTowerTask(model, torch.ones(SIZES.n_items), examples=examples)
    scale = model.segment_bias_scale
    # Weighted targets: item 1 three lines of four, item 2 one. Label columns: family 0 at
    # 0-3, family 1 at 4-6; label 1 of family 0 holds baskets 0 and 2 (3 lines).
    expected = {(1, 1): 0.75 * 3, (2, 1): 0.25 * 3, (1, 2): 0.75 * 1, (1, 4): 0.75 * 1}
    for (item, column), evidence in expected.items():
        assert float(scale[item, column]) == pytest.approx(evidence / (evidence + 1.0))
    assert torch.all(scale[3] == 0) and torch.all(scale[0] == 0)  # never a weighted target
    with torch.no_grad():
        model.segment_bias.weight.fill_(1.0)
    d = cfg.dim + 1  # the cosine's columns and the item bias
    columns = model.item_vectors()[:, d : d + model.n_labels] * model.logit_scale()
    assert torch.allclose(columns, scale)
    with pytest.raises(ValueError, match="segment_bias_support"):
        TwoTowerTask(make(cfg), torch.ones(SIZES.n_items))


def test_sparse_customer_ids_move_only_the_rows_trained() -> None:
    """Lazy Adam on the customer table: a row keeps its value in steps without it (dense
    Adam would carry it on by momentum), and the dense optimiser leaves the table alone."""
    from segrec.training.module import TwoTowerTask

    task = TwoTowerTask(
        make(replace(CFG, id_dropout=0.0)), torch.ones(SIZES.n_items), sparse_ids=True
    )
    dense = task.configure_optimizers()
    table = task.model.customer_tower.ids.weight
    assert all(p is not table for group in dense.param_groups for p in group["params"])
    _, segments, history, numeric = inputs()
    batches = [torch.tensor([1, 0, 5]), torch.tensor([2, 2, 2])]
    task.train()
    for step, ids in enumerate(batches):
        before = table.detach().clone()
        dense.zero_grad()
        batch = {
            "customer": ids,
            "segments": segments,
            "history": history,
            "numeric": numeric,
            "target": torch.tensor([3, 7, 2]),
            "target_row": torch.tensor([0, 1, 2]),
            "weight": torch.ones(3),
        }
        task.loss(batch).backward()
        assert table.grad is not None and table.grad.is_sparse
        task.on_before_optimizer_step(dense)
        dense.step()
        assert table.grad is None  # cleared for the next step
        moved = (table.detach() != before).any(dim=1).nonzero().flatten().tolist()
        assert moved == sorted(set(ids.tolist())), step
    task.on_fit_end()
    assert not task.model.customer_tower.ids.sparse
