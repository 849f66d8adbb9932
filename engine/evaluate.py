"""The test split through the model's inference pass (`model.logits`, as tools/predict.py runs it): scores, loss and
top-k accuracy, logged."""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from tqdm import tqdm


@dataclass
class Evaluation:
    epoch: int
    scores: np.ndarray                 # test samples x classes
    labels: np.ndarray
    names: list                        # the test samples' names, in the order of the scores
    loss: float                        # mean cross-entropy
    accuracy: float                    # top-1

    @property
    def predictions(self):
        return self.scores.argmax(1)

    def confusion(self):
        return confusion_matrix(self.labels, self.predictions, labels=np.arange(self.scores.shape[1]))


@torch.no_grad()
def evaluate(model, loader, device, use_amp, epoch, show_topk, log):
    """Top-k of `model` on the test `loader`. Under DDP the main process evaluates alone, so `model` is never the
    DDP wrapper (whose forward would wait for the other processes)."""
    model.eval()
    log(f'Eval epoch: {epoch}')
    dataset = loader.dataset
    scores, losses = [], []
    for data, label, _ in tqdm(loader, ncols=80, desc='eval', leave=False):
        data = data.to(device, non_blocking=True).float()
        label = label.to(device).long()
        with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
            logits = model.logits(data)
        logits = logits.float()
        losses.append(F.cross_entropy(logits, label, reduction='sum').item())
        scores.append(logits.cpu().numpy())
    score = np.concatenate(scores)
    check_finite(score, dataset, epoch)
    loss = sum(losses) / len(score)
    log(f'\tMean test loss of {len(loader)} batches: {loss:.4f}.')
    for k in show_topk:
        log(f'\tTop{k}: {100 * dataset.top_k(score, k):.2f}%')
    return Evaluation(epoch, score, np.asarray(dataset.label)[:len(score)], [str(n) for n in dataset.sample_name],
                      loss, dataset.top_k(score, 1))


def check_finite(score, dataset, epoch):
    """The argmax of NaN is class 0: an accuracy, but a false one."""
    bad = np.flatnonzero(~np.isfinite(score).all(axis=1))
    if len(bad):
        names = [str(dataset.sample_name[i]) for i in bad[:3]]
        raise ValueError(f'eval epoch {epoch}: the model gives non-finite scores (NaN or Inf) for {len(bad)} of '
                         f'{len(score)} test samples (e.g. {", ".join(names)})')
