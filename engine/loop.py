"""One training epoch: batches through the network and the model's objective, the optimiser's steps, the curves."""
import math
import time

import numpy as np
import torch
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from engine import distributed as dist
from engine.optim import adjust_learning_rate
from engine.rng import seed_epoch


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss); the message says where and what to do."""


class EpochLoop:
    """Trains `net` (the model, or its DDP / DataParallel wrapper) on the training loader for one epoch at a time.
    `criterion` is the model's objective: `loss, logits, terms = criterion(net(data), labels)` whatever the model."""

    def __init__(self, arg, net, criterion, optimizer, scaler, loader, device, use_amp, shuffle, writer, log, is_main):
        self.arg, self.net, self.criterion, self.optimizer, self.scaler = arg, net, criterion, optimizer, scaler
        self.loader, self.device, self.use_amp, self.shuffle = loader, device, use_amp, shuffle
        self.writer, self.log, self.is_main = writer, log, is_main         # the main process alone writes curves
        self.normalisations = [(name, module) for name, module in net.named_modules()
                               if isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
                               and module.running_var is not None]

    def run(self, epoch, progress):
        """Train epoch `epoch` (0-based), counting steps in `progress`; (mean loss, mean accuracy, {term: mean}) over
        processes, the terms being the objective's parts (cross-entropy, LST's language loss)."""
        self.net.train()
        self.criterion.train()
        self.log(f'Training epoch: {epoch + 1}')
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(epoch)
        batch_transform = getattr(self.loader.dataset, 'batch_transform', None)
        lr = adjust_learning_rate(self.optimizer, self.arg, epoch)
        losses, accs, terms = [], [], []
        timer = dict(dataloader=1e-3, model=1e-3)
        tick = time.time()
        seed_epoch(self.shuffle, self.arg.seed, epoch)
        bar = tqdm(self.loader, ncols=80, desc=f'epoch {epoch + 1}', disable=not self.is_main, leave=False)
        for batch, (data, label, _) in enumerate(bar, start=1):
            progress.global_step += 1
            data = data.to(self.device, non_blocking=True).float()
            label = label.to(self.device, non_blocking=True).long()
            if batch_transform is not None:
                data = batch_transform(data)
            timer['dataloader'] += time.time() - tick
            tick = time.time()
            loss_value, acc, parts = self.step(data, label, f'epoch {epoch + 1}, batch {batch} (step '
                                                            f'{progress.global_step}), lr {lr:g}')
            losses.append(loss_value)
            accs.append(acc)
            terms.append(parts)
            timer['model'] += time.time() - tick
            if self.is_main:
                bar.set_postfix(loss=f'{loss_value:.3f}', acc=f'{acc:.2f}')
                if progress.global_step % self.arg.log_interval == 0 or len(losses) == 1:
                    for name, value in (('acc', acc), ('loss', loss_value), ('lr', lr)):
                        self.writer.add_scalar(name, value, progress.global_step)
            tick = time.time()
        return self.summary(losses, accs, terms, timer)

    def step(self, data, label, where):
        """One optimiser step on a batch: (its loss, its accuracy, {term: value} of the loss's parts)."""
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            loss, logits, terms = self.criterion(self.net(data), label)
        loss_value = loss.item()
        if not math.isfinite(loss_value):
            raise TrainingError(f'the loss is {loss_value} at {where}: training stopped before saving anything of '
                                f'this epoch; lower base_lr or check the data for NaN/Inf')
        self.check_statistics(where)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values = torch.stack(list(terms.values())).float().tolist()           # one transfer from the device
        return loss_value, (logits.argmax(1) == label).float().mean().item(), dict(zip(terms, values))

    def check_statistics(self, where):
        """BatchNorm's running statistics must stay finite: values whose squares overflow float32 make them Inf while
        the loss stays finite, and the saved model then predicts one class."""
        if not self.normalisations:
            return
        finite = torch.stack([torch.isfinite(module.running_var).all() & torch.isfinite(module.running_mean).all()
                              for _, module in self.normalisations])
        if not finite.all():
            name = self.normalisations[int(torch.argmin(finite.int()))][0]
            raise TrainingError(f'the BatchNorm statistics of {name} are not finite (Inf or NaN) at {where}: '
                                f'training stopped before saving anything of this epoch; the data holds values too '
                                f'large to square in float32 (check its range), or lower base_lr')

    def summary(self, losses, accs, terms, timer):
        mean_loss, mean_acc = float(dist.all_mean(np.mean(losses))), float(dist.all_mean(np.mean(accs)))
        mean_terms = {name: float(dist.all_mean(np.mean([t[name] for t in terms]))) for name in terms[0]}
        share = {k: f'{round(100 * v / sum(timer.values())):02d}%' for k, v in timer.items()}
        parts = ', '.join(f'{name.replace("_", " ")} {value:.4f}' for name, value in mean_terms.items())
        self.log(f'\tMean training loss: {mean_loss:.4f} ({parts}).  Mean training acc: {mean_acc * 100:.2f}%.')
        self.log(f'\tTime consumption: [Data]{share["dataloader"]}, [Network]{share["model"]}')
        return mean_loss, mean_acc, mean_terms
