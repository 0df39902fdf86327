"""GRPO advantages and loss: hand-checked values and the properties the algorithm relies on."""

from __future__ import annotations

import pytest
import torch

from rl.grpo import GRPOConfig, group_advantages, grpo_loss, rft_loss


def test_group_advantages_normalise_within_each_group():
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 5.0, 5.0, 5.0, 5.0])
    adv = group_advantages(rewards, group_size=4)
    assert torch.allclose(adv[:4], torch.tensor([1.0, -1.0, 1.0, -1.0]), atol=1e-3)
    assert torch.equal(adv[4:], torch.zeros(4)), "identical rewards carry no signal"


def test_group_advantages_reject_ragged_groups():
    with pytest.raises(ValueError, match="groups of 3"):
        group_advantages(torch.zeros(4), group_size=3)


def test_loss_on_policy_equals_minus_mean_advantage_per_token():
    logp = torch.log(torch.full((2, 3), 0.5))
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    adv = torch.tensor([1.0, -2.0])
    loss, metrics = grpo_loss(logp, logp, logp, adv, mask, GRPOConfig(kl_coef=0.1))
    expected = -(1.0 * 2 + -2.0 * 3) / 5  # ratio 1, KL 0, token-level mean over 5 tokens
    assert loss.item() == pytest.approx(expected)
    assert metrics["kl"] == pytest.approx(0.0) and metrics["clip_fraction"] == 0.0


def test_clipping_stops_the_gradient_beyond_the_trust_region():
    old = torch.zeros(1, 1)
    new = torch.tensor([[0.5]], requires_grad=True)  # ratio e^0.5 > 1.2
    loss, metrics = grpo_loss(new, old, new.detach(), torch.tensor([1.0]), torch.ones(1, 1),
                              GRPOConfig(kl_coef=0.0))
    loss.backward()
    assert new.grad.item() == 0.0 and metrics["clip_fraction"] == 1.0


def test_kl_term_pulls_towards_the_reference():
    ref = torch.zeros(1, 4)
    new = torch.full((1, 4), -1.0, requires_grad=True)
    loss, metrics = grpo_loss(new, new.detach(), ref, torch.zeros(1), torch.ones(1, 4), GRPOConfig(kl_coef=1.0))
    loss.backward()
    assert metrics["kl"] > 0 and (new.grad < 0).all(), "descending the loss raises logprobs toward ref"


def test_positive_advantage_raises_logprob():
    logp = torch.full((1, 2), -1.0, requires_grad=True)
    loss, _ = grpo_loss(logp, logp.detach(), logp.detach(), torch.tensor([2.0]), torch.ones(1, 2), GRPOConfig())
    loss.backward()
    assert (logp.grad < 0).all()


def test_rft_loss_uses_only_kept_samples():
    logp = torch.tensor([[-1.0, -2.0], [-3.0, -4.0]])
    loss, metrics = rft_loss(logp, torch.ones(2, 2), torch.tensor([1.0, 0.0]))
    assert loss.item() == pytest.approx(1.5) and metrics["kept"] == 1.0


def test_config_validates():
    with pytest.raises(ValueError, match="clip_eps"):
        GRPOConfig(clip_eps=1.5)
