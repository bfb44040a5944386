"""Semi-supervised segmentation fine-tuning: the labelled loss of
:class:`~planessl.tasks.segmentation.SegmentationTask` plus a loss on unlabelled images.

Both start with ``semi.supervised_steps`` steps on the labelled batch alone (BCP's
supervised pre-training stage; FixMatch's pseudo-labels of an untrained network are noise),
then add the unlabelled loss with the weight w(t).

``fixmatch`` (weak-to-strong consistency, FixMatch / UniMatch style): the network's own
prediction on the weak view of an unlabelled image (no gradient), kept where its confidence
(max softmax probability) reaches ``semi.threshold``, is the target of (a) the strong view
(intensity perturbations + CutMix, see :mod:`planessl.data.semi_batches`) and (b) UniMatch's
feature perturbation: the weak view's encoder features of every level through channel
dropout (``semi.feature_dropout``) before the decoder. Loss on each: Dice over the confident
pixels of the batch (MONAI ``MaskedDiceLoss``, squared probabilities in the denominator,
foreground structures; UniMatch's ACDC
recipe uses Dice alone on unlabelled images), times ``finetune.lambda_dice``; total =
labelled + w(t) x mean of (a) and (b).

``bcp`` (Bidirectional Copy-Paste, Bai et al., CVPR 2023): a mean teacher, a copy of the
student at the end of the supervised stage, then its EMA (decay
``min(1 - 1/(k + 1), semi.ema_decay)`` after the k-th optimiser step since), labels the
unlabelled images (argmax). A box of a labelled image (side ``semi.crop``) is pasted into
each unlabelled image, and a box of an unlabelled image into each labelled one; the student
is supervised on both mixed images by the true labels on their labelled parts (weight 1)
and the teacher's pseudo-labels on their unlabelled parts (weight w(t)), Dice +
cross-entropy per part, each averaged over its part (BCP's ``mix_loss``). BCP's
largest-component filtering of the pseudo-labels is not done.

w(t) = ``semi.weight`` x exp(-5 (1 - t)^2), t = (step - ``semi.supervised_steps``) /
``semi.rampup_steps`` (then 1).
Every random draw of a step (feature dropout included) is seeded by ``(seed, step, rank)``,
the teacher is part of the module's state and the checkpoint records the unlabelled stream
position, so a resumed run repeats an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
from typing import Iterable

import torch
import torch.nn.functional as F

from planessl.errors import PlaneSSLError
from planessl.tasks.segmentation import SegmentationNet, SegmentationTask
from planessl.tasks.semi_config import SemiConfig

#: Default ``semi.weight`` of each method (UniMatch weighs its unlabelled terms like the
#: labelled one; BCP's ``u_weight`` is 0.5).
DEFAULT_WEIGHT = {"fixmatch": 1.0, "bcp": 0.5}


def rampup(step: int, rampup_steps: int) -> float:
    """Laine & Aila's sigmoid ramp-up ``exp(-5 (1 - t)^2)``, ``t = step / rampup_steps``
    clipped to [0, 1]; 1 when ``rampup_steps`` is 0."""
    if rampup_steps <= 0:
        return 1.0
    t = min(1.0, max(0.0, step / rampup_steps))
    return math.exp(-5.0 * (1.0 - t) ** 2)


def region_ce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over the pixels where ``mask`` (B, 1, H, W) is 1."""
    ce = F.cross_entropy(logits.float(), target[:, 0], reduction="none")
    m = mask[:, 0].float()
    return (ce * m).sum() / m.sum().clamp(min=1.0)


class SemiSegmentationTask(SegmentationTask):
    """Segmentation fine-tuning with unlabelled images (see the module docstring).

    Args:
        net: the student network (its weights already transferred).
        transferred: backbone keys loaded from a pretrained run.
        method: ``fixmatch`` or ``bcp``.
        semi: the ``semi.*`` settings.
        seed: the run's seed (feature dropout draws).
        stream: what the checkpoint records about the unlabelled images: ``count`` and
            ``digest`` (of the studies used), ``batch_size``; checked on resume.
        step_sampler: the :class:`planessl.data.semi_batches.StepSampler` of the training
            loader; its first step is set at every epoch start.
        **kwargs: :class:`SegmentationTask`'s optimiser and loss weights.
    """

    def __init__(self, net: SegmentationNet, transferred: Iterable[str] = (), method: str = "fixmatch",
                 semi: SemiConfig | None = None, seed: int = 0, stream: dict | None = None,
                 step_sampler=None, **kwargs) -> None:
        super().__init__(net, transferred, **kwargs)
        from monai.losses import MaskedDiceLoss

        self.method, self.semi, self.seed = method, semi or SemiConfig(), int(seed)
        self.weight = (DEFAULT_WEIGHT[method] if getattr(self.semi, "weight", None) is None
                       else float(self.semi.weight))
        self.stream = dict(stream or {})
        self.lambda_ce = float(kwargs.get("lambda_ce", 1.0))
        self.lambda_dice = float(kwargs.get("lambda_dice", 1.0))
        # Dice over the pixels of the whole batch together, with squared probabilities in the
        # denominator (as the Dice of UniMatch's and BCP's code): with plain sums, a structure
        # absent from the masked pixels gets a gradient ~ smooth / (sum p)^2 that explodes as
        # its probabilities there approach 0 (fixmatch collapsed on phantoms that way)
        self.masked_dice = MaskedDiceLoss(include_background=False, softmax=True, to_onehot_y=True,
                                          batch=True, squared_pred=True)
        self._position = 0
        self.step_sampler = step_sampler
        if method == "bcp":
            self.teacher = copy.deepcopy(net)
            for p in self.teacher.parameters():
                p.requires_grad_(False)

    # ------------------------------------------------------------------ losses
    def region_loss(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                    ce: bool = True) -> torch.Tensor:
        """``lambda_ce`` x :func:`region_ce` (when ``ce``) + ``lambda_dice`` x Dice over the
        masked pixels."""
        loss = logits.new_zeros((), dtype=torch.float32)
        if self.lambda_ce and ce:
            loss = loss + self.lambda_ce * region_ce(logits, target, mask)
        if self.lambda_dice:
            loss = loss + self.lambda_dice * self.masked_dice(logits.float(), target, mask=mask.float())
        return loss

    def unlabelled_weight(self) -> float:
        """w(t): 0 during the supervised stage, then the ramp-up to ``semi.weight``."""
        since = int(self.global_step) - int(self.semi.supervised_steps)
        return 0.0 if since < 0 else self.weight * rampup(since, int(self.semi.rampup_steps))

    def _generator(self, salt: int) -> torch.Generator:
        return torch.Generator().manual_seed(
            (self.seed * 1_000_003 + int(self.global_step) * 7_919 + self.global_rank * 104_729
             + salt) % (2**63 - 1))

    def _feature_dropout(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Channel dropout (``Dropout2d``) of every feature level with a per-step seeded
        generator (torch's ``Dropout2d`` draws from the global generator, which a resumed
        run does not restore)."""
        p = float(self.semi.feature_dropout)
        gen = self._generator(17)
        out = []
        for f in feats:
            keep = torch.bernoulli(torch.full(f.shape[:2] + (1, 1), 1.0 - p), generator=gen)
            out.append(f * (keep / (1.0 - p)).to(device=f.device, dtype=f.dtype))
        return out

    # ------------------------------------------------------------------ training
    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if int(batch["step"]) != int(self.global_step):  # batches are keyed by the step
            raise RuntimeError(f"semi-supervised batch of step {int(batch['step'])} at step "
                               f"{int(self.global_step)}: the step sampler is out of step")
        n = batch["image"].shape[0]
        w = self.unlabelled_weight()
        self._position = int(batch["position"])
        if int(self.global_step) < int(self.semi.supervised_steps):
            # the supervised stage (BCP's pre-training): the labelled batch alone
            loss = self.loss(self(batch["image"]), batch["label"])
            self.log("train_loss", loss, prog_bar=True, batch_size=n)
            self.log("train_sup_loss", loss, batch_size=n)
            self.log("train_unsup_weight", 0.0, batch_size=n)
            return loss
        if self.method == "bcp" and int(self.global_step) == int(self.semi.supervised_steps):
            self.teacher.load_state_dict(self.net.state_dict())  # the teacher starts here
        if self.method == "fixmatch":
            sup, unsup, extra = self._fixmatch(batch)
        else:
            sup, unsup, extra = self._bcp(batch)
        loss = sup + w * unsup
        self.log("train_loss", loss, prog_bar=True, batch_size=n)
        self.log("train_sup_loss", sup, batch_size=n)
        self.log("train_unsup_loss", unsup, batch_size=n)
        self.log("train_unsup_weight", w, batch_size=n)
        for key, value in extra.items():
            self.log(key, value, batch_size=n)
        return loss

    def _fixmatch(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        net = self.net
        x, y = batch["image"], batch["label"]
        n = x.shape[0]
        feats = net.backbone.encoder(torch.cat([x, batch["u_weak"]]))
        logits = net.head(net.backbone.decoder(feats))
        sup = self.loss(logits[:n], y)
        with torch.no_grad():
            prob = logits[n:].detach().float().softmax(1)
            conf, pseudo = prob.max(1, keepdim=True)
        confident = (conf >= self.semi.threshold).float()
        # the strong view's CutMix box holds the next image: its pseudo-label and confidence
        box = batch["u_box"] > 0
        pseudo_s = torch.where(box, pseudo.roll(-1, 0), pseudo)
        confident_s = torch.where(box, confident.roll(-1, 0), confident)
        strong = self.region_loss(net(batch["u_strong"]), pseudo_s, confident_s, ce=False)
        if self.semi.feature_dropout > 0:
            perturbed = [f[n:] for f in feats]
            fp_logits = net.head(net.backbone.decoder(self._feature_dropout(perturbed)))
            fp = self.region_loss(fp_logits, pseudo, confident, ce=False)
            unsup = 0.5 * (strong + fp)
        else:
            unsup = strong
        return sup, unsup, {"train_confident": confident.mean()}

    def _bcp(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        x, y, u = batch["image"], batch["label"], batch["u_weak"]
        n_l, n_u = x.shape[0], u.shape[0]
        with torch.no_grad():
            self.teacher.eval()
            pseudo = self.teacher(u).float().argmax(1, keepdim=True)
        lab_for_u = torch.arange(n_u, device=u.device) % n_l       # labelled crop into u[k]
        unl_for_l = (torch.arange(n_l, device=u.device) + 1) % n_u  # unlabelled crop into x[k]
        bu, bl = batch["u_box"] > 0, batch["l_box"] > 0
        mixed_u = torch.where(bu, x[lab_for_u], u)
        target_u = torch.where(bu, y[lab_for_u], pseudo)
        mixed_l = torch.where(bl, u[unl_for_l], x)
        target_l = torch.where(bl, pseudo[unl_for_l], y)
        logits = self.net(torch.cat([mixed_u, mixed_l]))
        out_u, out_l = logits[:n_u], logits[n_u:]
        bu, bl = bu.float(), bl.float()
        sup = self.region_loss(out_u, target_u, bu) + self.region_loss(out_l, target_l, 1 - bl)
        unsup = self.region_loss(out_u, target_u, 1 - bu) + self.region_loss(out_l, target_l, bl)
        return sup, unsup, {}

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.method != "bcp":
            return
        # global_step has already counted this step's optimiser step; the teacher was
        # reset to the student at the first step after the supervised stage
        since = int(self.global_step) - int(self.semi.supervised_steps)
        if since <= 0:
            return
        decay = min(1.0 - 1.0 / (since + 1), float(self.semi.ema_decay))
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.net.parameters()):
                t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
            for t, s in zip(self.teacher.buffers(), self.net.buffers()):
                t.copy_(s)

    def on_train_epoch_start(self) -> None:
        # the batches of this epoch are those of the steps from the current global step
        if self.step_sampler is not None:
            self.step_sampler.start = int(self.global_step)

    # ------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["semi"] = {"method": self.method, "unlabelled_position": self._position,
                              "world_size": int(self.trainer.world_size), **self.stream}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse a checkpoint of another method, unlabelled set, batch size or number of
        processes, and check that its unlabelled stream position is the one its step
        implies (:func:`planessl.data.semi_batches.unlabelled_position`)."""
        from planessl.data.semi_batches import unlabelled_position

        saved = checkpoint.get("semi")
        if saved is None:
            raise PlaneSSLError(f"the checkpoint is not of a semi-supervised run "
                                f"(finetune.semi={self.method} now)")
        now = {"method": self.method, "world_size": int(self.trainer.world_size), **self.stream}
        for key in ("method", "digest", "count", "batch_size", "world_size"):
            if key in saved and key in now and saved[key] != now[key]:
                raise PlaneSSLError(f"the checkpoint was made with another semi-supervised "
                                    f"setting ({key}: {saved[key]!r}, now {now[key]!r}); "
                                    f"resume with the same settings and processes")
        step = int(checkpoint.get("global_step", 0))
        expected = unlabelled_position(step, 0, now["world_size"], int(now.get("batch_size", 0)))
        if step > 0 and int(saved.get("unlabelled_position", -1)) != expected:
            raise PlaneSSLError(f"the checkpoint's unlabelled stream position "
                                f"{saved.get('unlabelled_position')} does not match its step "
                                f"{step} (expected {expected})")
        self._position = int(saved.get("unlabelled_position", 0))
