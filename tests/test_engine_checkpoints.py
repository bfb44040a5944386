"""The trainer's checkpoints: last.ckpt follows every validation, best-*.ckpt the best one."""

import pytorch_lightning as pl
import torch

from planessl.config import TrainerConfig
from planessl.engine import CHECKPOINT_DIR, LAST_CHECKPOINT, build_trainer


class WorseningModule(pl.LightningModule):
    """A one-weight model whose validation loss grows with every validation, so only the
    first validation is ever the best."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.validations = 0

    def training_step(self, batch, batch_idx):
        return ((self.w - batch[0]) ** 2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", torch.tensor(float(self.validations)))

    def on_validation_epoch_end(self):
        self.validations += 1

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def loader(self):
        data = torch.utils.data.TensorDataset(torch.ones(4, 1))
        return torch.utils.data.DataLoader(data, batch_size=2)


def test_last_checkpoint_is_written_at_every_validation_not_only_at_the_best(tmp_path):
    cfg = TrainerConfig(max_epochs=3, accelerator="cpu", devices="1", precision="32-true",
                        progress_bar=False, threads=1, log_every_n_steps=1)
    trainer = build_trainer(cfg, tmp_path)
    module = WorseningModule()
    trainer.fit(module, module.loader(), module.loader())
    assert module.validations == 3
    last = torch.load(tmp_path / CHECKPOINT_DIR / LAST_CHECKPOINT, weights_only=False)
    assert last["global_step"] == 6 and last["epoch"] == 2  # the end, not the best (step 2)
    best = sorted((tmp_path / CHECKPOINT_DIR).glob("best-*.ckpt"))
    assert [p.name for p in best] == ["best-0-2.ckpt"]
    assert trainer.checkpoint_callback.best_model_path.endswith("best-0-2.ckpt")
    assert sorted(p.name for p in (tmp_path / CHECKPOINT_DIR).iterdir()) == [
        "best-0-2.ckpt", LAST_CHECKPOINT]
