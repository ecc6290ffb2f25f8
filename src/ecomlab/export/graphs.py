"""The scoring graphs that leave a run as ONNX or TorchScript, and how they are written.

Every neural recommender is served through one graph ``users [B] int64 -> scores [B, N] float32`` that
reproduces ``net(users)`` of the trained model:

* embedding models (BPR, LightGCN, the social GNN, the text two-tower) export their *final* embeddings, so
  graph propagation and text encoding happen once at export time and the graph is
  :math:`s = E_U[u] \\, E_I^\\top` (:class:`EmbeddingScorer`);
* NeuMF exports its scoring network (:class:`NeuMFScorer`): GMF and MLP branches over every item.

The global LSTM forecaster is served through ``window tensors -> (raw outputs, loc, scale)``
(:class:`LSTMRawOutputs`): encoder, decoder (the recursive one unrolled over the horizon, feeding back its
median) and scaling; the output head's median and quantiles are computed after the graph by the model's own
head (:meth:`~ecomlab.models.lstm_forecaster.LSTMForecaster.forecasts`), with the same quantile functions.

Written with the TorchScript-based ONNX exporter (``dynamo=False``): one self-contained file and well under a
second per model, where the dynamo exporter takes seconds and splits large weights into a side file. The
batch axis is dynamic in both formats.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from ecomlab.models.lstm_forecaster import LSTMForecaster
from ecomlab.models.neumf import NeuMF

#: opset with every operator the graphs use (Gather, MatMul, Gemm, Relu, Concat)
OPSET = 17


class EmbeddingScorer(nn.Module):
    """``scores = users_emb[users] @ items_emb.T`` over fixed (exported) embeddings."""

    def __init__(self, user_emb: Tensor, item_emb: Tensor) -> None:
        super().__init__()
        self.register_buffer("user_emb", user_emb.detach().float().contiguous())  # [U, d]
        self.register_buffer("item_emb", item_emb.detach().float().contiguous())  # [N, d]

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, N]
        return self.user_emb[users] @ self.item_emb.T  # [B, d] @ [d, N] -> [B, N]


class NeuMFScorer(nn.Module):
    """:meth:`NeuMF.forward` with a batch size the exporters can keep symbolic.

    ``NeuMF.forward`` starts from ``bias.expand(len(users), N)``; tracing turns ``len(users)`` into the example
    batch's size, so the graph would refuse any other batch. Here the bias broadcasts instead; everything
    else is the network's own modules, and the parity tests hold it to ``net(users)``.
    """

    def __init__(self, net: NeuMF) -> None:
        super().__init__()
        self.net = net.eval()

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, N]
        net = self.net
        h = net.predict.weight.squeeze(0)  # [1, F] -> [F]
        scores = net.predict.bias  # [1], broadcast over [B, N] by the first addition
        if net.use_gmf:
            d = net.gmf_user.embedding_dim
            gmf_user = net.gmf_user(users) * h[:d]  # [B, d] * [d] -> [B, d]
            scores = scores + gmf_user @ net.gmf_item.weight.T  # [B, d] @ [d, N] -> [B, N]
            h = h[d:]
        if net.use_mlp:
            w_u, w_i, bias = net._split_first_layer()
            user_part = (net.mlp_user(users) @ w_u.T + bias).unsqueeze(1)  # [B, h] @ [h, H1] -> [B, 1, H1]
            item_part = net.mlp_item.weight @ w_i.T  # [N, h] @ [h, H1] -> [N, H1]
            step = net.item_chunk or 1024  # the trace unrolls the loop: few, large chunks keep the graph small
            chunks = [
                # [B, 1, H1] + [1, c, H1] -> [B, c, L] @ [L] -> [B, c]
                net._mlp_out(user_part, item_part[i : i + step].unsqueeze(0)) @ h
                for i in range(0, item_part.shape[0], step)
            ]
            scores = scores + torch.cat(chunks, dim=1)  # [B, c] ++ ... -> [B, N]
        return scores


def write_graph(module: nn.Module, fmt: str, path: Path) -> None:
    """Write ``module`` (``users [B] -> scores [B, N]``) as ONNX (``fmt="onnx"``) or TorchScript."""
    module = module.eval()
    example = torch.arange(2, dtype=torch.long)  # two users: a batch axis the tracer cannot mistake for 1
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter and tracer announce their deprecation on every call
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        if fmt == "onnx":
            torch.onnx.export(module, (example,), str(path), input_names=["users"], output_names=["scores"],
                              dynamic_axes={"users": {0: "batch"}, "scores": {0: "batch"}}, opset_version=OPSET,
                              dynamo=False)
        elif fmt == "torchscript":
            traced = torch.jit.trace(module, (example,), check_trace=False)
            torch.jit.save(traced, str(path))
        else:
            raise ValueError(f"format={fmt!r}: graphs are written as 'onnx' or 'torchscript'")


class LSTMRawOutputs(nn.Module):
    """:meth:`LSTMForecaster.raw_outputs` on positional window tensors (``LSTMForecaster.input_keys`` order):
    ``(raw [B, h, P], loc [B, 1], scale [B, 1])``."""

    def __init__(self, net: LSTMForecaster) -> None:
        super().__init__()
        self.net = net.eval()
        self.keys = net.input_keys

    def forward(self, *tensors: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.net.raw_outputs(dict(zip(self.keys, tensors, strict=True)))


def write_forecast_graph(net: LSTMForecaster, example: dict[str, Tensor], fmt: str, path: Path) -> None:
    """Write :class:`LSTMRawOutputs` of ``net`` as ONNX or TorchScript, traced on the window batch ``example``
    (batch axis dynamic; window length and horizon are fixed by the network)."""
    module = LSTMRawOutputs(net).eval()
    inputs = tuple(example[k] for k in net.input_keys)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=UserWarning)  # LSTM batch-size export notes
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # nn.LSTM's own size checks
        if fmt == "onnx":
            names = list(net.input_keys)
            axes = {name: {0: "batch"} for name in [*names, "raw", "loc", "scale"]}
            torch.onnx.export(module, inputs, str(path), input_names=names, output_names=["raw", "loc", "scale"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, inputs, check_trace=False), str(path))
        else:
            raise ValueError(f"format={fmt!r}: graphs are written as 'onnx' or 'torchscript'")


class ScratchItemEncoder(nn.Module):
    """The text two-tower's scratch item tower on padded token ids: ``v = normalize(P mean_{mask}(E[ids]) + b)``,
    the masked mean being the model's ``EmbeddingBag(mode="mean")`` over each text's ids."""

    def __init__(self, token_emb: Tensor, proj: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("token_emb", token_emb.detach().float().clone())  # [V, d]
        self.proj = nn.Linear(proj.in_features, proj.out_features)
        self.proj.load_state_dict(proj.state_dict())

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:  # [n, L] int64, [n, L] float -> [n, d]
        emb = self.token_emb[ids]  # [n, L, d]
        pooled = (emb * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp_min(1.0)  # [n, d]
        return nn.functional.normalize(self.proj(pooled), dim=1)


class PretrainedItemEncoder(nn.Module):
    """The text two-tower's pretrained item tower: ``v = normalize(P SBERT(ids, mask) + b)`` -- the sentence
    encoder (transformer + pooling, as in ``encode``) and the trained projection."""

    def __init__(self, st: nn.Module, proj: nn.Linear) -> None:
        super().__init__()
        self.st = st.eval()
        self.proj = proj

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:  # [n, L] int64, [n, L] float -> [n, d]
        emb = self.st({"input_ids": ids, "attention_mask": mask.long()})["sentence_embedding"]  # [n, p]
        return nn.functional.normalize(self.proj(emb.float()), dim=1)  # [n, p] -> [n, d]


def write_text_encoder(module: nn.Module, fmt: str, path: Path) -> None:
    """Write ``module`` (``ids [n, L], mask [n, L] -> vectors [n, d]``) as ONNX or TorchScript, with the
    number of texts and their padded length both dynamic."""
    module = module.eval()
    ids = torch.tensor([[1, 2, 0], [3, 0, 0]], dtype=torch.long)  # two texts, padded: no axis of size 1
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        # shape checks inside the transformer and pooling hold for every input; the export checks parity
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*aten::index operator of advanced indexing.*")
        if fmt == "onnx":
            torch.onnx.export(module, (ids, mask), str(path), input_names=["ids", "mask"], output_names=["vectors"],
                              dynamic_axes={"ids": {0: "n", 1: "length"}, "mask": {0: "n", 1: "length"},
                                            "vectors": {0: "n"}}, opset_version=OPSET, dynamo=False)
        elif fmt == "torchscript":
            torch.jit.save(torch.jit.trace(module, (ids, mask), check_trace=False), str(path))
        else:
            raise ValueError(f"format={fmt!r}: graphs are written as 'onnx' or 'torchscript'")
