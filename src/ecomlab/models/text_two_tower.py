"""Text two-tower recommender: items encoded from their text only, users as pooled item histories.

Two-tower retrieval (Huang et al., DSSM, CIKM 2013; Yi et al., "Sampling-Bias-Corrected Neural Modeling for
Large Corpus Item Recommendations", RecSys 2019) with a content item tower, so items nobody bought yet are
scored from their text (cold start). With :math:`f` the item tower and :math:`H_u` the user's training items,

.. math::  v_i = \\frac{f(\\mathrm{text}_i)}{\\lVert f(\\mathrm{text}_i) \\rVert}, \\quad
           q_u = \\frac{W \\bar v_{H_u} (+\\, p_u)}{\\lVert \\cdot \\rVert}, \\quad
           s_{ui} = \\langle q_u, v_i \\rangle / \\tau,

where :math:`\\bar v_{H_u}` is the mean of the history vectors, and in training the mean over
:math:`H_u \\setminus \\{i\\}` for target :math:`i` (else the target's own vector sits in the profile and
training rewards self-matching instead of predicting new items). ``encoder="scratch"``: :math:`f = P \\cdot
\\mathrm{mean}(\\text{token embeddings})` over :class:`~ecomlab.models.tfidf.MixedAnalyzer` tokens (Latin words,
CJK character n-grams), optionally plus hashed character n-grams of words (Bojanowski et al., fastText, TACL
2017). ``encoder="pretrained"``: :math:`f = P \\cdot \\mathrm{SBERT}(\\mathrm{text})` (Reimers & Gurevych, EMNLP
2019) from a local sentence-transformers directory, frozen (item embeddings computed once in ``fit``) or
fine-tuned (batch items encoded live; histories pool embeddings refreshed at each train/eval switch).

``loss="softmax"``: cross-entropy of the positive against the other batch positives (not those the user
bought) and the user's sampled negatives (mixed negative sampling, Yang et al., WWW 2020), with the logQ
correction :math:`s_{uj} - \\log q_j` (:math:`q_j` = item j's share of training interactions for in-batch
items, :math:`1/N` for uniform negatives), which keeps popular items from being over-penalised as negatives.
``loss="bpr"``: :math:`-\\log \\sigma(s_{ui} - s_{uj})` on the sampled negatives.

Sizes: scoring takes every item vector from the whole token table and every user's history sum from one sparse
product :math:`H V` (:math:`H` the binary ``[U, N]`` history matrix), so nothing is sized by the data on the host
and nothing waits for the device. A training step does the same off the CPU. On CPU, where nothing waits, it
encodes only the distinct items of the batch and of its users' histories, and the in-batch softmax has one
column per distinct positive, :math:`+ \\log(\\text{count})` in its logit, instead of one per row: the same
loss with less work (tested equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ecomlab.models.base import Recommender, RecTrainData
from ecomlab.models.histories import UserHistories, csr_entries
from ecomlab.models.losses import rows
from ecomlab.models.text_encoders import load_sentence_transformer
from ecomlab.models.text_tokens import ScratchTokens, scratch_vocabulary
from ecomlab.models.tfidf import MixedAnalyzer


class InBatch(NamedTuple):
    """The in-batch softmax's columns: the batch's positives, as many as rows (fixed sizes) or one per item."""

    vectors: Tensor  #: [M, d] unit item vectors
    items: Tensor  #: [M] item ids
    count: Tensor  #: [M] float32: how many rows have the item as their positive
    column: Tensor  #: [B] the column of each row's own positive
    clash: Tensor  #: [B, M] bool: the column's item is in the row's user's training history


class TextTwoTower(Recommender):
    trainable = True

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64, encoder: str = "scratch",
                 max_vocab: int = 20000, min_count: int = 1, cjk_ngram_range: Sequence[int] = (1, 2),
                 hash_buckets: int = 0, char_ngram_range: Sequence[int] = (3, 5), use_user_id: bool = False,
                 loss: str = "softmax", temperature: float = 0.1, logq_correction: bool = True,
                 model_dir: str | None = None, finetune: bool = False, pretrained_dim: int = 384,
                 max_seq_length: int = 64, encoder_lr_factor: float = 1.0,
                 gradient_checkpointing: bool = True) -> None:
        super().__init__()
        if encoder_lr_factor <= 0:
            raise ValueError(f"encoder_lr_factor={encoder_lr_factor}; expected > 0 (the fine-tuned encoder's "
                             "learning rate as a multiple of the optimizer's)")
        if n_users < 1 or n_items < 1 or embedding_dim < 1:
            raise ValueError(f"n_users, n_items, embedding_dim must be >= 1; got {n_users}, {n_items}, {embedding_dim}")
        if encoder not in ("scratch", "pretrained") or loss not in ("softmax", "bpr"):
            raise ValueError(f"encoder={encoder!r} (expected 'scratch' or 'pretrained'), loss={loss!r} "
                             "(expected 'softmax' or 'bpr')")
        if max_vocab < 1 or min_count < 1 or hash_buckets < 0 or temperature <= 0:
            raise ValueError(f"max_vocab={max_vocab}, min_count={min_count} must be >= 1, hash_buckets="
                             f"{hash_buckets} >= 0, temperature={temperature} > 0")
        if encoder == "pretrained" and not model_dir:
            raise ValueError("encoder='pretrained' needs model_dir, a local sentence-transformers directory")
        self.n_users, self.n_items, self.encoder, self.loss_name = n_users, n_items, encoder, loss
        self.max_vocab, self.min_count, self.hash_buckets = max_vocab, min_count, hash_buckets
        self.analyzer = MixedAnalyzer(tuple(int(n) for n in cjk_ngram_range))  # type: ignore[arg-type]
        self.char_ngram_range = (int(char_ngram_range[0]), int(char_ngram_range[1]))
        self.temperature, self.model_dir, self.max_seq_length = temperature, model_dir, max_seq_length
        self.logq_correction = logq_correction
        self.finetune = encoder == "pretrained" and finetune
        self.encoder_lr_factor = encoder_lr_factor
        if encoder == "scratch":
            # Sized by max_vocab, not by the data, so the parameters exist before fit (optimizer, checkpoint);
            # row 0 is "no known token", rows past the fitted vocabulary stay unused.
            self.token_emb = nn.EmbeddingBag(1 + max_vocab + hash_buckets, embedding_dim, mode="mean")
            nn.init.normal_(self.token_emb.weight, std=0.1)
            self.item_proj = nn.Linear(embedding_dim, embedding_dim)
        else:
            self.item_proj = nn.Linear(pretrained_dim, embedding_dim)
        self.st = load_sentence_transformer(model_dir) if self.finetune else None  # trained, so a submodule
        if self.st is not None:
            # it loads in eval mode and Lightning keeps each submodule's mode, so without this the encoder would
            # be fine-tuned with its dropout off
            self.st.train(self.training)
            if gradient_checkpointing:
                # a batch's ~1,500 distinct item texts keep every layer's activations for the backward pass: 24 GB
                # on Amazon Office at the default batch (killed for memory on a 24 GB machine); recomputing them
                # layer by layer (transformers' own checkpointing) keeps only the layer inputs
                model = self.st[0].auto_model
                if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x; the old name warns
                    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
                else:
                    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.user_proj = nn.Linear(embedding_dim, embedding_dim, bias=False)
        nn.init.eye_(self.user_proj.weight)  # start as pure content matching: q_u = mean of history vectors
        self.user_emb = nn.Embedding(n_users, embedding_dim) if use_user_id else None
        if self.user_emb is not None:
            nn.init.normal_(self.user_emb.weight, std=0.01)
        self.histories = UserHistories()  # the training histories; no weights, nothing checkpointed
        derived = ("tok_indptr", "tok_ids", "log_q", "text_emb", "input_ids", "attn")
        for name in derived:  # built from the data in fit(), never checkpointed
            self.register_buffer(name, None, persistent=False)
        self._cache: tuple[tuple[int, ...], Tensor, Tensor] | None = None  # (weight versions, items, users)
        self.tokens: ScratchTokens | None = None  # the scratch vocabulary, rebuilt by fit from the texts

    def param_groups(self) -> list[dict[str, Any]]:
        """The fine-tuned sentence encoder at ``encoder_lr_factor`` times the learning rate of the rest: a
        pretrained encoder usually wants a much smaller step than the freshly initialised projections."""
        if self.st is None:
            return super().param_groups()
        encoder = {id(p) for p in self.st.parameters()}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in encoder]
        tuned = [p for p in self.st.parameters() if p.requires_grad]
        return [{"params": rest}, {"params": tuned, "lr_factor": self.encoder_lr_factor}]

    # ---- fixed inputs -------------------------------------------------------------------------------------
    def fit(self, data: RecTrainData) -> None:
        if data.item_text is None:
            raise ValueError("TextTwoTower needs item text (RecTrainData.item_text, the data set's `item_text` "
                             f"part); data set '{data.name}' has none: pick data with item texts (e.g. data=synthetic_shop)")
        texts = ["" if t is None else str(t) for t in data.item_text]
        if len(texts) != self.n_items or data.train.shape != (self.n_users, self.n_items):
            raise ValueError(f"expected {self.n_items} item texts and a ({self.n_users}, {self.n_items}) train "
                             f"matrix; got {len(texts)} texts and {data.train.shape}")
        if not any(t.strip() for t in texts):
            raise ValueError("TextTwoTower needs item text; every item text is empty")
        device = self.item_proj.weight.device
        self.histories.fit(data.train, device)
        # How often each item is drawn as an in-batch positive: log of its share of the training interactions.
        counts = torch.diff(self.histories.matrix_t.crow_indices()).clamp(min=1)  # [N]: rows of H^T
        self.log_q = (counts.double() / len(self.histories.items)).log().float()  # [N]
        if self.encoder == "scratch":
            docs = [self.analyzer(t) for t in texts]
            self.tokens = ScratchTokens(scratch_vocabulary(docs, self.min_count, self.max_vocab), self.analyzer,
                                        self.max_vocab, self.hash_buckets, self.char_ngram_range)
            indptr, ids = self.tokens.csr(docs)  # [N + 1], [T]
            self.tok_indptr, self.tok_ids = torch.from_numpy(indptr).to(device), torch.from_numpy(ids).to(device)
        else:
            self._fit_pretrained(texts, device)
        self._drop_cache()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Unit item vectors ``[n, d]`` of new item texts with the trained item tower (the fitted vocabulary,
        or the sentence encoder): how an item the model never saw would be embedded (cold start, export)."""
        self._check_fitted()
        device = self.item_proj.weight.device
        texts = ["" if t is None else str(t) for t in texts]
        if self.encoder == "scratch":
            indptr, ids = self.tokens.csr([self.analyzer(t) for t in texts])  # type: ignore[union-attr]
            flat, offsets = torch.from_numpy(ids).to(device), torch.from_numpy(indptr[:-1]).to(device)
            return F.normalize(self.item_proj(self.token_emb(flat, offsets)), dim=1)  # [n, t] -> [n, d]
        st = self.st if self.st is not None else load_sentence_transformer(self.model_dir)  # type: ignore[arg-type]
        st.max_seq_length = self.max_seq_length
        was_training = st.training
        st.eval()
        emb = st.encode(texts, batch_size=128, convert_to_tensor=True, device=str(device))  # [n, p]
        st.train(was_training)
        return F.normalize(self.item_proj(emb.float()), dim=1)  # [n, p] -> [n, d]

    def _fit_pretrained(self, texts: list[str], device: torch.device) -> None:
        st = self.st if self.st is not None else load_sentence_transformer(self.model_dir)  # type: ignore[arg-type]
        st.max_seq_length = self.max_seq_length
        dim = getattr(st, "get_embedding_dimension", st.get_sentence_embedding_dimension)()  # renamed in v5
        if dim != self.item_proj.in_features:
            raise ValueError(f"{self.model_dir} gives {dim}-d embeddings; set pretrained_dim={dim}")
        if self.finetune:
            features = st.tokenize(texts)  # padded [N, L] tensors
            self.input_ids, self.attn = features["input_ids"].to(device), features["attention_mask"].to(device)
            self.text_emb = None  # computed from the current weights on first use
            return
        enc_device = "cuda" if torch.cuda.is_available() else "cpu"
        emb = st.encode(texts, batch_size=128, convert_to_tensor=True, device=enc_device)  # [N, p]
        self.text_emb = emb.detach().float().to(device)

    # ---- towers -------------------------------------------------------------------------------------------
    def _encode_live(self, items: Tensor) -> Tensor:
        """Fine-tuned SBERT embeddings of ``items`` [n] -> [n, p]."""
        mask = self.attn[items]  # [n, L]
        width = int(mask.sum(1).max())
        features = {"input_ids": self.input_ids[items, :width], "attention_mask": mask[:, :width]}
        return self.st(features)["sentence_embedding"]  # type: ignore[misc]

    @torch.no_grad()
    def _encode_all(self) -> Tensor:
        """Embeddings of every item ``[N, p]`` from the current fine-tuned encoder, without dropout."""
        was_training = self.st.training  # type: ignore[union-attr]
        self.st.eval()  # type: ignore[union-attr]
        chunks = torch.arange(self.n_items, device=self.input_ids.device).split(256)
        out = torch.cat([self._encode_live(c) for c in chunks])  # [N, p]
        self.st.train(was_training)  # type: ignore[union-attr]
        return out

    def item_vectors(self, items: Tensor, live: bool = True) -> Tensor:
        """Unit item vectors ``[n, d]`` from text only (``live=False``: fine-tuned items from the refreshed
        embedding table, used for history pooling)."""
        self._check_fitted()
        if self.encoder == "scratch":
            _, flat, lengths = csr_entries(self.tok_indptr, self.tok_ids, items)  # [T_n] tokens of the n items
            raw = self.item_proj(self.token_emb(flat, torch.cumsum(lengths, 0) - lengths))  # [n, t] -> [n, d]
        elif self.finetune and live and self.training:
            raw = self.item_proj(self._encode_live(items))  # [n, p] -> [n, d]
        else:
            if self.text_emb is None:  # fine-tuned: refresh from the current encoder weights
                self.text_emb = self._encode_all()
            raw = self.item_proj(self.text_emb[items])  # [n, p] -> [n, d]
        return F.normalize(raw, dim=1)

    def _check_fitted(self) -> None:
        if self.histories.indptr is None:
            raise RuntimeError("TextTwoTower needs fit(data) before use: it takes item text and histories there")

    def all_item_vectors(self) -> Tensor:
        """Unit vectors of every item ``[N, d]``: the scratch encoder bags the whole token table as it is."""
        self._check_fitted()
        if self.encoder != "scratch":
            return self.item_vectors(torch.arange(self.n_items, device=self.item_proj.weight.device))
        raw = self.item_proj(self.token_emb(self.tok_ids, self.tok_indptr[:-1]))  # [T] in N bags -> [N, d]
        return F.normalize(raw, dim=1)

    def all_user_vectors(self, item_table: Tensor) -> Tensor:
        """Unit vectors of every user ``[U, d]`` from every item's ``[N, d]``: the history sums as one product."""
        return self._user_head(self.histories.sums(item_table), self.histories.count, None)  # [U, d]

    def user_vectors(self, users: Tensor, item_table: Tensor | None = None, leave_out: Tensor | None = None) -> Tensor:
        """Unit user vectors ``[B, d]``: projected mean of history item vectors (``item_table`` = all items).

        ``leave_out`` [B] drops each user's training target from its history, else the target's own vector
        sits in the profile and training rewards self-matching rather than predicting new items."""
        flat, offsets = self.histories.gather(users)
        n_flat = len(flat)
        if leave_out is not None:
            flat = torch.cat([flat, leave_out])  # [n_flat + B]
        if item_table is None:
            needed, flat = torch.unique(flat, return_inverse=True)
            item_table = self.item_vectors(needed, live=False)  # [M, d]
        summed = F.embedding_bag(flat[:n_flat], item_table, offsets, mode="sum")  # [B, d]
        if leave_out is None:
            return self._user_head(summed, self.histories.count[users], users)
        return self._leave_one_out(users, leave_out, summed, item_table[flat[n_flat:]])

    def _leave_one_out(self, users: Tensor, targets: Tensor, summed: Tensor, v_targets: Tensor) -> Tensor:
        """Unit user vectors from history sums ``[B, d]`` less each row's target ``[B, d]`` where it is in the
        history: the training profile, so that predicting the target is not matching it against itself."""
        dropped = self.histories.contains(users, targets).to(summed.dtype)  # [B]
        summed = summed - dropped[:, None] * v_targets.to(summed.dtype)  # [B, d]
        return self._user_head(summed, self.histories.count[users] - dropped, users)

    def _user_head(self, summed: Tensor, count: Tensor, users: Tensor | None) -> Tensor:
        """Unit ``W mean (+ p_u)`` from history sums ``[B, d]`` and lengths ``[B]`` (``users=None``: all users)."""
        q = self.user_proj(summed / count.clamp(min=1)[:, None])  # [B, d]; no history -> zeros
        if self.user_emb is not None:
            q = q + (self.user_emb.weight if users is None else self.user_emb(users))
        return F.normalize(q, dim=1)

    def tables(self) -> tuple[Tensor, Tensor]:
        """Every item's and every user's unit vectors ``([N, d], [U, d])``; kept between calls outside training."""
        # In-place weight updates (optimizer step, load_state_dict) bump the versions: a stale cache is never used.
        key = tuple(p._version for p in self.parameters())
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        items = self.all_item_vectors()
        users = self.all_user_vectors(items)
        if not self.training and not torch.is_grad_enabled():
            self._cache = (key, items, users)
        return items, users

    def get_embedding(self) -> Tensor:
        """All unit item vectors ``[n_items, d]``; computed once per evaluation (cached outside training)."""
        return self.tables()[0]

    def forward(self, users: Tensor) -> Tensor:  # [B] -> [B, n_items]
        items, queries = self.tables()
        return rows(queries, users) @ items.T / self.temperature  # [B, d] @ [d, N] -> [B, N]

    def train(self, mode: bool = True) -> TextTwoTower:
        self._drop_cache()
        return super().train(mode)

    def _drop_cache(self) -> None:
        self._cache = None
        if self.finetune:
            self.text_emb = None

    def towers(self, users: Tensor, pos: Tensor, neg: Tensor, compact: bool | None = None
               ) -> tuple[Tensor, Tensor, Tensor, InBatch | None]:
        """A training batch's unit vectors, ``q`` [B, d] (history without the target), ``v_pos`` [B, d] and
        ``v_neg`` [B, n, d], and for the softmax loss the in-batch columns (:class:`InBatch`).

        ``compact`` (default: on CPU, and always for a fine-tuned encoder) encodes only the batch's distinct
        items, gathers only its users' histories and gives each distinct positive one column, sized on the host;
        otherwise every item and every user history sum is computed and each row's positive is a column, at
        fixed sizes, so nothing waits for the device. The loss is the same either way (tested)."""
        n_b, n_neg = neg.shape
        softmax = self.loss_name == "softmax"
        if compact is None:
            compact = self.finetune or users.device.type == "cpu"
        if not compact:
            table = self.all_item_vectors()  # [N, d]
            summed = rows(self.histories.sums(table), users)  # [U, N] @ [N, d] -> [U, d] -> [B, d]
            v_pos, v_neg = rows(table, pos), rows(table, neg.flatten())  # [B, d], [B*n_neg, d]
            q = self._leave_one_out(users, pos, summed, v_pos)  # [B, d]
        elif self.finetune:  # histories pool the refreshed embedding table; the batch's items are encoded live
            needed, inverse = torch.unique(torch.cat([pos, neg.flatten()]), return_inverse=True)  # [M]
            table = self.item_vectors(needed)  # [M, d]
            v_pos, v_neg = table[inverse[:n_b]], table[inverse[n_b:]]  # [B, d], [B*n_neg, d]
            q = self.user_vectors(users, leave_out=pos)  # [B, d]
        else:  # one encoding of the distinct items of the histories and of the batch
            flat, offsets = self.histories.gather(users)  # [H], [B]
            needed, inverse = torch.unique(torch.cat([flat, pos, neg.flatten()]), return_inverse=True)  # [M]
            table = self.item_vectors(needed)  # [M, d]
            batch_rows = inverse[len(flat) :]  # [B + B*n_neg]
            v_pos, v_neg = table[batch_rows[:n_b]], table[batch_rows[n_b:]]  # [B, d], [B*n_neg, d]
            summed = F.embedding_bag(inverse[: len(flat)], table, offsets, mode="sum")  # [B, d]
            q = self._leave_one_out(users, pos, summed, v_pos)  # [B, d]
        cols = None
        if softmax and compact:
            items, column, count = torch.unique(pos, return_inverse=True, return_counts=True)  # [P], [B], [P]
            cols = InBatch(table[torch.searchsorted(needed, items)], items, count.float(), column,
                           self.histories.mask(users, items))  # [P, d], [P], [P], [B], [B, P]
        elif softmax:
            cols = InBatch(v_pos, pos, torch.ones(n_b, device=q.device),
                           torch.arange(n_b, device=q.device), self.histories.contains(users[:, None], pos[None, :]))
        return q, v_pos, v_neg.view(n_b, n_neg, -1), cols  # [B*n_neg, d] -> [B, n_neg, d]

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        users, pos, neg = batch["users"], batch["pos"], batch["neg"]
        n_b = len(users)
        q, v_pos, v_neg, cols = self.towers(users, pos, neg)
        s_pos = (q * v_pos).sum(-1, keepdim=True) / self.temperature  # [B, d] -> [B, 1]
        # a broadcast product, not einsum (a batched matmul of B 1 x d by d x n products: slower on CPU)
        s_neg = (q.unsqueeze(1) * v_neg).sum(-1) / self.temperature  # [B, 1, d] * [B, n_neg, d] -> [B, n_neg]
        if self.loss_name == "bpr":
            return -F.logsigmoid(s_pos - s_neg).mean()
        assert cols is not None
        # Column m stands for the count_m rows whose positive it is: + log count_m. Another row's positive is no
        # negative for a user who bought it (same item, same user, or history): -inf. Yi et al.'s logQ correction,
        # s - log q(item), undoes the popularity bias of in-batch negatives. All of it is the bias of one GEMM,
        # bias + q v^T / tau: each [B, M] intermediate would cost a memory pass on CPU.
        log_q = self.log_q[cols.items] if self.logq_correction else torch.zeros_like(cols.count)  # [M]
        bias = torch.where(cols.clash, float("-inf"), (cols.count.log() - log_q)[None, :])  # [B, M]
        # The row's own positive is its target (the first logit); its column holds the count - 1 other rows.
        own = (torch.arange(n_b, device=q.device), cols.column)
        bias[own] = torch.where(cols.clash[own], float("-inf"), (cols.count[cols.column] - 1).log() - log_q[cols.column])
        in_batch = torch.addmm(bias, q, cols.vectors.T, alpha=1 / self.temperature)  # [B, M] + [B, d] @ [d, M]
        if self.logq_correction:
            s_pos = s_pos - self.log_q[pos][:, None]
            s_neg = s_neg + np.log(self.n_items)  # uniform negatives: q = 1 / n_items
        logits = torch.cat([s_pos, in_batch, s_neg], dim=1)  # [B, 1 + M + n_neg]
        return F.cross_entropy(logits, torch.zeros(n_b, dtype=torch.long, device=logits.device))
