"""The training state, <work_dir>/checkpoint.pt: what an interrupted run resumes from, bit for bit, and the identity of
its experiment, so that a run never goes on with another's state."""
import hashlib
import os
from dataclasses import dataclass, field

from engine.rng import rng_state, set_rng_state
from engine.weights import BEST_WEIGHTS, epoch_and_step_from_name
from lstbase.files import copy_file, plain, save_torch
from lstbase.safe_load import load_torch

STATE_FILE = 'checkpoint.pt'
# The arguments that define an experiment: a resumed run must have the same (num_epoch may grow).
EXPERIMENT_KEYS = ('model', 'model_args', 'feeder', 'train_feeder_args', 'test_feeder_args', 'base_lr', 'step',
                   'lr_decay_rate', 'warm_up_epoch', 'weight_decay', 'optimizer', 'nesterov', 'batch_size',
                   'loss_alpha', 'te_lr_ratio', 'seed', 'text_dir', 'text_weights', 'dataset', 'part_text', 'classes',
                   'unseen_classes', 'held_out', 'init_classifier')


@dataclass
class Progress:
    """How far training has come: with the weights, the optimiser and the random states, what a resumed run needs."""
    global_step: int = 0
    best_acc: float = 0.0
    best_acc_epoch: int = 0
    best_weights_file: str = None          # runs-<best epoch>-<step>.pt, named when it was saved
    history: list = field(default_factory=list)


def experiment(arg, train_set):
    """What defines a run's experiment: the settings of EXPERIMENT_KEYS and the training data's identity."""
    settings = {k: vars(arg).get(k) for k in EXPERIMENT_KEYS}
    names = '\n'.join(str(n) for n in getattr(train_set, 'sample_name', []))
    settings['train_samples'] = len(train_set)
    settings['train_names_sha1'] = hashlib.sha1(names.encode()).hexdigest()
    return plain(settings)


def without_paths(settings):
    """Experiment settings without file locations: moved data (same sample names) or a moved checkout may resume."""
    settings = dict(settings)
    for key in ('train_feeder_args', 'test_feeder_args'):
        args = dict(settings.get(key) or {})
        args.pop('root', None)
        if str(args.get('data_path', '')).endswith(('.npz', '.npy')):
            args.pop('data_path')
        settings[key] = args
    for key in ('text_dir', 'text_weights'):
        if settings.get(key):
            settings[key] = os.path.basename(os.path.normpath(settings[key]))
    return settings


def check_same_experiment(saved, current, path):
    if saved is None:                                                # a checkpoint from an earlier version
        return
    saved, current = without_paths(saved), without_paths(current)
    # a setting an earlier version did not record (e.g. dataset) is not a difference
    changed = [k for k in sorted(saved) if saved[k] != current.get(k)]
    if changed:
        detail = '; '.join(f'{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now' for k in changed)
        raise ValueError(f'{path} belongs to another experiment ({detail}). Start afresh with --resume no, '
                         f'or use another --work-dir')


def best_weights_path(work_dir, progress):
    """The best epoch's weights file (runs-<best epoch>-<step>.pt) in `work_dir`, or None."""
    if progress.best_weights_file:
        path = os.path.join(work_dir, progress.best_weights_file)
        return path if os.path.exists(path) else None
    prefix = f'runs-{progress.best_acc_epoch}-'                       # a state of an earlier version
    steps = {n: epoch_and_step_from_name(n)[1] for n in os.listdir(work_dir)
             if n.startswith(prefix) and n.endswith('.pt')}
    return os.path.join(work_dir, max(steps, key=steps.get)) if steps else None


class Checkpoint:
    """Saves a run's training state after every epoch and resumes from it (--resume): the model, the optimiser, the
    AMP scaler, the objective's own text encoder (--te-lr-ratio > 0), the progress and every random state."""

    def __init__(self, arg, model, optimizer, scaler, criterion, generators, train_set, log, is_main):
        self.arg, self.model, self.optimizer, self.scaler = arg, model, optimizer, scaler
        self.text_encoder = criterion.text_encoder
        self.generators, self.log, self.is_main = generators, log, is_main
        self.experiment = experiment(arg, train_set)

    def save(self, epoch, progress):
        state = dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                     scaler=self.scaler.state_dict(), epoch=epoch, global_step=progress.global_step,
                     best_acc=progress.best_acc, best_acc_epoch=progress.best_acc_epoch, history=progress.history,
                     best_weights=progress.best_weights_file, rng=rng_state(self.generators),
                     experiment=self.experiment)
        if self.text_encoder is not None:
            state['text_encoder'] = self.text_encoder.state_dict()
        save_torch(state, os.path.join(self.arg.work_dir, STATE_FILE))

    def resume(self, progress):
        """Continue an interrupted run: (the first epoch to train, the progress); `progress` and --start-epoch when
        there is nothing to resume."""
        choice = str(self.arg.resume)
        path = os.path.join(self.arg.work_dir, STATE_FILE) if choice == 'auto' else choice
        if choice.lower() in ('no', 'false', 'none', '0') or (choice == 'auto' and not os.path.exists(path)):
            return self.arg.start_epoch, progress
        if not os.path.exists(path):
            raise FileNotFoundError(f'--resume {path}: no such training state')
        state = load_torch(path, 'training state')
        if not (isinstance(state, dict) and {'model', 'optimizer', 'epoch'} <= set(state)):
            raise ValueError(f'--resume {path}: not a training state ({STATE_FILE}); weights files such as '
                             f'runs-<epoch>-<step>.pt start a run with --weights instead')
        check_same_experiment(state.get('experiment'), self.experiment, path)
        if state['epoch'] > self.arg.num_epoch:               # it would rewrite the run's results as if it had ended there
            raise ValueError(f'{path} has trained {state["epoch"]} epochs, past --num-epoch {self.arg.num_epoch}: give '
                             f'--num-epoch {state["epoch"]} or more to continue the run, or --resume no to start afresh')
        self.load(state)
        progress = Progress(state['global_step'], state['best_acc'], state['best_acc_epoch'],
                            state.get('best_weights'), state['history'])
        self.bring_best_weights(os.path.dirname(os.path.abspath(path)), progress.best_weights_file)
        self.log(f'Resumed from {path} after epoch {state["epoch"]} (best {progress.best_acc:.4f} at epoch '
                 f'{progress.best_acc_epoch}).')
        if state['epoch'] == self.arg.num_epoch:
            self.log(f'The run has trained its {state["epoch"]} epochs already: nothing to train; its best epoch is '
                     f'tested again and its results written anew.')
        return state['epoch'], progress

    def load(self, state):
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        if state['scaler']:                                          # empty when saved without AMP (on a CPU)
            self.scaler.load_state_dict(state['scaler'])
        if self.text_encoder is not None and 'text_encoder' in state:
            self.text_encoder.load_state_dict(state['text_encoder'])
        set_rng_state(state['rng'], self.generators)

    def bring_best_weights(self, source, name):
        """Resumed from another folder's state: its best epoch's weights come along, so that the run ends with that
        epoch's scores and best.pt even when no later epoch beats it."""
        here = os.path.abspath(self.arg.work_dir)
        if not name or source == here or os.path.exists(os.path.join(here, name)) \
                or not os.path.exists(os.path.join(source, name)):
            return
        if self.is_main:
            for target in (name, BEST_WEIGHTS):
                copy_file(os.path.join(source, name), os.path.join(here, target))
            self.log(f'Copied the best epoch\'s weights {name} from {source} (also as {BEST_WEIGHTS}).')
