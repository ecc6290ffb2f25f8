"""BPR matrix factorisation.

Rendle, Freudenthaler, Gantner, Schmidt-Thieme, "BPR: Bayesian Personalized Ranking from Implicit
Feedback", UAI 2009. Scores are inner products of user and item embeddings, ``x̂_ui = <p_u, q_i>``, trained on
triples (u, i, j) of a positive item i and a sampled negative j with

    L = -Σ ln σ(x̂_ui - x̂_uj) + λ (‖p_u‖² + ‖q_i‖² + ‖q_j‖²) / B
"""

from __future__ import annotations

from torch import Tensor, nn

from ecomlab.models.base import Recommender
from ecomlab.models.losses import bpr_loss, embedding_l2, positive_and_negative_rows, rows


class BPRMF(Recommender):
    trainable = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, reg_weight: float = 1e-4) -> None:
        super().__init__()
        if n_users < 1 or n_items < 1 or embedding_dim < 1:
            raise ValueError(f"n_users, n_items, embedding_dim must be >= 1; got {n_users}, {n_items}, {embedding_dim}")
        if reg_weight < 0:
            raise ValueError(f"reg_weight={reg_weight}; expected >= 0")
        self.n_users, self.n_items, self.reg_weight = n_users, n_items, reg_weight
        self.user_emb = nn.Embedding(n_users, embedding_dim)
        self.item_emb = nn.Embedding(n_items, embedding_dim)
        nn.init.xavier_normal_(self.user_emb.weight)
        nn.init.xavier_normal_(self.item_emb.weight)

    def get_embedding(self) -> tuple[Tensor, Tensor]:
        """``([n_users, d], [n_items, d])``."""
        return self.user_emb.weight, self.item_emb.weight

    def forward(self, users: Tensor) -> Tensor:
        return rows(self.user_emb, users) @ self.item_emb.weight.T  # [B, d] @ [d, N] -> [B, N]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        u = rows(self.user_emb, users)  # [B, d]
        q_pos, q_neg = positive_and_negative_rows(self.item_emb, pos, neg)  # [B, d], [B, n, d]
        return bpr_loss(u, q_pos, q_neg) + self.reg_weight * embedding_l2(u, q_pos, q_neg)
