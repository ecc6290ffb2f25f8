"""Mini-batch neighbourhoods for graphs larger than full-graph propagation, through PyG's loaders.

:func:`neighbor_loader` is PyG's :class:`~torch_geometric.loader.NodeLoader` with a
:class:`TorchNeighborSampler`: a training step hands it the batch's distinct user and item nodes (the seeds) and
gets back their sampled ``K``-hop neighbourhood as a PyG :class:`~torch_geometric.data.Data` (``n_id``, local
``edge_index`` from neighbour to the node it was sampled for, the edges' attributes, the seeds first), as
GraphSAGE (Hamilton et al. 2017) and PinSage sample. ``num_neighbors[k]`` caps hop ``k``'s neighbours per node;
``-1`` takes all of them, and then ``K`` propagation layers on the subgraph give the seeds exactly their
full-graph embeddings (hop-``h`` nodes have every neighbour, and a seed's layer ``j`` needs only hops ``< j``).

:class:`TorchNeighborSampler` is PyG's :class:`~torch_geometric.sampler.NeighborSampler` (its CSC, its loader
interface): with ``pyg-lib`` or ``torch-sparse`` installed it samples with them; neither has a wheel for this
torch on PyPI, so otherwise the same uniform sampling runs in plain torch here: a node with more neighbours than
its cap draws that many of them uniformly with replacement and drops the repeats.
"""

from __future__ import annotations

import warnings

import torch
import torch_geometric.typing
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import NeighborSampler, SamplerOutput


class TorchNeighborSampler(NeighborSampler):
    """PyG's neighbour sampler, in plain torch for homogeneous graphs when pyg-lib and torch-sparse are absent."""

    def __init__(self, data: Data, num_neighbors: list[int]) -> None:
        with warnings.catch_warnings():  # "without pyg-lib is deprecated": _sample below is that path
            warnings.filterwarnings("ignore", message=".*without a 'pyg-lib' installation")
            super().__init__(data, num_neighbors=num_neighbors)
        self._local: Tensor | None = None  # [n] global -> local id during one sample, -1 elsewhere

    def _sample(self, seed: Tensor, seed_time: Tensor | None = None, **kwargs: object) -> SamplerOutput:
        if (isinstance(seed, dict) or seed_time is not None or torch_geometric.typing.WITH_PYG_LIB
                or torch_geometric.typing.WITH_TORCH_SPARSE):
            return super()._sample(seed, seed_time, **kwargs)
        colptr, row = self.colptr, self.row  # CSC: the sources of node i are row[colptr[i]:colptr[i + 1]]
        if self._local is None:
            self._local = torch.full((colptr.numel() - 1,), -1, dtype=torch.long)
        local = self._local
        nodes, rows, cols, edges = [seed], [], [], []
        local[seed] = torch.arange(seed.numel())
        frontier, n_nodes = seed, seed.numel()
        n_sampled_nodes, n_sampled_edges = [seed.numel()], []
        for cap in self.num_neighbors.get_mapped_values():
            start, degree = colptr[frontier], colptr[frontier + 1] - colptr[frontier]  # [f] each
            take = degree if cap < 0 else degree.clamp(max=cap)
            owner = torch.repeat_interleave(torch.arange(frontier.numel()), take)  # [m] frontier slot per edge
            offset = torch.arange(owner.numel()) - torch.repeat_interleave(take.cumsum(0) - take, take)  # [m]
            crowded = (degree > take)[owner]  # more neighbours than the cap: uniform draws instead of all
            offset[crowded] = (torch.rand(int(crowded.sum())) * degree[owner[crowded]]).long()
            position = start[owner] + offset  # [m] CSC positions
            if bool(crowded.any()):  # a repeated draw is one edge
                position = torch.unique(position)
            target = torch.searchsorted(colptr, position, right=True) - 1  # [m] the column: whose neighbour
            source = row[position]  # [m] global ids of the sampled neighbours
            fresh = torch.unique(source[local[source] < 0])  # [u] nodes not seen before
            local[fresh] = torch.arange(n_nodes, n_nodes + fresh.numel())
            n_nodes += fresh.numel()
            rows.append(local[source])
            cols.append(local[target])
            edges.append(position)
            nodes.append(fresh)
            n_sampled_nodes.append(fresh.numel())
            n_sampled_edges.append(position.numel())
            frontier = fresh
        node = torch.cat(nodes)
        local[node] = -1  # ready for the next batch without an O(n) reset
        return SamplerOutput(node=node, row=torch.cat(rows), col=torch.cat(cols), edge=torch.cat(edges),
                             batch=None, num_sampled_nodes=n_sampled_nodes, num_sampled_edges=n_sampled_edges)


def neighbor_loader(edge_index: Tensor, num_nodes: int, num_neighbors: list[int],
                    **edge_attrs: Tensor) -> NodeLoader:
    """A PyG loader of the ``num_neighbors``-capped neighbourhoods of seed nodes in the graph ``edge_index``
    ``[2, E]`` (messages flow ``edge_index[0] -> edge_index[1]``), carrying ``edge_attrs`` (``[E]`` each)."""
    data = Data(edge_index=edge_index, num_nodes=num_nodes, **edge_attrs)
    # filter_per_worker: collate_fn itself joins the sample with the edge attributes into a Data
    return NodeLoader(data, node_sampler=TorchNeighborSampler(data, num_neighbors), batch_size=1,
                      filter_per_worker=True)


def sample_subgraph(loader: NodeLoader, seeds: Tensor) -> Data:
    """The sampled neighbourhood of the distinct nodes ``seeds`` ``[S]``: ``n_id`` starts with them, in order."""
    return loader.collate_fn(seeds)
