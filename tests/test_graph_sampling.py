"""Mini-batch training over sampled neighbourhoods (PyG's NodeLoader with the plain-torch neighbour sampler):
the sampler returns real edges with their attributes, and sampled training agrees with full-graph training."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch_geometric.utils import to_undirected

from ecomlab.models.base import RecTrainData
from ecomlab.models.graph_sampling import neighbor_loader, sample_subgraph
from ecomlab.models.lightgcn import LightGCN

U, N = 30, 40


def _train_matrix(seed: int = 0) -> sp.csr_matrix:
    return sp.random(U, N, density=0.12, format="csr", random_state=seed, dtype=np.float32)


def _batches(n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Training pairs of ``_train_matrix()`` with uniform negatives."""
    coo = _train_matrix().tocoo()
    users, items = torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64))
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        pick = torch.randint(0, len(users), (16,), generator=g)
        out.append({"users": users[pick], "pos": items[pick], "neg": torch.randint(0, N, (16, 2), generator=g)})
    return out


def test_sampler_returns_real_edges_seeds_first_and_respects_the_caps() -> None:
    torch.manual_seed(0)
    edge_index = to_undirected(torch.randint(0, 60, (2, 300)))
    weight = torch.rand(edge_index.shape[1])
    truth = {(a, b): w for a, b, w in zip(*edge_index.tolist(), weight.tolist(), strict=True)}
    seeds = torch.tensor([4, 17, 33])
    full = sample_subgraph(neighbor_loader(edge_index, 60, [-1, -1], edge_weight=weight), seeds)
    assert full.n_id[:3].tolist() == seeds.tolist() and full.batch_size == 3
    src, dst = full.n_id[full.edge_index].tolist()
    assert all(truth[(a, b)] == w for a, b, w in zip(src, dst, full.edge_weight.tolist(), strict=True))
    for s in seeds.tolist():  # with -1 every neighbour of a seed is there
        assert sorted(a for a, b in zip(src, dst, strict=True) if b == s) == sorted(edge_index[0][edge_index[1] == s].tolist())
    capped = sample_subgraph(neighbor_loader(edge_index, 60, [2, 3], edge_weight=weight), seeds)
    src, dst = capped.n_id[capped.edge_index].tolist()
    assert all((a, b) in truth for a, b in zip(src, dst, strict=True))
    assert capped.num_sampled_edges[0] <= 2 * 3 and len(set(zip(src, dst, strict=True))) == len(src)
    in_degree = np.bincount(capped.edge_index[1].numpy(), minlength=int(capped.num_nodes))
    assert in_degree[:3].max() <= 2 and in_degree.max() <= 3


def test_sampled_training_with_every_neighbour_equals_full_graph_training() -> None:
    torch.manual_seed(0)
    data = RecTrainData(train=_train_matrix())
    full = LightGCN(U, N, embedding_dim=8, n_layers=3)
    sampled = LightGCN(U, N, embedding_dim=8, n_layers=3, num_neighbors=[-1, -1, -1])
    sampled.load_state_dict(full.state_dict())
    for net in (full, sampled):
        net.fit(data)
    opts = [torch.optim.Adam(net.parameters(), lr=0.05) for net in (full, sampled)]
    for batch in _batches(15):
        losses = []
        for net, opt in zip((full, sampled), opts, strict=True):
            loss = net.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        torch.testing.assert_close(losses[1], losses[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(full.parameters(), sampled.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    full.eval()
    sampled.eval()
    with torch.no_grad():  # evaluation is full-graph in both modes
        torch.testing.assert_close(sampled(torch.arange(U)), full(torch.arange(U)), rtol=1e-4, atol=1e-5)


def test_capped_sampling_trains_and_differs_from_full_graph() -> None:
    torch.manual_seed(0)
    data = RecTrainData(train=_train_matrix())
    full = LightGCN(U, N, embedding_dim=8, n_layers=2)
    capped = LightGCN(U, N, embedding_dim=8, n_layers=2, num_neighbors=[2, 2])
    capped.load_state_dict(full.state_dict())
    full.fit(data)
    capped.fit(data)
    batch = _batches(1)[0]
    assert not torch.isclose(full.loss(batch), capped.loss(batch))
    opt = torch.optim.Adam(capped.parameters(), lr=0.05)
    losses = []
    for batch in _batches(60, seed=1):
        loss = capped.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])


def test_num_neighbors_needs_one_cap_per_layer() -> None:
    with pytest.raises(ValueError, match="one cap per layer"):
        LightGCN(U, N, n_layers=3, num_neighbors=[5, 5])
    with pytest.raises(ValueError, match="one cap per layer"):
        LightGCN(U, N, n_layers=2, num_neighbors=[5, 0])


def test_sampled_lightgcn_trains_through_the_runner(compose_cfg) -> None:
    from ecomlab.train import train

    cfg = compose_cfg(["model=lightgcn", "model.net.num_neighbors=[5,5,5]", "data=synthetic_shop",
                       "data.source.n_users=80", "data.source.n_items=50", "trainer.max_epochs=2"])
    record = train(cfg)
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0
    assert record["config"]["model"]["net"]["num_neighbors"] == [5, 5, 5]
