"""Unit tests for NeuMF (GMF / MLP / NeuMF), LightGCN and ItemKNN against hand or dense reference values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from omegaconf import open_dict

from ecomlab.models import itemknn
from ecomlab.models.base import RecTrainData
from ecomlab.models.itemknn import ItemKNN
from ecomlab.models.lightgcn import LightGCN
from ecomlab.models.losses import rows
from ecomlab.models.neumf import NeuMF, scoring_chunk
from ecomlab.train import train
from ecomlab.utils import instantiate_with_dims

U, N = 7, 11


def _batch(n_neg: int = 3, b: int = 5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"users": torch.randint(0, U, (b,), generator=g), "pos": torch.randint(0, N, (b,), generator=g),
            "neg": torch.randint(0, N, (b, n_neg), generator=g)}


# ---------------------------------------------------------------- NeuMF
def test_scoring_chunk_fits_the_cache_on_cpu_and_memory_elsewhere() -> None:
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert scoring_chunk(256, 128, cpu) == 32  # 256 x 32 x 128 = 2^20 floats, 4 MiB
    assert scoring_chunk(8192, 128, gpu) == 256  # 2^28 floats, 1 GiB
    assert scoring_chunk(100_000, 128, cpu) == 1 and scoring_chunk(0, 0, cpu) == 2**20  # never below one item


def test_neumf_scores_equal_for_any_item_chunk() -> None:
    torch.manual_seed(0)
    net = NeuMF(U, N, embedding_dim=8, mlp_layers=[16, 8, 4]).eval()
    users = torch.arange(U)
    with torch.no_grad():
        auto = net(users)  # cache-sized chunks
        net.item_chunk = 3
        assert torch.equal(net(users), auto)


@pytest.mark.parametrize("variant", ["gmf", "mlp", "neumf"])
@pytest.mark.parametrize("loss", ["bce", "bpr"])
def test_neumf_shapes_and_losses(variant: str, loss: str) -> None:
    torch.manual_seed(0)
    net = NeuMF(U, N, variant=variant, embedding_dim=8, mlp_layers=[16, 8, 4], loss=loss, item_chunk=4)
    users = torch.tensor([0, 3, 6])
    scores = net(users)
    assert scores.shape == (3, N) and torch.isfinite(scores).all()
    # Chunked full ranking equals scoring every (user, item) pair directly.
    pairs = net._score_pairs(users, torch.arange(N).expand(3, N))  # [3, N]
    torch.testing.assert_close(scores, pairs, rtol=1e-5, atol=1e-6)
    value = net.loss(_batch())
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_neumf_bce_is_the_pointwise_log_loss() -> None:
    net = NeuMF(U, N, variant="gmf", embedding_dim=4, loss="bce")
    batch = _batch(n_neg=2)
    logits = net._score_pairs(batch["users"], torch.cat([batch["pos"][:, None], batch["neg"]], 1))  # [B, 3]
    p = torch.sigmoid(logits)
    expected = -(torch.log(p[:, 0]).sum() + torch.log(1 - p[:, 1:]).sum()) / logits.numel()
    torch.testing.assert_close(net.loss(batch), expected)


def test_neumf_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="variant"):
        NeuMF(U, N, variant="ncf")
    with pytest.raises(ValueError, match="loss"):
        NeuMF(U, N, loss="mse")
    with pytest.raises(ValueError, match="mlp_layers"):
        NeuMF(U, N, mlp_layers=[15, 8])
    with pytest.raises(ValueError, match="only apply to variant='neumf'"):
        NeuMF(U, N, variant="gmf", pretrained_gmf="x.ckpt")
    with pytest.raises(ValueError, match="both"):
        NeuMF(U, N, pretrained_gmf="x.ckpt")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        NeuMF(U, N, pretrained_gmf="missing.ckpt", pretrained_mlp="missing.ckpt")
    with pytest.raises(ValueError, match="linear_init"):
        NeuMF(U, N, linear_init="kaiming")


def test_neumf_linear_init_options() -> None:
    torch.manual_seed(0)
    default = NeuMF(U, N, mlp_layers=[128, 64, 32], linear_init="torch")
    glorot = NeuMF(U, N, mlp_layers=[128, 64, 32])  # the default
    first, first_g = default.mlp[0], glorot.mlp[0]
    # PyTorch's default: weights and biases U(±1/√fan_in); fan_in = 128
    assert first.weight.abs().max() <= 128 ** -0.5 and first.bias.abs().max() > 0
    assert first.weight.abs().max() > 0.9 * 128 ** -0.5
    # Glorot: U(±√(6 / (fan_in + fan_out))), zero biases
    assert first_g.weight.abs().max() > 128 ** -0.5 and not first_g.bias.any()
    assert first_g.weight.abs().max() <= (6 / (128 + 64)) ** 0.5
    assert default.gmf_user.weight.std().item() == pytest.approx(0.01, rel=0.2)  # embeddings N(0, 0.01) in both


def _run(compose_cfg, tmp_path: Path, name: str, overrides: list[str]) -> tuple[dict, object]:
    cfg = compose_cfg([*overrides, "data=synthetic_shop", "data.source.n_users=60", "data.source.n_items=40",
                       "data.batch_size=64", "data.num_negatives=2", "trainer.max_epochs=1",
                       "callbacks.rich_progress_bar=null"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / name)  # separate runs: no resuming from another's last.ckpt
    return train(cfg), cfg


def test_neumf_pretrained_from_real_gmf_and_mlp_runs(compose_cfg, tmp_path: Path) -> None:
    layers = "model.net.mlp_layers=[16,8,4]"
    gmf_record, _ = _run(compose_cfg, tmp_path, "gmf", ["model=gmf", "model.net.embedding_dim=8"])
    mlp_record, _ = _run(compose_cfg, tmp_path, "mlp", ["model=mlp", layers])
    gmf_ckpt, mlp_ckpt = gmf_record["checkpoint"], mlp_record["checkpoint"]
    assert gmf_ckpt and mlp_ckpt
    record, cfg = _run(compose_cfg, tmp_path, "neumf", [
        "model=neumf", "model.net.embedding_dim=8", layers, "model.net.alpha=0.3",
        f"model.net.pretrained_gmf='{gmf_ckpt}'", f"model.net.pretrained_mlp='{mlp_ckpt}'"])
    assert "test/ndcg@10" in record["metrics"]

    dims = {"n_users": 60, "n_items": 40}
    neumf = instantiate_with_dims(cfg.model.net, dims)
    gmf_state = torch.load(gmf_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    mlp_state = torch.load(mlp_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    own = neumf.state_dict()
    for key in ("gmf_user.weight", "gmf_item.weight"):
        assert torch.equal(own[key], gmf_state[f"net.{key}"])
    mlp_keys = [k for k in own if k.startswith(("mlp_user.", "mlp_item.", "mlp."))]
    assert len(mlp_keys) == 2 + 4  # two embeddings, two Linear layers (weight + bias)
    for key in mlp_keys:
        assert torch.equal(own[key], mlp_state[f"net.{key}"])
    expected_h = torch.cat([0.3 * gmf_state["net.predict.weight"], 0.7 * mlp_state["net.predict.weight"]], 1)
    torch.testing.assert_close(own["predict.weight"], expected_h)

    # With the fused output layer, NeuMF's logit is exactly alpha * GMF logit + (1 - alpha) * MLP logit.
    gmf = NeuMF(60, 40, variant="gmf", embedding_dim=8)
    gmf.load_state_dict({k.removeprefix("net."): v for k, v in gmf_state.items()})
    mlp = NeuMF(60, 40, variant="mlp", mlp_layers=[16, 8, 4])
    mlp.load_state_dict({k.removeprefix("net."): v for k, v in mlp_state.items()})
    users = torch.arange(60)
    with torch.no_grad():
        torch.testing.assert_close(neumf(users), 0.3 * gmf(users) + 0.7 * mlp(users), rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match=r"gmf.*net\.gmf_user\.weight.*shape"):
        NeuMF(60, 40, embedding_dim=16, mlp_layers=[16, 8, 4], pretrained_gmf=gmf_ckpt,
              pretrained_mlp=mlp_ckpt)
    with pytest.raises(ValueError, match=r"missing"):  # files swapped: the MLP run has no GMF branch
        NeuMF(60, 40, embedding_dim=8, mlp_layers=[16, 8, 4], pretrained_gmf=mlp_ckpt,
              pretrained_mlp=gmf_ckpt)


# ---------------------------------------------------------------- LightGCN
def _dense_lightgcn(r: np.ndarray, e0: np.ndarray, n_layers: int) -> np.ndarray:
    n_u, n_i = r.shape
    a = np.zeros((n_u + n_i, n_u + n_i))
    a[:n_u, n_u:] = r > 0
    a[n_u:, :n_u] = (r > 0).T
    deg = a.sum(1)
    inv_sqrt = np.where(deg > 0, 1 / np.sqrt(np.maximum(deg, 1e-12)), 0.0)
    a_hat = inv_sqrt[:, None] * a * inv_sqrt[None, :]
    layers = [e0]
    for _ in range(n_layers):
        layers.append(a_hat @ layers[-1])
    return np.mean(layers, axis=0)


def test_lightgcn_propagation_matches_dense_reference() -> None:
    # Weights 2.0 and 5.0 must count as single edges; item 3 has no interactions (zero degree).
    r = np.array([[1, 2, 0, 0], [0, 1, 5, 0], [1, 0, 1, 0]], dtype=np.float32)
    net = LightGCN(3, 4, embedding_dim=5, n_layers=3)
    net.fit(RecTrainData(train=sp.csr_matrix(r)))
    e0 = torch.cat([net.user_emb.weight, net.item_emb.weight]).detach().numpy()
    expected = _dense_lightgcn(r, e0, 3)
    users, items = net.get_embedding()
    np.testing.assert_allclose(torch.cat([users, items]).detach().numpy(), expected, rtol=1e-5, atol=1e-7)
    scores = net(torch.arange(3)).detach().numpy()
    np.testing.assert_allclose(scores, expected[:3] @ expected[3:].T, rtol=1e-5, atol=1e-7)  # [3, d] @ [d, 4]
    assert set(net.state_dict()) == {"user_emb.weight", "item_emb.weight"}  # the graph is not checkpointed


def test_lightgcn_caches_once_per_evaluation_and_refreshes(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    r = sp.random(U, N, density=0.4, format="csr", random_state=0)
    net = LightGCN(U, N, embedding_dim=4, n_layers=2)
    with pytest.raises(RuntimeError, match="fit"):
        net(torch.arange(U))
    net.fit(RecTrainData(train=r))
    calls = []
    original = net._propagate
    monkeypatch.setattr(net, "_propagate", lambda: calls.append(1) or original())
    net.eval()
    first = net(torch.arange(3))
    net(torch.arange(3, U))
    assert len(calls) == 1
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.loss(_batch()).backward()
    opt.step()
    net.eval()
    assert not torch.allclose(net(torch.arange(3)), first)
    # In-place weight changes in eval mode (e.g. load_state_dict) are noticed too.
    calls.clear()
    net.load_state_dict({k: torch.zeros_like(v) for k, v in net.state_dict().items()})
    assert torch.count_nonzero(net(torch.arange(3))) == 0 and len(calls) == 1


def test_lightgcn_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n_layers"):
        LightGCN(U, N, n_layers=-1)
    with pytest.raises(ValueError, match="train matrix"):
        LightGCN(U, N).fit(RecTrainData(train=sp.csr_matrix((U, N + 1))))


# ---------------------------------------------------------------- ItemKNN
def _csr(rows: list[list[int]], n_items: int) -> sp.csr_matrix:
    r = [u for u, items in enumerate(rows) for _ in items]
    c = [i for items in rows for i in items]
    return sp.csr_matrix((np.ones(len(c)), (r, c)), shape=(len(rows), n_items))


def test_itemknn_shrinkage_and_top_k_by_hand() -> None:
    # Item 0: users 0-3. Item 1: user 0 only (one co-occurrence, tiny norm). Item 2: users 0, 1, 4-9.
    train = _csr([[0, 1, 2], [0, 2], [0], [0], [2], [2], [2], [2], [2], [2]], n_items=3)
    # Without shrinkage the one-off item 1 is item 0's nearest neighbour: 1 / (2 * 1) = 0.5 > 2 / (2 * √8).
    plain = ItemKNN(3, k=1, shrink=0.0)
    plain.fit(RecTrainData(train=train))
    col0 = plain.similarity[:, 0].toarray().ravel()
    np.testing.assert_allclose(col0, [0.0, 0.5, 0.0], rtol=1e-6)
    # Shrinkage 2 prefers the better-supported item 2: 2 / (2√8 + 2) = 0.2612 > 1 / (2 + 2) = 0.25.
    shrunk = ItemKNN(3, k=1, shrink=2.0)
    shrunk.fit(RecTrainData(train=train))
    col0 = shrunk.similarity[:, 0].toarray().ravel()
    np.testing.assert_allclose(col0, [0.0, 0.0, 2 / (2 * np.sqrt(8) + 2)], rtol=1e-6)
    assert (np.diff(shrunk.similarity.tocsc().indptr) <= 1).all()  # k = 1 neighbour per item
    # User 1 (items 0, 2) scores item 0 through neighbour 2 only under shrinkage.
    assert plain(torch.tensor([1]))[0, 0] == 0
    expected = torch.tensor(2 / (2 * np.sqrt(8) + 2), dtype=torch.float32)
    torch.testing.assert_close(shrunk(torch.tensor([1]))[0, 0], expected)


@pytest.mark.parametrize("normalize", [True, False])
def test_itemknn_matches_dense_reference(normalize: bool) -> None:
    x = (np.random.default_rng(0).random((30, 12)) < 0.3).astype(np.float64)
    x[0, 0] = 4.0  # a weight: counted once
    binary = (x > 0).astype(np.float64)
    dot = binary.T @ binary
    norms = np.sqrt(np.diag(dot))
    dense = dot / (np.outer(norms, norms) + 5.0) if normalize else dot.copy()
    np.fill_diagonal(dense, 0.0)
    full = ItemKNN(12, k=50, shrink=5.0, normalize=normalize)
    full.fit(RecTrainData(train=sp.csr_matrix(x)))
    np.testing.assert_allclose(full.similarity.toarray(), dense, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(full(torch.arange(30)).numpy(), binary @ dense, rtol=1e-5, atol=1e-6)
    pruned = ItemKNN(12, k=3, shrink=5.0, normalize=normalize)
    pruned.fit(RecTrainData(train=sp.csr_matrix(x)))
    sim = pruned.similarity.toarray()
    for j in range(12):  # the kept values are the 3 largest positive ones of each column
        top = np.sort(dense[:, j])[::-1][:3]
        np.testing.assert_allclose(np.sort(sim[:, j])[::-1][:3], np.where(top > 0, top, 0.0), rtol=1e-5)
        assert np.count_nonzero(sim[:, j]) <= 3


@pytest.mark.parametrize("normalize", [True, False])
def test_itemknn_ties_at_the_cut_go_to_the_lower_item(normalize: bool) -> None:
    # Item 0 co-occurs once with each of items 1-5 (one user each), and these have one user each: all five
    # similarities to item 0 are equal, so k = 2 keeps items 1 and 2 whatever order the products list them in.
    train = _csr([[0, 5], [0, 3], [0, 1], [0, 4], [0, 2]], n_items=6)
    model = ItemKNN(6, k=2, shrink=1.0, normalize=normalize)
    model.fit(RecTrainData(train=train))
    assert model.similarity[:, 0].nonzero()[0].tolist() == [1, 2]
    # Items 1-5 each have item 0 as their only positive neighbour.
    assert [model.similarity[:, j].nonzero()[0].tolist() for j in range(1, 6)] == [[0]] * 5


@pytest.mark.parametrize("normalize", [True, False])
def test_itemknn_blocks_do_not_change_the_similarity(normalize: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruning a block of items at a time is exact: from one cell (one item per block) up, every budget gives the
    top-k by hand, with integer co-occurrence counts (many ties), an unused item and a user without items."""
    rng = np.random.default_rng(1)
    x = (rng.random((60, 40)) < 0.15) * rng.integers(1, 4, (60, 40))
    x[:, 7] = 0  # an item nobody bought
    x[5] = 0  # a user without items
    train = sp.csr_matrix(x.astype(np.float64))
    binary = (x > 0).astype(np.float64)
    dot = binary.T @ binary  # [N, N] co-occurrence counts
    norms = np.sqrt(np.diag(dot))
    sim = dot / (np.outer(norms, norms) + 2.0) if normalize else dot
    np.fill_diagonal(sim, 0.0)
    expected = np.zeros_like(sim)
    for j in range(40):  # by hand: the 4 largest positive of column j, ties to the lower index (a stable sort)
        top = np.argsort(-sim[:, j], kind="stable")[:4]
        expected[top, j] = np.where(sim[top, j] > 0, sim[top, j], 0.0)
    for cells in (1, 13, 200, 1 << 24):
        monkeypatch.setattr(itemknn, "_BLOCK_CELLS", cells)
        model = ItemKNN(40, k=4, shrink=2.0, normalize=normalize)
        model.fit(RecTrainData(train=train))
        got = model.similarity.toarray()
        np.testing.assert_array_equal(got != 0, expected != 0)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_itemknn_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="k"):
        ItemKNN(5, k=0)
    with pytest.raises(ValueError, match="shrink"):
        ItemKNN(5, shrink=-1)
    with pytest.raises(RuntimeError, match="before fit"):
        ItemKNN(5)(torch.tensor([0]))


def test_rows_matches_embedding_lookup_values_and_gradients() -> None:
    """``rows`` (index_select) is an exact stand-in for ``nn.Embedding``'s lookup: values and gradients,
    including repeated indices and more lookups than the embedding backward's 3,000-index fast path."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(50, 8)
    idx = torch.randint(0, 50, (1600, 2))  # 3,200 lookups, with repeats
    weight_out = torch.randn(1600, 2, 8)

    expected = table(idx)  # [1600, 2, 8]
    (grad_expected,) = torch.autograd.grad((expected * weight_out).sum(), table.weight)
    got = rows(table, idx)
    assert got.shape == (1600, 2, 8)
    (grad_got,) = torch.autograd.grad((got * weight_out).sum(), table.weight)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    torch.testing.assert_close(grad_got, grad_expected)
    # a plain [N, d] tensor (e.g. propagated LightGCN embeddings) works the same way
    torch.testing.assert_close(rows(table.weight, idx[:, 0]), table.weight[idx[:, 0]], rtol=0, atol=0)
    # options that only F.embedding applies are refused, not dropped
    with pytest.raises(ValueError, match="padding_idx"):
        rows(torch.nn.Embedding(50, 8, padding_idx=0), idx)
