"""GRPO: group-normalised advantages and the clipped, KL-regularised policy loss.

Reads like the algorithm: ``group_advantages`` → ``grpo_loss`` → ``(loss, metrics)``. Token-level
normalisation: the loss is the mean over every completion token in the batch (DAPO-style), so long and
short completions weigh each token equally.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class GRPOConfig:
    clip_eps: float = 0.2
    """PPO-style clipping of the importance ratio to [1 - eps, 1 + eps]."""
    kl_coef: float = 0.04
    """Weight of the k3 KL estimate to the reference policy (the base model, adapter disabled)."""
    eps: float = 1e-4
    """Added to the group std so a group with identical rewards gives zero advantages, not NaN."""

    def __post_init__(self) -> None:
        if not 0 < self.clip_eps < 1:
            raise ValueError(f"clip_eps must be in (0, 1), got {self.clip_eps}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """(r - mean(group)) / (std(group) + eps) for consecutive groups of ``group_size`` rewards."""
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.float().view(-1, group_size)  # [num_groups, group_size]
    mean = grouped.mean(dim=1, keepdim=True)
    std = grouped.std(dim=1, keepdim=True, unbiased=False)
    return ((grouped - mean) / (std + eps)).view(-1)


def grpo_loss(
    logprobs: torch.Tensor, old_logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
    advantages: torch.Tensor, mask: torch.Tensor, config: GRPOConfig,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate + KL over completion tokens.

    Shapes: ``logprobs``, ``old_logprobs``, ``ref_logprobs``, ``mask``: [batch, seq]; ``advantages``:
    [batch]. ``mask`` is 1 on completion tokens, 0 on prompt and padding.
    """
    mask = mask.to(logprobs.dtype)
    ratio = torch.exp(logprobs - old_logprobs)  # [batch, seq]
    adv = advantages.to(logprobs.dtype).unsqueeze(1)  # [batch, 1]
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1 - config.clip_eps, 1 + config.clip_eps) * adv
    policy = -torch.minimum(unclipped, clipped)
    log_ref_ratio = ref_logprobs - logprobs
    kl = torch.exp(log_ref_ratio) - log_ref_ratio - 1  # k3 estimator, >= 0
    per_token = policy + config.kl_coef * kl
    num_tokens = mask.sum().clamp(min=1)
    loss = (per_token * mask).sum() / num_tokens
    with torch.no_grad():
        clip_frac = (((ratio < 1 - config.clip_eps) | (ratio > 1 + config.clip_eps)).to(mask.dtype) * mask)
        metrics = {
            "loss": float(loss.detach()),
            "policy_loss": float((policy * mask).sum() / num_tokens),
            "kl": float((kl * mask).sum() / num_tokens),
            "clip_fraction": float(clip_frac.sum() / num_tokens),
            "ratio_mean": float((ratio * mask).sum() / num_tokens),
            "num_tokens": float(num_tokens),
        }
    return loss, metrics


def select_rft(groups: Sequence[Sequence[Any]], max_per_task: int) -> list[bool]:
    """Which rollouts RFT trains on, flat in group order: passing ones with a solution distinct from the
    group's earlier kept ones (same AST: same solution), at most ``max_per_task`` per task (RFT / ReST-EM keep
    distinct reasoning paths, capped per problem, so easy tasks with 8/8 passes do not dominate)."""
    keep = []
    for group in groups:
        seen: set[str] = set()
        for r in group:
            key = _solution_key(r.code or r.completion)
            take = r.status == "passed" and key not in seen and len(seen) < max_per_task
            if take:
                seen.add(key)
            keep.append(take)
    return keep


def _solution_key(code: str) -> str:
    """Layout, comments and redundant parentheses do not make a solution distinct."""
    try:
        return ast.dump(ast.parse(code))
    except (SyntaxError, ValueError):
        return " ".join(code.split())


def rft_loss(logprobs: torch.Tensor, mask: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Rejection-sampling fine-tuning: NLL of the kept samples (``select_rft``), token-normalised. ``logprobs``
    are the model's own (temperature 1): the sampling temperature is for exploration, not part of the loss."""
    weights = mask.to(logprobs.dtype) * keep.to(logprobs.dtype).unsqueeze(1)
    num_tokens = weights.sum().clamp(min=1)
    loss = -(logprobs * weights).sum() / num_tokens
    return loss, {"loss": float(loss.detach()), "num_tokens": float(weights.sum()), "kept": float(keep.sum())}
