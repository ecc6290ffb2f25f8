"""Parameter groups with learning-rate factors, as the fine-tuned text encoder uses them."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import torch
from torch import nn

from ecomlab.models.base import Recommender
from ecomlab.tasks.optim import configure_optimizers
from ecomlab.tasks.ranking import RankingTask


class TwoParts(Recommender):
    def __init__(self) -> None:
        super().__init__()
        self.encoder, self.head = nn.Linear(3, 3), nn.Linear(3, 2)

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.head.parameters())},
                {"params": list(self.encoder.parameters()), "lr_factor": 0.1}]


def test_lr_factor_scales_its_group_and_schedulers_start_from_the_scaled_rate() -> None:
    task = RankingTask(TwoParts(), optimizer=partial(torch.optim.Adam, lr=1e-2),
                       scheduler=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    out = task.configure_optimizers()
    opt, sched = out["optimizer"], out["lr_scheduler"]["scheduler"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-2, 1e-3])
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([5e-3, 5e-4])


def test_default_groups_hold_every_trainable_parameter_once() -> None:
    net = TwoParts()
    net.encoder.weight.requires_grad_(False)
    groups = Recommender.param_groups(net)
    assert len(groups) == 1 and len(groups[0]["params"]) == 3
    opt = configure_optimizers(partial(torch.optim.SGD, lr=0.5), None, groups, "val/ndcg@10")
    assert opt.param_groups[0]["lr"] == 0.5


def test_text_model_refuses_a_non_positive_encoder_factor() -> None:
    from ecomlab.models.text_two_tower import TextTwoTower

    with pytest.raises(ValueError, match="encoder_lr_factor"):
        TextTwoTower(5, 5, encoder_lr_factor=0.0)


@pytest.mark.slow  # torch.compile on CPU builds C++ kernels: ~1 minute
def test_compiled_run_trains_and_its_checkpoint_loads_uncompiled(compose_cfg) -> None:
    from ecomlab.eval import load_run
    from ecomlab.train import train

    cfg = compose_cfg(["model=bpr", "data=synthetic_shop", "data.source.n_users=60", "data.source.n_items=40",
                       "trainer.max_epochs=2", "compile=true"])
    from torch._dynamo.utils import counters

    counters.clear()
    record = train(cfg)
    assert 0.0 <= record["metrics"]["test/ndcg@10"] <= 1.0
    assert counters["stats"]["unique_graphs"] >= 1, "nothing was compiled"
    run = load_run(cfg.paths.output_dir)  # rebuilt without compilation
    state = torch.load(run.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    run.task.load_state_dict(state, strict=True)  # the compiled run's checkpoint keeps the plain keys
