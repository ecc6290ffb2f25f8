"""Neural collaborative filtering: GMF, MLP and their fusion NeuMF.

He, Liao, Zhang, Nie, Hu, Chua, "Neural Collaborative Filtering", WWW 2017. With user/item embeddings
``p_u, q_i`` (separate ones for the two branches) and ``a`` = ReLU,

    GMF:    φ^G = p^G_u ⊙ q^G_i
    MLP:    φ^M = a(W_L(... a(W_2 [p^M_u; q^M_i] + b_2) ...) + b_L)
    NeuMF:  ŷ_ui = σ(hᵀ [φ^G; φ^M] + b)      (GMF: σ(hᵀ φ^G + b), MLP: σ(hᵀ φ^M + b))

trained with the pointwise log loss over observed items (label 1) and sampled negatives (label 0),
``L = -Σ y log ŷ + (1 - y) log(1 - ŷ)`` (``loss="bce"``), or with the pairwise BPR loss (``loss="bpr"``).
The MLP tower follows the paper: ``mlp_layers = [128, 64, 32]`` means embeddings of size 128 / 2 = 64, so that
``[p; q]`` has 128 entries, then hidden layers of 64 and 32 units. NeuMF may start from pre-trained GMF and
MLP runs, with the output layer ``h ← [α h^G; (1 - α) h^M]`` (bias ``α b^G + (1 - α) b^M``). The files are
read in the constructor, so rebuilding such a run (resume, ``ecomlab-eval``) needs them in place; the run's
own checkpoint then overwrites what they loaded.

Initialisation: embeddings ``N(0, 0.01)`` (the paper's); linear layers take Glorot-uniform weights and zero
biases (``linear_init="xavier"``, the Keras default of the paper's code) or keep PyTorch's ``U(±1/√fan_in)``
(``linear_init="torch"``, as RecBole's NeuMF). Neither wins everywhere (``experiments/neumf_init``): PyTorch's
gave the higher validation NDCG@10 after 20 epochs with one negative, Glorot's in the paper's setting (four
negatives, up to 100 epochs).

Scores are the logits ``hᵀ φ`` (σ is monotone, so rankings are unchanged). Full ranking never materialises
``[B, N, 2d]``: the first MLP layer on a concatenation splits exactly, ``W [p; q] = W_u p + W_i q``, so it is
computed once per user and once per item and broadcast; the rest of the tower runs on chunks of items.
``item_chunk=None`` sizes them so that a chunk's first-layer activations ``[B, c, mlp_layers[0]]`` hold about
2^20 floats (4 MiB) on CPU, which stay in cache: 32 items for 256 users and 128 units. 1024-item chunks
(128 MiB there) made a LastFM pass 4-5x slower, in page faults and cache misses (``experiments/perf``).
Elsewhere about 2^28 floats (1 GiB).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecomlab.checkpoints import is_url, read_checkpoint
from ecomlab.models.base import Recommender
from ecomlab.models.losses import rows

_VARIANTS = ("neumf", "gmf", "mlp")
_GMF_KEYS = ("gmf_user.weight", "gmf_item.weight")


def scoring_chunk(n_users: int, width: int, device: torch.device) -> int:
    """Items per full-ranking chunk so that its ``[n_users, c, width]`` first-layer activations hold about 2^20
    floats on CPU (they stay in cache) and 2^28 elsewhere (a bound on memory, with few kernel launches)."""
    budget = 2**20 if device.type == "cpu" else 2**28
    return max(1, budget // (max(n_users, 1) * max(width, 1)))


class NeuMF(Recommender):
    trainable = True

    def __init__(self, n_users: int, n_items: int, variant: str = "neumf", embedding_dim: int = 64,
                 mlp_layers: Sequence[int] = (128, 64, 32), dropout: float = 0.0, loss: str = "bce",
                 pretrained_gmf: str | None = None, pretrained_mlp: str | None = None, alpha: float = 0.5,
                 item_chunk: int | None = None, linear_init: str = "xavier") -> None:
        super().__init__()
        layers = [int(x) for x in mlp_layers]
        if variant not in _VARIANTS:
            raise ValueError(f"variant={variant!r}; expected one of {list(_VARIANTS)}")
        if loss not in ("bce", "bpr"):
            raise ValueError(f"loss={loss!r}; expected 'bce' (pointwise log loss) or 'bpr' (pairwise)")
        if min(n_users, n_items, embedding_dim, item_chunk or 1) < 1:
            raise ValueError("n_users, n_items, embedding_dim, item_chunk must be >= 1; got "
                             f"{n_users}, {n_items}, {embedding_dim}, {item_chunk}")
        if not layers or min(layers) < 1 or layers[0] % 2:
            raise ValueError(f"mlp_layers={layers}: need positive sizes, the first even (2 x MLP embedding)")
        if linear_init not in ("torch", "xavier"):
            raise ValueError(f"linear_init={linear_init!r}; expected 'torch' (U(±1/√fan_in)) or 'xavier' (Glorot)")
        if not 0.0 <= dropout < 1.0 or not 0.0 <= alpha <= 1.0:
            raise ValueError(f"dropout={dropout} must be in [0, 1) and alpha={alpha} in [0, 1]")
        if variant != "neumf" and (pretrained_gmf or pretrained_mlp):
            raise ValueError(f"pretrained_gmf / pretrained_mlp only apply to variant='neumf', not {variant}")
        if bool(pretrained_gmf) != bool(pretrained_mlp):
            raise ValueError("NeuMF pre-training needs both pretrained_gmf and pretrained_mlp (or neither)")
        self.n_items, self.variant, self.loss_type, self.item_chunk = n_items, variant, loss, item_chunk
        self.use_gmf, self.use_mlp = variant in ("neumf", "gmf"), variant in ("neumf", "mlp")
        factors = 0
        if self.use_gmf:
            self.gmf_user = nn.Embedding(n_users, embedding_dim)
            self.gmf_item = nn.Embedding(n_items, embedding_dim)
            factors += embedding_dim
        if self.use_mlp:
            self.mlp_user = nn.Embedding(n_users, layers[0] // 2)
            self.mlp_item = nn.Embedding(n_items, layers[0] // 2)
            tower: list[nn.Module] = []
            for size_in, size_out in zip(layers[:-1], layers[1:], strict=True):
                tower += [nn.Linear(size_in, size_out), nn.ReLU(), nn.Dropout(dropout)]
            self.mlp = nn.Sequential(*tower)
            factors += layers[-1]
        self.predict = nn.Linear(factors, 1)
        for module in self.modules():
            if isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=0.01)  # the paper's N(0, 0.01)
            elif isinstance(module, nn.Linear) and linear_init == "xavier":
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        if pretrained_gmf and pretrained_mlp:
            self._load_pretrained(pretrained_gmf, pretrained_mlp, alpha)

    # ------------------------------------------------------------------ pre-training
    def _load_pretrained(self, gmf_path: str, mlp_path: str, alpha: float) -> None:
        gmf, mlp = _read_net_state(gmf_path), _read_net_state(mlp_path)
        mlp_keys = [k for k in self.state_dict() if k.startswith(("mlp_user.", "mlp_item.", "mlp."))]
        own = self.state_dict()
        with torch.no_grad():
            for path, state, keys in ((gmf_path, gmf, _GMF_KEYS), (mlp_path, mlp, mlp_keys)):
                for key in keys:
                    own[key].copy_(_take(path, state, key, own[key].shape))
            h_gmf = _take(gmf_path, gmf, "predict.weight", (1, self.gmf_user.embedding_dim))
            h_mlp = _take(mlp_path, mlp, "predict.weight", (1, self.predict.in_features - h_gmf.shape[1]))
            weight = torch.cat([alpha * h_gmf, (1 - alpha) * h_mlp], dim=1)  # [1, d] ++ [1, L] -> [1, d + L]
            self.predict.weight.copy_(weight)
            bias = alpha * _take(gmf_path, gmf, "predict.bias", (1,))
            self.predict.bias.copy_(bias + (1 - alpha) * _take(mlp_path, mlp, "predict.bias", (1,)))

    # ------------------------------------------------------------------ scoring
    def get_embedding(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Embeddings of the branches in use: ``{"gmf": ([U, d], [N, d]), "mlp": ([U, L0/2], [N, L0/2])}``."""
        out: dict[str, tuple[Tensor, Tensor]] = {}
        if self.use_gmf:
            out["gmf"] = (self.gmf_user.weight, self.gmf_item.weight)
        if self.use_mlp:
            out["mlp"] = (self.mlp_user.weight, self.mlp_item.weight)
        return out

    def _split_first_layer(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(W_u, W_i, b)`` of the tower's first layer, or identity pieces when the tower has no layer."""
        half = self.mlp_user.embedding_dim
        if len(self.mlp) == 0:  # mlp_layers = [L0]: φ^M is [p; q] itself
            eye = torch.eye(2 * half, device=self.mlp_user.weight.device)  # [2h, 2h]
            return eye[:, :half], eye[:, half:], torch.zeros(2 * half, device=eye.device)
        first: nn.Linear = self.mlp[0]
        return first.weight[:, :half], first.weight[:, half:], first.bias  # [H1, h], [H1, h], [H1]

    def _mlp_out(self, user_part: Tensor, item_part: Tensor) -> Tensor:
        """φ^M from first-layer pre-activations ``[B, 1 or M, H1]`` + ``[B or 1, M, H1]`` -> ``[B, M, L]``"""
        hidden = user_part + item_part  # broadcast -> [B, M, H1]
        if len(self.mlp) == 0:
            return hidden
        return self.mlp[1:](hidden)  # ReLU, dropout, Linear, ...: [B, M, H1] -> [B, M, L]

    def _score_pairs(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits for ``users`` ``[B]`` and ``items`` ``[B, M]`` -> ``[B, M]``."""
        parts: list[Tensor] = []
        if self.use_gmf:
            parts.append(rows(self.gmf_user, users).unsqueeze(1) * rows(self.gmf_item, items))  # [B, 1, d] * [B, M, d]
        if self.use_mlp:
            w_u, w_i, bias = self._split_first_layer()
            user_part = (rows(self.mlp_user, users) @ w_u.T + bias).unsqueeze(1)  # [B, h] @ [h, H1] -> [B, 1, H1]
            item_part = rows(self.mlp_item, items) @ w_i.T  # [B, M, h] @ [h, H1] -> [B, M, H1]
            parts.append(self._mlp_out(user_part, item_part))  # [B, M, L]
        return self.predict(torch.cat(parts, dim=-1)).squeeze(-1)  # [B, M, d + L] -> [B, M, 1] -> [B, M]

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        h = self.predict.weight.squeeze(0)  # [1, F] -> [F]
        scores = self.predict.bias.expand(len(users), self.n_items)  # [1] -> [B, N]; replaced, not masked
        if self.use_gmf:
            d = self.gmf_user.embedding_dim
            # hᵀ(p ⊙ q) = (p ⊙ h) · q: one matmul for all items.
            gmf_user = rows(self.gmf_user, users) * h[:d]  # [B, d] * [d] -> [B, d]
            scores = scores + gmf_user @ self.gmf_item.weight.T  # [B, d] @ [d, N] -> [B, N]
            h = h[d:]
        if self.use_mlp:
            w_u, w_i, bias = self._split_first_layer()
            user_part = (rows(self.mlp_user, users) @ w_u.T + bias).unsqueeze(1)  # [B, h] @ [h, H1] -> [B, 1, H1]
            item_part = self.mlp_item.weight @ w_i.T  # [N, h] @ [h, H1] -> [N, H1]
            step = self.item_chunk or scoring_chunk(len(users), item_part.shape[1], users.device)
            chunks = [
                # [B, 1, H1] + [1, c, H1] -> [B, c, L] @ [L] -> [B, c]
                self._mlp_out(user_part, item_part[i : i + step].unsqueeze(0)) @ h
                for i in range(0, item_part.shape[0], step)  # a loop over item chunks only
            ]
            scores = scores + torch.cat(chunks, dim=1)  # [B, c] ++ ... -> [B, N]
        return scores

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        items = torch.cat([pos.unsqueeze(1), neg], dim=1)  # [B, 1] ++ [B, n_neg] -> [B, 1 + n_neg]
        logits = self._score_pairs(users, items)  # [B, 1 + n_neg]
        if self.loss_type == "bpr":
            return -F.logsigmoid(logits[:, :1] - logits[:, 1:]).mean()  # [B, 1] - [B, n_neg]
        labels = torch.cat([torch.ones_like(logits[:, :1]), torch.zeros_like(logits[:, 1:])], dim=1)  # [B, 1 + n_neg]
        return F.binary_cross_entropy_with_logits(logits, labels)


def _read_net_state(path: str) -> dict[str, Tensor]:
    """The network's weights from a Lightning checkpoint (keys ``net.*``, prefix removed); read with
    ``weights_only=True``, and a truncated or foreign file is an error naming it."""
    if not is_url(str(path)) and not Path(path).is_file():
        raise FileNotFoundError(f"NeuMF pre-training checkpoint not found: {path}")
    ckpt = read_checkpoint(path)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return {k.removeprefix("net."): v for k, v in state.items() if k.startswith("net.")}


def _take(path: str, state: dict[str, Tensor], key: str, shape: Sequence[int]) -> Tensor:
    if key not in state:
        raise ValueError(f"{path}: key 'net.{key}' missing; not a checkpoint of the matching NeuMF variant?")
    if tuple(state[key].shape) != tuple(shape):
        raise ValueError(f"{path}: key 'net.{key}' has shape {tuple(state[key].shape)}, this NeuMF expects "
                         f"{tuple(shape)} (check embedding_dim / mlp_layers and the data set)")
    return state[key]
