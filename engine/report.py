"""What a run writes of its evaluations and its progress into its work dir: score files, the released wrong/right
files, per-class accuracy (CSV), the confusion matrix and the training curves (PNG), and metrics.json, which
scripts read back (tools/reproduce.py, tools/gpu_session.py). Every file is written whole (lstbase.files)."""
import csv
import io
import os

import numpy as np

from lstbase.figures import pyplot, save_png
from lstbase.files import UnreadableFile, read_json, save_pickle, write_json, write_text

SCORE_FILE = 'epoch1_test_score.pkl'          # the released name: the best epoch's (or the tested weights') scores
LAST_SCORE_FILE = 'last_test_score.pkl'
METRICS_FILE = 'metrics.json'
METRICS_KEYS = ('history', 'best_acc', 'best_epoch', 'num_epoch', 'finished')        # what readers rely on
CURVES_FILE, CONFUSION_FILE = 'training_curves.png', 'confusion_matrix.png'


class NoWriter:
    """What runs without tensorboardX write curves to: nothing."""

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


def summary_writer(path, log):
    """A tensorboardX writer; without tensorboardX installed, none (curves still go to metrics.json and a PNG)."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        if path.endswith('train'):
            log('tensorboardX is not installed: no tensorboard logs (metrics.json and training_curves.png are kept)')
        return NoWriter()
    return SummaryWriter(path)


def write_metrics(work_dir, progress, num_epoch, finished=False):
    """<work_dir>/metrics.json: the per-epoch history and the best epoch, for scripts."""
    write_json(os.path.join(work_dir, METRICS_FILE),
               dict(history=progress.history, best_acc=progress.best_acc, best_epoch=progress.best_acc_epoch,
                    best_weights=progress.best_weights_file, num_epoch=num_epoch, finished=finished))


def read_metrics(work_dir):
    """A run's metrics.json; None when it has none. One cut short or without what write_metrics puts in it raises
    UnreadableFile."""
    path = os.path.join(work_dir, METRICS_FILE)
    if not os.path.exists(path):
        return None
    metrics = read_json(path, METRICS_KEYS)
    history = metrics['history']
    if not isinstance(history, list) or not all(isinstance(h, dict) and 'val_acc' in h for h in history):
        raise UnreadableFile(f'{path}: partial: expected a history of epochs, each with its val_acc')
    return metrics


def save_predictions(path, names, predict, labels, wrong_only=False):
    """The released `_wrong.txt` (index,predicted,true) and `_right.txt` (predicted,true) rows, each with the
    sample's name appended."""
    rows = []
    for i, (name, p, t) in enumerate(zip(names, predict, labels)):
        if wrong_only and p == t:
            continue
        rows.append(f'{i},{p},{t},{name}\n' if wrong_only else f'{p},{t},{name}\n')
    write_text(path, ''.join(rows))


def save_class_accuracy(path, confusion, class_names):
    """Per class: index, name, samples, accuracy, then its confusion-matrix row (predicted counts)."""
    n = len(confusion)
    with np.errstate(invalid='ignore', divide='ignore'):
        accuracy = np.diag(confusion) / confusion.sum(1)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(['class', 'name', 'samples', 'accuracy'] + [f'predicted_{j}' for j in range(n)])
    for i in range(n):
        writer.writerow([i, class_names[i], int(confusion[i].sum()), f'{accuracy[i]:.4f}'] + confusion[i].tolist())
    write_text(path, buffer.getvalue())


def save_confusion_png(path, confusion, class_names, title=''):
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
    ax.set_xticks(range(n), class_names, rotation=90, fontsize=7)
    ax.set_yticks(range(n), class_names, fontsize=7)
    top1 = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f'{title}: top-1 {top1:.2%} (rows normalised)' if title else f'top-1 {top1:.2%}')
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    save_png(fig, path)


def save_curves_png(path, history, title=''):
    """Training curves from the per-epoch history, like with like: the training cross-entropy beside the validation
    cross-entropy, LST's language loss on an axis of its own, the accuracies; markers show single epochs. (Epochs
    of a run started before the history kept the loss's parts plot their whole training loss as the cross-entropy.)"""
    plt = pyplot()
    epochs = [h['epoch'] for h in history]
    marker = 'o' if len(epochs) <= 30 else None
    language = [h['train_language_loss'] for h in history if 'train_language_loss' in h]
    fig, axes = plt.subplots(1, 3 if language else 2, figsize=(15 if language else 10, 4))
    ax_ce, ax_acc = axes[0], axes[-1]
    ax_ce.plot(epochs, [h.get('train_cross_entropy', h['train_loss']) for h in history], marker=marker, label='train')
    ax_ce.plot(epochs, [h['val_loss'] for h in history], marker=marker, label='val')
    ax_ce.set_ylabel('cross-entropy')
    if language:
        axes[1].plot([h['epoch'] for h in history if 'train_language_loss' in h], language, marker=marker,
                     label='train', color='tab:green')
        axes[1].set_ylabel('language loss (contrastive, before loss_alpha)')
    ax_acc.plot(epochs, [100 * h['train_acc'] for h in history], marker=marker, label='train')
    ax_acc.plot(epochs, [100 * h['val_acc'] for h in history], marker=marker, label='val top-1')
    ax_acc.set_ylabel('accuracy (%)')
    for ax in axes:
        ax.set_xlabel('epoch')
        if len(epochs) <= 15:
            ax.set_xticks(epochs)
        ax.legend()
    fig.suptitle(f'{title}: epoch {epochs[-1]}' if title else f'epoch {epochs[-1]}')
    fig.tight_layout()
    save_png(fig, path)


class Report:
    """One run's report files in its work dir: figures titled after it, classes named from its description set."""

    def __init__(self, work_dir, class_names):
        self.work_dir, self.class_names = work_dir, class_names
        self.title = os.path.basename(os.path.normpath(work_dir))

    def path(self, name):
        return os.path.join(self.work_dir, name)

    def evaluation(self, evaluation, score_files=(), csv_file=None, wrong_file=None, right_file=None):
        """An evaluation's files: its scores ({sample name: score vector}) into each of `score_files`, per-class
        accuracy into `csv_file`, the released wrong/right files; returns its confusion matrix."""
        names, predict, labels = evaluation.names, evaluation.predictions, evaluation.labels
        if wrong_file:
            save_predictions(wrong_file, names, predict, labels, wrong_only=True)
        if right_file:
            save_predictions(right_file, names, predict, labels)
        for path in score_files:
            save_pickle(dict(zip(names, evaluation.scores)), path)
        confusion = evaluation.confusion()
        if csv_file:
            save_class_accuracy(csv_file, confusion, self.class_names)
        return confusion

    def confusion(self, confusion, what):
        save_confusion_png(self.path(CONFUSION_FILE), confusion, self.class_names, f'{self.title}, {what}')

    def curves(self, history):
        save_curves_png(self.path(CURVES_FILE), history, self.title)

    def metrics(self, progress, num_epoch, finished=False):
        write_metrics(self.work_dir, progress, num_epoch, finished)
