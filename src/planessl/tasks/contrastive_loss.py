"""Contrastive losses with several positives per anchor, and the gather across processes.

One loss serves three methods; only the positive pairs differ (:func:`positive_mask`):

- ``simclr`` (Chen et al. 2020): the two augmented views of one image;
- ``gcl`` (Chaitanya et al. 2020, the partition-based global loss "GD-"): the views of one
  image, and images from the same partition of their stacks (the stack cut into
  ``partitions`` equal parts by relative slice location) in any study;
- ``pcl`` (Zeng et al. 2021): the views of one image, and images whose relative slice
  locations differ by less than a threshold.

The loss is the multi-positive normalised-temperature cross entropy (NT-Xent; the
"supervised contrastive" form of Khosla et al. 2020 when an anchor has several positives):
for anchor ``i`` with positives ``P(i)``,
``L_i = -1/|P(i)| * sum_{p in P(i)} log( exp(s_ip / t) / sum_{a != i} exp(s_ia / t) )``
with cosine similarities ``s``; the loss is the mean over anchors that have a positive.
MONAI and Lightning have no loss of this form (MONAI's ``ContrastiveLoss`` takes exactly one
positive per anchor, and no partition or position rule), so it is written here.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

CONTRASTIVE = ("simclr", "gcl", "pcl")


def multi_positive_nt_xent(z: torch.Tensor, positives: torch.Tensor,
                           temperature: float = 0.1) -> torch.Tensor:
    """Multi-positive NT-Xent of embeddings ``z`` (M, D) (normalised here) and a boolean
    positive mask (M, M) whose diagonal is ignored. Anchors without a positive do not count;
    ``0`` (with gradient) when none has one."""
    z = F.normalize(z.float(), dim=1)
    m = z.shape[0]
    eye = torch.eye(m, dtype=torch.bool, device=z.device)
    logits = (z @ z.t()) / float(temperature)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = positives.to(torch.bool) & ~eye
    n_pos = pos.sum(dim=1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1)[has] / n_pos[has])
    return per_anchor.mean()


def positive_mask(method: str, pair_id: torch.Tensor, position: torch.Tensor,
                  has_position: torch.Tensor, partitions: int = 4,
                  threshold: float = 0.1) -> torch.Tensor:
    """Boolean (M, M) positives of ``method`` for M embeddings.

    Args:
        pair_id: (M,) the source image of each embedding (its two views share one id).
        position: (M,) relative slice location in [0, 1] (0 base, 1 apex).
        has_position: (M,) whether the location is known (a stack of two or more slices);
            without it an embedding's only positive is its other view.
        partitions: ``gcl``: partitions per stack.
        threshold: ``pcl``: largest location difference of a positive pair.
    """
    same = pair_id[:, None] == pair_id[None, :]
    if method == "simclr":
        return same
    known = has_position.to(torch.bool)
    both = known[:, None] & known[None, :]
    if method == "gcl":
        part = torch.clamp((position * partitions).floor().long(), 0, partitions - 1)
        return same | (both & (part[:, None] == part[None, :]))
    if method == "pcl":
        close = (position[:, None] - position[None, :]).abs() < threshold
        return same | (both & close)
    raise ValueError(f"unknown contrastive method {method!r}; known: {', '.join(CONTRASTIVE)}")


def gather_across_processes(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(concatenation over processes of x, this process's rank)``; the local part keeps its
    gradient, the other parts are constants. Without a process group: ``(x, 0)``.

    Every process computes the same global loss from the gathered embeddings, so the gradient
    each one gets for its own embeddings is that loss's exact partial derivative; DDP then
    averages the parameter gradients, hence callers multiply the loss by the world size
    (:func:`world_size`) to get the gradient of the global loss.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    rank = dist.get_rank()
    parts[rank] = x
    return torch.cat(parts, dim=0), rank


def world_size() -> int:
    """Processes in the default group (1 without one)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1
