"""What a run leaves in its work dir: weights, training state, score files, per-class accuracy, predictions, figures.

Every file is written whole (lstbase.files).
"""
import csv
import io

import numpy as np

from lstbase.figures import pyplot, save_png
from lstbase.files import atomic_write, plain, save_torch

WEIGHTS_INFO_KEY = '__lst__'          # in a state dict's _metadata: what the weights were trained as


def modality(feeder_args):
    """The input modality a feeder's arguments give: NTU bone/vel flags or NW-UCLA's data_path."""
    keys = ('bone', 'vel', 'data_path')
    found = {k: feeder_args[k] for k in keys if k in feeder_args}
    if 'data_path' in found and str(found['data_path']).endswith(('.npz', '.npy')):
        del found['data_path']                          # an NTU file, not a modality
    return plain(found)


def save_weights(state_dict, info, path):
    """A plain state dict, as released (the release's loader reads it), with `info` in its _metadata."""
    metadata = getattr(state_dict, '_metadata', None)
    state_dict._metadata = type(metadata)(metadata) if metadata is not None else {}
    state_dict._metadata[WEIGHTS_INFO_KEY] = plain(info)
    save_torch(state_dict, path)


def weights_info(state_dict):
    """What save_weights recorded about a state dict ({} for other files)."""
    return dict(getattr(state_dict, '_metadata', None) or {}).get(WEIGHTS_INFO_KEY, {})


def save_predictions(path, names, predict, labels, wrong_only=False):
    """The released `_wrong.txt` (index,predicted,true) and `_right.txt` (predicted,true) rows, each with the
    sample's name appended."""
    rows = []
    for i, (name, p, t) in enumerate(zip(names, predict, labels)):
        if wrong_only and p == t:
            continue
        rows.append(f'{i},{p},{t},{name}\n' if wrong_only else f'{p},{t},{name}\n')
    atomic_write(path, lambda f: f.writelines(rows), mode='w')


def save_class_accuracy(path, confusion, class_names=None):
    """Per class: index, name, samples, accuracy, then its confusion-matrix row (predicted counts)."""
    n = len(confusion)
    names = class_names or [''] * n
    with np.errstate(invalid='ignore', divide='ignore'):
        accuracy = np.diag(confusion) / confusion.sum(1)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(['class', 'name', 'samples', 'accuracy'] + [f'predicted_{j}' for j in range(n)])
    for i in range(n):
        writer.writerow([i, names[i], int(confusion[i].sum()), f'{accuracy[i]:.4f}'] + confusion[i].tolist())
    atomic_write(path, lambda f: f.write(buffer.getvalue()), mode='w')


def save_confusion_png(path, confusion, class_names=None, title=''):
    """Row-normalised confusion matrix; class names on both axes (the figure grows with the class count)."""
    plt = pyplot()
    n = len(confusion)
    size = 4 + n * 0.2
    fig, ax = plt.subplots(figsize=(size, size))
    with np.errstate(invalid='ignore', divide='ignore'):
        rates = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    image = ax.imshow(rates, cmap='Blues', vmin=0, vmax=1)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    labels = class_names or [str(i) for i in range(n)]
    ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    top1 = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f'{title}: top-1 {top1:.2%} (rows normalised)' if title else f'top-1 {top1:.2%}')
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_png(fig, path)


def save_curves_png(path, history, title=''):
    """Training curves from the per-epoch history (train/val loss and accuracy); markers show single epochs."""
    plt = pyplot()
    epochs = [h['epoch'] for h in history]
    marker = 'o' if len(epochs) <= 30 else None
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h['train_loss'] for h in history], marker=marker, label='train')
    ax_loss.plot(epochs, [h['val_loss'] for h in history], marker=marker, label='val')
    ax_loss.set_ylabel('loss')
    ax_acc.plot(epochs, [100 * h['train_acc'] for h in history], marker=marker, label='train')
    ax_acc.plot(epochs, [100 * h['val_acc'] for h in history], marker=marker, label='val top-1')
    ax_acc.set_ylabel('accuracy (%)')
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel('epoch')
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        ax.legend()
    fig.suptitle(f'{title}: epoch {epochs[-1]}' if title else f'epoch {epochs[-1]}')
    fig.tight_layout()
    save_png(fig, path)
