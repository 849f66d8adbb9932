"""What a run leaves in its work dir: weights, training state, score files, per-class accuracy, figures.
Every file is written to a temporary name first and renamed, so an interruption never leaves half a file."""
import csv
import io
import os
import pickle
import tempfile

import numpy as np
import torch


def atomic_write(path, write, mode='wb'):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile(mode, dir=directory, suffix='.tmp', delete=False) as f:
        write(f)
    os.replace(f.name, path)


def save_torch(obj, path):
    atomic_write(path, lambda f: torch.save(obj, f))


def save_pickle(obj, path):
    atomic_write(path, lambda f: pickle.dump(obj, f))


def save_class_accuracy(path, confusion):
    """The release's CSV: one row of per-class accuracies, then the confusion matrix."""
    with np.errstate(invalid='ignore', divide='ignore'):
        accuracy = np.diag(confusion) / confusion.sum(1)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(accuracy)
    writer.writerows(confusion)
    atomic_write(path, lambda f: f.write(buffer.getvalue()), mode='w')


def _figure():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_confusion_png(path, confusion, class_names=None):
    plt = _figure()
    n = len(confusion)
    size = min(4 + n * 0.18, 30)
    fig, ax = plt.subplots(figsize=(size, size))
    with np.errstate(invalid='ignore', divide='ignore'):
        rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    image = ax.imshow(rates, cmap='Blues', vmin=0, vmax=1)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    if class_names is not None and n <= 60:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=6)
        ax.set_yticks(range(n), class_names, fontsize=6)
    ax.set_title(f'confusion (row-normalised), top-1 {np.trace(confusion) / max(confusion.sum(), 1):.2%}')
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=100))
    plt.close(fig)


def save_curves_png(path, history):
    """Training curves from the per-epoch history (train loss/acc, val loss/acc, lr)."""
    plt = _figure()
    epochs = [h['epoch'] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h['train_loss'] for h in history], label='train')
    ax_loss.plot(epochs, [h['val_loss'] for h in history], label='val')
    ax_loss.set_xlabel('epoch')
    ax_loss.set_ylabel('loss')
    ax_loss.legend()
    ax_acc.plot(epochs, [100 * h['train_acc'] for h in history], label='train')
    ax_acc.plot(epochs, [100 * h['val_acc'] for h in history], label='val top-1')
    ax_acc.set_xlabel('epoch')
    ax_acc.set_ylabel('accuracy (%)')
    ax_acc.legend()
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=100))
    plt.close(fig)
