"""Training batches of semi-supervised fine-tuning, one per optimiser step.

Every random choice of a batch (which labelled images, their augmentation, the views of the
unlabelled images, CutMix and copy-paste boxes) is drawn from a generator seeded by
``(seed, global step, rank)``, so a batch is a function of the step alone: a resumed run
draws exactly the batches an uninterrupted one would, and under DDP every process draws
its own. The unlabelled images are read as one stream: pass ``p`` over the unlabelled set
is a seeded permutation of it, and step ``g`` of rank ``r`` in a world of ``W`` processes
takes positions ``(g W + r) B_u ...`` of the stream (:func:`unlabelled_position`), so
every image is used once per pass.

Views of an unlabelled image (MONAI transforms of :mod:`planessl.data.augment`):

- weak: the spatial augmentation of the labelled images (rotation, zoom, shift, elastic,
  flip when enabled), no intensity change;
- strong (fixmatch): the weak view plus every intensity perturbation of ``augment.*``
  (bias field, gamma, contrast, noise, blur), each with probability ``semi.strong_prob``,
  then, with probability ``semi.cutmix_prob``, a CutMix box pasted from the next image of
  the batch (``u_box``);
- bcp: the weak view, and a copy-paste box of side ``semi.crop`` x the image per image
  (``u_box`` for the unlabelled images, ``l_box`` for the labelled ones).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from planessl.data.labelled import InMemorySegmentationDataset, transformed_item
from planessl.data.unlabelled import InMemoryUnlabelledDataset

_MAX_SEED = 2**31 - 1


def unlabelled_position(step: int, rank: int, world_size: int, batch_u: int) -> int:
    """Position in the unlabelled stream of the first image of a step's batch on a rank."""
    return (int(step) * int(world_size) + int(rank)) * int(batch_u)


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class StepSampler(Sampler):
    """Yields ``(global step, rank, world size)`` for the ``steps_per_epoch`` steps of an
    epoch, from :attr:`start` (set to the trainer's global step at the start of every
    epoch by :class:`planessl.tasks.semi.SemiSegmentationTask`; Lightning's epoch number
    is not used: after a resume from a checkpoint written at the end of an epoch Lightning
    counts one epoch more than an uninterrupted run). Rank and world size are read from
    ``torch.distributed`` when iterated."""

    def __init__(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = int(steps_per_epoch)
        self.start = 0

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self):
        rank, world = _rank_world()
        for step in range(self.start, self.start + self.steps_per_epoch):
            yield (step, rank, world)


def random_box(rng: np.random.Generator, size: int, side: float | None = None) -> np.ndarray:
    """A ``(size, size)`` float mask, 1 inside a random axis-aligned box.

    ``side``: the box side as a fraction of ``size`` (BCP's copy-paste box); ``None``: a
    CutMix box of area 2-40 % of the image and aspect ratio 0.3-3.3 (UniMatch's choice).
    Written by hand: MONAI's ``CutMix`` mixes classification labels by area, not label
    maps by box.
    """
    if side is not None:
        h = w = max(1, int(round(side * size)))
    else:
        area = rng.uniform(0.02, 0.4) * size * size
        ratio = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
        h = int(min(size, max(1, round(math.sqrt(area * ratio)))))
        w = int(min(size, max(1, round(math.sqrt(area / ratio)))))
    top = int(rng.integers(0, size - h + 1))
    left = int(rng.integers(0, size - w + 1))
    box = np.zeros((size, size), dtype=np.float32)
    box[top:top + h, left:left + w] = 1.0
    return box


class SemiBatches(Dataset):
    """The batch of a step: key ``(step, rank, world size)`` (from :class:`StepSampler`).

    Items: ``image`` (B_l, 1, H, W), ``label`` (B_l, 1, H, W) int64 (labelled, drawn with
    replacement, augmented as in supervised fine-tuning); ``u_weak`` (B_u, 1, H, W);
    fixmatch: ``u_strong`` (B_u, 1, H, W) and ``u_box`` (B_u, 1, H, W) (the CutMix box of
    each strong view, filled from the next image of the batch); bcp: ``u_box`` and
    ``l_box`` (copy-paste boxes); ``position``: the stream position after this batch;
    ``step``: the global step the batch was drawn for.

    Args:
        labelled: the labelled images (its transform is seeded per item here).
        unlabelled: the unlabelled images on the margin grid.
        weak: MONAI transform of ``{"image"}`` giving the weak view (central crop).
        strong: MONAI transform of ``{"image"}`` perturbing intensities (fixmatch).
        method: ``fixmatch`` or ``bcp``.
        batch_l, batch_u: labelled and unlabelled images per batch.
        seed: the run's seed.
        cutmix_prob: fixmatch: probability of a CutMix box per strong view.
        crop: bcp: copy-paste box side (fraction of the image side).
    """

    def __init__(self, labelled: InMemorySegmentationDataset,
                 unlabelled: InMemoryUnlabelledDataset, weak, strong, method: str,
                 batch_l: int, batch_u: int, seed: int, cutmix_prob: float = 0.5,
                 crop: float = 2 / 3) -> None:
        self.labelled, self.unlabelled = labelled, unlabelled
        self.weak, self.strong, self.method = weak, strong, method
        self.batch_l, self.batch_u, self.seed = int(batch_l), int(batch_u), int(seed)
        self.cutmix_prob, self.crop = float(cutmix_prob), float(crop)
        self.percentiles = labelled.spec.clip_percentiles
        self.size = labelled.spec.image_size
        self._perm: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:  # keys come from StepSampler; no fixed length
        return 2**62

    def stream(self, position: int, count: int) -> list[int]:
        """Unlabelled indices at ``position ... position + count - 1`` of the stream."""
        n = len(self.unlabelled)
        out = []
        for pos in range(position, position + count):
            p, offset = divmod(pos, n)
            if self._perm is None or self._perm[0] != p:
                self._perm = (p, np.random.default_rng([self.seed, p, 0x0F00]).permutation(n))
            out.append(int(self._perm[1][offset]))
        return out

    def _seeded(self, transform, rng: np.random.Generator):
        if hasattr(transform, "set_random_state"):
            transform.set_random_state(seed=int(rng.integers(_MAX_SEED)))
        return transform

    def __getitem__(self, key: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        step, rank, world = (int(k) for k in key)
        rng = np.random.default_rng([self.seed, step, rank, 0x5E41])
        images, labels = [], []
        for index in rng.integers(len(self.labelled), size=self.batch_l):
            self._seeded(self.labelled.transform, rng)
            item = self.labelled.transformed(int(index))
            images.append(item["image"])
            labels.append(item["label"])
        batch: dict[str, torch.Tensor] = {"image": torch.stack(images), "label": torch.stack(labels)}
        first = unlabelled_position(step, rank, world, self.batch_u)
        weak, strong = [], []
        for index in self.stream(first, self.batch_u):
            view = self._seeded(self.weak, rng)({"image": self.unlabelled[index]})["image"]
            view = torch.as_tensor(view).float()
            weak.append(transformed_item(_identity, view, None, self.percentiles)["image"])
            if self.method == "fixmatch":
                self._seeded(self.strong, rng)
                strong.append(transformed_item(self.strong, view.clone(), None,
                                               self.percentiles)["image"])
        batch["u_weak"] = torch.stack(weak)
        if self.method == "fixmatch":
            boxes = [random_box(rng, self.size) if rng.random() < self.cutmix_prob
                     else np.zeros((self.size, self.size), np.float32) for _ in strong]
            box = torch.from_numpy(np.stack(boxes)[:, None])
            s = torch.stack(strong)
            batch["u_strong"] = torch.where(box > 0, s.roll(-1, 0), s)
            batch["u_box"] = box
        else:
            batch["u_box"] = torch.from_numpy(np.stack(
                [random_box(rng, self.size, self.crop) for _ in range(self.batch_u)])[:, None])
            batch["l_box"] = torch.from_numpy(np.stack(
                [random_box(rng, self.size, self.crop) for _ in range(self.batch_l)])[:, None])
        batch["position"] = torch.tensor(first + self.batch_u * world)
        batch["step"] = torch.tensor(step)
        return batch


def _identity(data: dict) -> dict:
    return data
