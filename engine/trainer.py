"""The shared training and testing loop behind main.py, main_multipart_ntu.py and main_multipart_ucla.py."""
import hashlib
import math
import os
import random
import re
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from tqdm import tqdm

from engine import distributed as dist
from engine import outputs
from lstbase.files import copy_file, plain, save_pickle, save_torch, write_json
from engine.args import save_config
from lstbase.errors import check_writable
from engine.criterion import build_criterion
from lstbase.safe_load import load_torch
from text.prompts import class_names
from torchlight import import_class

STATE_FILE = 'checkpoint.pt'
METRICS_FILE = 'metrics.json'
BEST_WEIGHTS = 'best.pt'
LAST_SCORE_FILE = 'last_test_score.pkl'
SCORE_FILE = 'epoch1_test_score.pkl'            # the released name: the best epoch's (or the tested weights') scores
# The arguments that define an experiment: a resumed run must have the same (num_epoch may grow).
EXPERIMENT_KEYS = ('model', 'model_args', 'feeder', 'train_feeder_args', 'test_feeder_args', 'base_lr', 'step',
                   'lr_decay_rate', 'warm_up_epoch', 'weight_decay', 'optimizer', 'nesterov', 'batch_size',
                   'loss_alpha', 'te_lr_ratio', 'seed', 'text_dir', 'text_weights', 'dataset', 'part_text')


class TrainingError(ValueError):
    """Training cannot go on (a non-finite loss); the message says where and what to do."""


def init_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True


def strip_module(state_dict):
    return OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in state_dict.items())


def epoch_and_step_from_name(path):
    """(epoch, global step) from a released weights name `runs-<epoch>-<step>.pt`; (None, 0) for any other name."""
    match = re.search(r'-(\d+)-(\d+)\.pt$', os.path.basename(path))
    return (int(match.group(1)), int(match.group(2))) if match else (None, 0)


class _NoWriter:
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
        return _NoWriter()
    return SummaryWriter(path)


def seeded_generator(seed, stream):
    """A CPU generator of its own for one random stream of the run (shuffle, text prompts), from the run's seed."""
    return torch.Generator().manual_seed(seed * 1000 + stream)


def rng_state(generators):
    """Every random state of the run in plain types and tensors (loadable with weights_only=True)."""
    numpy_state = np.random.get_state(legacy=False)
    numpy_state['state']['key'] = numpy_state['state']['key'].tolist()
    return dict(python=random.getstate(), numpy=numpy_state, torch=torch.get_rng_state(),
                cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                generators={name: g.get_state() for name, g in generators.items()})


def set_rng_state(state, generators):
    random.setstate(state['python'])
    numpy_state = state['numpy']
    if isinstance(numpy_state, dict):
        numpy_state = dict(numpy_state, state=dict(numpy_state['state'],
                                                   key=np.asarray(numpy_state['state']['key'], dtype=np.uint32)))
    np.random.set_state(numpy_state)
    torch.set_rng_state(state['torch'])
    if state.get('cuda') and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])
    for name, value in state.get('generators', {}).items():
        generators[name].set_state(value)


PROJECT_CLASSES = {'model': (('model',), nn.Module), 'feeder': (('feeders',), torch.utils.data.Dataset)}


def build(kind, name, arguments):
    """Construct the configured model or feeder class (one of the project's: a config cannot name any callable),
    naming the class and its arguments when they do not fit."""
    packages, base = PROJECT_CLASSES[kind]
    cls = import_class(name, packages, base)
    try:
        return cls(**arguments)
    except TypeError as exc:
        raise ValueError(f'{kind} {name}: {exc} (arguments given: {", ".join(sorted(arguments)) or "none"})') from None


class Processor:
    """Trains and evaluates one model as the released `Processor` does, on CPU, one or several GPUs, or DDP."""

    def __init__(self, arg):
        self.arg = arg                                               # arg.dataset: the spec (descriptions, names)
        self.rank, self.world, self.local_rank = dist.init_from_env()
        self.is_main = self.rank == 0
        self.pending_log = []                                        # log.txt is written once the checks pass
        if self.is_main:
            check_writable(arg.work_dir, 'work dir')
        self.setup_device()
        self.global_step = 0
        self.start_epoch = arg.start_epoch
        self.best_acc, self.best_acc_epoch = 0.0, 0
        self.best_weights_file = None
        self.history = []
        # Shuffle and prompt sampling draw from generators of their own, so that runs differing in one setting
        # (e.g. loss_alpha) see the same batches in the same order, whatever else consumes random numbers.
        self.generators = dict(shuffle=seeded_generator(arg.seed, 1), text=seeded_generator(arg.seed, 2))
        self.load_model()
        self.load_data()
        if arg.phase == 'train':
            self.load_text()
            self.load_optimizer()
            self.start_epoch = self.try_resume()                     # checked before anything is written
            if self.is_main:
                self.open_log()
                save_config(arg, arg.work_dir)
                runs = os.path.join(arg.work_dir, 'runs')
                self.train_writer = summary_writer(os.path.join(runs, 'train'), self.print_log)
                self.val_writer = summary_writer(os.path.join(runs, 'val'), self.print_log)
        elif self.is_main:
            self.test_outputs = self.plan_test_outputs()
            self.open_log()
            save_config(arg, arg.work_dir, 'config_test.yaml')       # the training run's config.yaml stays
        self.wrap_model()

    # ---------------------------------------------------------------- setup
    def setup_device(self):
        if torch.cuda.is_available() and self.arg.device != ['cpu']:
            index = self.local_rank if self.world > 1 else self.arg.device[0]
            self.device = torch.device('cuda', index)
        else:
            self.device = torch.device('cpu')
            if self.arg.device not in ([0], ['cpu']):
                self.print_log(f'No CUDA device: running on the CPU (--device {self.arg.device} ignored).')
        self.use_amp = self.arg.amp and self.device.type == 'cuda'

    def load_model(self):
        self.model = build('model', self.arg.model, self.arg.model_args).to(self.device)
        self.weights_epoch = None
        if self.arg.weights:
            self.load_weights(self.arg.weights)

    def load_weights(self, path):
        """Any state dict (the release's too), or a training state's model part; warns when the weights were
        saved for another model class or model arguments."""
        weights = load_torch(path, 'weights file')
        if isinstance(weights, dict) and 'model' in weights and 'optimizer' in weights:
            self.print_log(f'{path} is a training state: loading its model part (epoch {weights.get("epoch")}).')
            weights = weights['model']
        if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
            raise ValueError(f'--weights {path}: expected a state dict (parameter name -> tensor), '
                             f'got {type(weights).__name__}')
        saved = outputs.weights_info(weights)
        self.weights_epoch, self.global_step = epoch_and_step_from_name(path)
        if saved:
            self.weights_epoch = saved.get('epoch', self.weights_epoch)
            self.global_step = saved.get('global_step', self.global_step)
            self.warn_other_model(path, saved)
        self.print_log(f'Load weights from {path}' + (f' (epoch {self.weights_epoch}).' if self.weights_epoch else '.'))
        weights = strip_module(weights)
        for pattern in self.arg.ignore_weights:
            for key in [k for k in weights if pattern in k]:
                weights.pop(key)
                self.print_log(f'Sucessfully Remove Weights: {key}.')
        try:
            missing, unexpected = self.model.load_state_dict(weights, strict=False)
        except RuntimeError as exc:
            shapes = [line.strip() for line in str(exc).splitlines() if 'size mismatch' in line]
            raise ValueError(f'--weights {path} does not fit {self.arg.model} {self.arg.model_args}: '
                             f'{shapes[0] if shapes else exc}') from None
        if missing:
            self.print_log('Can not find these weights:\n' + '\n'.join(f'  {k}' for k in missing))
        # The release goes on with those parameters at their initial values; numbers from a half-random model are
        # worse than no numbers: only the ones --ignore-weights names may start from scratch.
        unasked = [k for k in missing if not any(pattern in k for pattern in self.arg.ignore_weights)]
        if unasked:
            raise ValueError(f'--weights {path} does not fit {self.arg.model}: {len(unasked)} of its '
                             f'{len(self.model.state_dict())} parameters are not in the file ({", ".join(unasked[:3])}'
                             f'{", ..." if len(unasked) > 3 else ""}); name those to start from scratch with '
                             f'--ignore-weights')
        if unexpected:
            self.print_log('Ignored weights the model does not have:\n' + '\n'.join(f'  {k}' for k in unexpected))

    def warn_other_model(self, path, saved):
        now = dict(model=self.arg.model, model_args=plain(self.arg.model_args),
                   modality=outputs.modality(self.arg.test_feeder_args))
        differ = [f'{k}: {saved.get(k)!r} there, {now[k]!r} here' for k in now if saved.get(k) != now[k]]
        if differ:
            self.print_log(f'WARNING: {path} was saved for another model or modality ({"; ".join(differ)}).')

    def load_data(self):
        workers = min(self.arg.num_worker, os.cpu_count() or 1)
        # workers are started afresh each epoch, seeded from that epoch's shuffle generator (see train)
        loader_args = dict(num_workers=workers, pin_memory=self.device.type == 'cuda')
        self.data_loader = {}
        num_class = self.arg.model_args.get('num_class')
        if self.arg.phase == 'train':
            train_set = build('feeder', self.arg.feeder, self.arg.train_feeder_args)
            check_split(train_set, 'training', num_class)
            per_process = self.arg.batch_size // self.world
            if self.arg.batch_size % self.world:
                raise ValueError(f'batch_size {self.arg.batch_size} is not divisible by {self.world} processes')
            if len(train_set) < self.arg.batch_size:
                raise ValueError(f'batch_size {self.arg.batch_size} is larger than the training set '
                                 f'({len(train_set)} samples): no full batch, nothing would be trained')
            self.train_sampler = (torch.utils.data.distributed.DistributedSampler(train_set, seed=self.arg.seed)
                                  if self.world > 1 else None)
            self.data_loader['train'] = torch.utils.data.DataLoader(
                train_set, batch_size=per_process, shuffle=self.train_sampler is None,
                sampler=self.train_sampler, drop_last=True, generator=self.generators['shuffle'], **loader_args)
        test_set = build('feeder', self.arg.feeder, self.arg.test_feeder_args)
        check_split(test_set, 'test', num_class)
        self.data_loader['test'] = torch.utils.data.DataLoader(
            test_set, batch_size=self.arg.test_batch_size, shuffle=False, drop_last=False, **loader_args)

    def load_text(self):
        """The model's objective, with LST's frozen feature bank or, with --te-lr-ratio > 0, a trainable encoder."""
        self.criterion = build_criterion(self.arg, self.model, self.device, self.generators['text'], self.world,
                                         self.is_main, self.print_log)
        self.text_encoder = self.criterion.text_encoder

    def load_optimizer(self):
        groups = [{'params': self.model.parameters(), 'lr': self.arg.base_lr}]
        if getattr(self, 'text_encoder', None) is not None:
            groups.append({'params': self.text_encoder.parameters(), 'lr': self.arg.base_lr * self.arg.te_lr_ratio})
        if self.arg.optimizer == 'SGD':
            self.optimizer = torch.optim.SGD(groups, lr=self.arg.base_lr, momentum=0.9, nesterov=self.arg.nesterov,
                                             weight_decay=self.arg.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(groups, lr=self.arg.base_lr, weight_decay=self.arg.weight_decay)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.use_amp)
        self.print_log(f'using warm up, epoch: {self.arg.warm_up_epoch}')

    def wrap_model(self):
        self.net = self.model                                        # what forward passes go through
        if self.world > 1:
            ids = [self.device.index] if self.device.type == 'cuda' else None
            # only the first text head is supervised (as released): other heads get no gradient
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids,
                                                           find_unused_parameters=self.model.has_unsupervised_heads)
        elif self.device.type == 'cuda' and len(self.arg.device) > 1:
            self.net = nn.DataParallel(self.model, device_ids=self.arg.device, output_device=self.device.index)

    # ---------------------------------------------------------------- helpers
    def print_log(self, text, print_time=True):
        if not self.is_main:
            return
        if print_time:
            text = f'[ {time.asctime()} ] {text}'
        print(text, flush=True)
        if not self.arg.print_log:
            return
        if self.pending_log is not None:
            self.pending_log.append(text)
        else:
            self.append_log([text])

    def append_log(self, lines):
        with open(os.path.join(self.arg.work_dir, 'log.txt'), 'a') as f:
            f.writelines(line + '\n' for line in lines)

    def open_log(self):
        """From now on lines go to <work_dir>/log.txt too, starting with those held back until the checks passed."""
        pending, self.pending_log = self.pending_log, None
        if self.arg.print_log:
            self.append_log(pending)

    def adjust_learning_rate(self, epoch):
        arg = self.arg
        if epoch < arg.warm_up_epoch:
            lr = arg.base_lr * (epoch + 1) / arg.warm_up_epoch
        else:
            lr = float(arg.base_lr * arg.lr_decay_rate ** np.sum(epoch >= np.array(arg.step)))   # numpy's, as released
        for group, ratio in zip(self.optimizer.param_groups, (1, arg.te_lr_ratio)):
            group['lr'] = lr * ratio
        return lr

    def text_features(self, labels):
        return self.criterion.text_features(labels)

    # ---------------------------------------------------------------- train / eval
    def train(self, epoch):
        self.net.train()
        self.criterion.train()
        self.print_log(f'Training epoch: {epoch + 1}')
        loader = self.data_loader['train']
        if self.train_sampler is not None:
            self.train_sampler.set_epoch(epoch)
        batch_transform = getattr(loader.dataset, 'batch_transform', None)
        lr = self.adjust_learning_rate(epoch)
        losses, accs = [], []
        timer = dict(dataloader=1e-3, model=1e-3)
        tick = time.time()
        # each epoch's order (and the workers' seeds) from (seed, epoch) alone: the same after a resume
        self.generators['shuffle'].manual_seed(self.arg.seed * 1000 + 1 + 100003 * (epoch + 1))
        bar = tqdm(loader, ncols=80, desc=f'epoch {epoch + 1}', disable=not self.is_main, leave=False)
        for batch, (data, label, _) in enumerate(bar, start=1):
            self.global_step += 1
            data = data.to(self.device, non_blocking=True).float()
            label = label.to(self.device, non_blocking=True).long()
            if batch_transform is not None:
                data = batch_transform(data)
            timer['dataloader'] += time.time() - tick
            tick = time.time()
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                loss, logits = self.criterion(self.net(data), label)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise TrainingError(
                    f'the loss is {loss_value} at epoch {epoch + 1}, batch {batch} (step {self.global_step}), lr '
                    f'{lr:g}: training stopped before saving anything of this epoch; lower base_lr or check the '
                    f'data for NaN/Inf')
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            acc = (logits.argmax(1) == label).float().mean().item()
            losses.append(loss_value)
            accs.append(acc)
            timer['model'] += time.time() - tick
            if self.is_main:
                bar.set_postfix(loss=f'{loss_value:.3f}', acc=f'{acc:.2f}')
                if self.global_step % self.arg.log_interval == 0 or len(losses) == 1:
                    self.train_writer.add_scalar('acc', acc, self.global_step)
                    self.train_writer.add_scalar('loss', loss_value, self.global_step)
                    self.train_writer.add_scalar('lr', lr, self.global_step)
            tick = time.time()
        mean_loss, mean_acc = float(dist.all_mean(np.mean(losses))), float(dist.all_mean(np.mean(accs)))
        share = {k: f'{round(100 * v / sum(timer.values())):02d}%' for k, v in timer.items()}
        self.print_log(f'\tMean training loss: {mean_loss:.4f}.  Mean training acc: {mean_acc * 100:.2f}%.')
        self.print_log(f'\tTime consumption: [Data]{share["dataloader"]}, [Network]{share["model"]}')
        return mean_loss, mean_acc

    @torch.no_grad()
    def eval(self, epoch, score_files=(), csv_file=None, wrong_file=None, result_file=None):
        """Top-k on the test split (rank 0 only under DDP), with its outputs: scores saved to each of `score_files`,
        per-class accuracy to `csv_file`, the released wrong/right files; returns (accuracy, loss, confusion)."""
        self.model.eval()
        net = self.model if self.world > 1 else self.net                # DDP: rank 0 alone, no collectives
        self.print_log(f'Eval epoch: {epoch}')
        loader = self.data_loader['test']
        dataset = loader.dataset
        scores, losses = [], []
        for data, label, _ in tqdm(loader, ncols=80, desc='eval', leave=False):
            data = data.to(self.device, non_blocking=True).float()
            label = label.to(self.device).long()
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
                output = net(data)
            logits = (output[0] if isinstance(output, tuple) else output).float()
            losses.append(F.cross_entropy(logits, label, reduction='sum').item())
            scores.append(logits.cpu().numpy())
        score = np.concatenate(scores)
        bad = np.flatnonzero(~np.isfinite(score).all(axis=1))
        if len(bad):                                       # argmax of NaN is class 0: an accuracy, but a false one
            names = [str(dataset.sample_name[i]) for i in bad[:3]]
            raise ValueError(f'eval epoch {epoch}: the model gives non-finite scores (NaN or Inf) for {len(bad)} of '
                             f'{len(score)} test samples (e.g. {", ".join(names)})')
        labels = np.asarray(dataset.label)[:len(score)]
        loss = sum(losses) / len(score)
        accuracy = dataset.top_k(score, 1)
        predict = score.argmax(1)
        self.print_log(f'\tMean test loss of {len(loader)} batches: {loss:.4f}.')
        for k in self.arg.show_topk:
            self.print_log(f'\tTop{k}: {100 * dataset.top_k(score, k):.2f}%')
        names = [str(n) for n in dataset.sample_name]
        if wrong_file:
            outputs.save_predictions(wrong_file, names, predict, labels, wrong_only=True)
        if result_file:
            outputs.save_predictions(result_file, names, predict, labels)
        for path in score_files:
            save_pickle(dict(zip(names, score)), path)
        confusion = confusion_matrix(labels, predict, labels=np.arange(score.shape[1]))
        if csv_file:
            outputs.save_class_accuracy(csv_file, confusion, self.class_names(len(confusion)))
        return accuracy, loss, confusion

    # ---------------------------------------------------------------- checkpoints
    def weights_path(self, epoch):
        return os.path.join(self.arg.work_dir, f'runs-{epoch}-{self.global_step}.pt')

    def save_weights(self, epoch):
        """runs-<epoch>-<step>.pt, a plain state dict as released, carrying what it was trained as."""
        info = dict(model=self.arg.model, model_args=plain(self.arg.model_args),
                    modality=outputs.modality(self.arg.test_feeder_args), epoch=epoch, global_step=self.global_step,
                    work_dir=os.path.abspath(self.arg.work_dir))
        path = self.weights_path(epoch)
        outputs.save_weights(strip_module(self.model.state_dict()), info, path)
        return path

    def save_state(self, epoch):
        state = dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                     scaler=self.scaler.state_dict(), epoch=epoch, global_step=self.global_step,
                     best_acc=self.best_acc, best_acc_epoch=self.best_acc_epoch, history=self.history,
                     best_weights=self.best_weights_file, rng=rng_state(self.generators),
                     experiment=self.experiment())
        if self.text_encoder is not None:
            state['text_encoder'] = self.text_encoder.state_dict()
        save_torch(state, os.path.join(self.arg.work_dir, STATE_FILE))

    def try_resume(self):
        """Continue an interrupted run; returns the first epoch to train."""
        choice = str(self.arg.resume)
        if choice.lower() in ('no', 'false', 'none', '0'):
            return self.arg.start_epoch
        path = os.path.join(self.arg.work_dir, STATE_FILE) if choice == 'auto' else choice
        if not os.path.exists(path):
            if choice != 'auto':
                raise FileNotFoundError(f'--resume {path}: no such training state')
            return self.arg.start_epoch
        state = load_torch(path, 'training state')
        if not (isinstance(state, dict) and {'model', 'optimizer', 'epoch'} <= set(state)):
            raise ValueError(f'--resume {path}: not a training state ({STATE_FILE}); weights files such as '
                             f'runs-<epoch>-<step>.pt start a run with --weights instead')
        self.check_same_experiment(state.get('experiment'), path)
        self.model.load_state_dict(state['model'])
        self.optimizer.load_state_dict(state['optimizer'])
        if state['scaler']:                                          # empty when saved without AMP (on a CPU)
            self.scaler.load_state_dict(state['scaler'])
        if self.text_encoder is not None and 'text_encoder' in state:
            self.text_encoder.load_state_dict(state['text_encoder'])
        self.global_step = state['global_step']
        self.best_acc, self.best_acc_epoch = state['best_acc'], state['best_acc_epoch']
        self.best_weights_file = state.get('best_weights')
        self.history = state['history']
        set_rng_state(state['rng'], self.generators)
        self.bring_best_weights(os.path.dirname(os.path.abspath(path)))
        self.print_log(f'Resumed from {path} after epoch {state["epoch"]} (best {self.best_acc:.4f} at epoch '
                       f'{self.best_acc_epoch}).')
        return state['epoch']

    def bring_best_weights(self, source):
        """Resumed from another folder's state: its best epoch's weights come along, so that the run ends with that
        epoch's scores and best.pt even when no later epoch beats it."""
        name = self.best_weights_file
        here = os.path.abspath(self.arg.work_dir)
        if not name or source == here or os.path.exists(os.path.join(here, name)) \
                or not os.path.exists(os.path.join(source, name)):
            return
        if self.is_main:
            for target in (name, BEST_WEIGHTS):
                copy_file(os.path.join(source, name), os.path.join(here, target))
            self.print_log(f'Copied the best epoch\'s weights {name} from {source} (also as {BEST_WEIGHTS}).')

    def experiment(self):
        """What defines this run's experiment: the settings of EXPERIMENT_KEYS and the training data's identity."""
        arg = vars(self.arg)
        train_set = self.data_loader['train'].dataset
        names = '\n'.join(str(n) for n in getattr(train_set, 'sample_name', []))
        settings = {k: arg.get(k) for k in EXPERIMENT_KEYS}
        settings['train_samples'] = len(train_set)
        settings['train_names_sha1'] = hashlib.sha1(names.encode()).hexdigest()
        return plain(settings)

    def check_same_experiment(self, saved, path):
        if saved is None:                                                # a checkpoint from an earlier version
            return
        saved, current = without_paths(saved), without_paths(self.experiment())
        # a setting an earlier version did not record (e.g. dataset) is not a difference
        changed = [k for k in sorted(saved) if saved[k] != current.get(k)]
        if changed:
            detail = '; '.join(f'{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now' for k in changed)
            raise ValueError(f'{path} belongs to another experiment ({detail}). Start afresh with --resume no, '
                             f'or use another --work-dir')

    def write_metrics(self, finished=False):
        """<work_dir>/metrics.json: the per-epoch history and the best epoch, for scripts (tools/reproduce.py)."""
        metrics = dict(history=self.history, best_acc=self.best_acc, best_epoch=self.best_acc_epoch,
                       best_weights=self.best_weights_file, num_epoch=self.arg.num_epoch, finished=finished)
        write_json(os.path.join(self.arg.work_dir, METRICS_FILE), metrics)

    # ---------------------------------------------------------------- entry
    def start(self):
        if self.arg.phase == 'train':
            self.train_all()
        elif self.is_main:                                           # under torchrun, rank 0 tests alone
            self.test()
        dist.cleanup()

    def train_all(self):
        arg = self.arg
        self.print_log(f'Parameters:\n{vars(arg)}\n')
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.print_log(f'# Parameters: {n_params}')
        for epoch in range(self.start_epoch, arg.num_epoch):
            tick = time.time()
            train_loss, train_acc = self.train(epoch)
            if self.is_main:
                self.end_epoch(epoch + 1, train_loss, train_acc, time.time() - tick)
            dist.barrier()
        if self.is_main:
            self.train_writer.close()
            self.val_writer.close()
            self.test_best()
            self.write_metrics(finished=True)

    def end_epoch(self, epoch, train_loss, train_acc, seconds):
        """Evaluate, keep the best and the last weights (and every epoch after save_epoch), save the state."""
        arg, work_dir = self.arg, self.arg.work_dir
        last = epoch == arg.num_epoch
        score_files = [os.path.join(work_dir, f'epoch{epoch}_test_score.pkl')] if arg.save_score else []
        if last:
            score_files.append(os.path.join(work_dir, LAST_SCORE_FILE))
        accuracy, val_loss, confusion = self.eval(
            epoch, score_files, csv_file=os.path.join(work_dir, f'epoch{epoch}_test_each_class_acc.csv'))
        improved = self.best_acc_epoch == 0 or accuracy > self.best_acc
        if improved:
            self.best_acc, self.best_acc_epoch = accuracy, epoch
        self.print_log(f'\tBest top-1 so far: {100 * self.best_acc:.2f}% (epoch {self.best_acc_epoch})')
        self.val_writer.add_scalar('loss', val_loss, self.global_step)
        self.val_writer.add_scalar('acc', accuracy, self.global_step)
        scheduled = epoch % arg.save_interval == 0 and epoch > arg.save_epoch
        if improved or scheduled or last:
            path = self.save_weights(epoch)
            if improved:
                self.best_weights_file = os.path.basename(path)
                copy_file(path, os.path.join(work_dir, BEST_WEIGHTS))
        self.history.append(dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc, val_loss=float(val_loss),
                                 val_acc=float(accuracy), lr=self.optimizer.param_groups[0]['lr'],
                                 seconds=round(seconds, 2)))
        outputs.save_curves_png(os.path.join(work_dir, 'training_curves.png'), self.history, self.run_title())
        self.save_state(epoch)
        self.write_metrics()

    def run_title(self):
        return os.path.basename(os.path.normpath(self.arg.work_dir))

    def best_weights(self):
        """The best epoch's weights file (runs-<best epoch>-<step>.pt), as recorded when it was saved."""
        if self.best_weights_file:
            path = os.path.join(self.arg.work_dir, self.best_weights_file)
            return path if os.path.exists(path) else None
        prefix = f'runs-{self.best_acc_epoch}-'                      # a state of an earlier version
        steps = {n: epoch_and_step_from_name(n)[1] for n in os.listdir(self.arg.work_dir)
                 if n.startswith(prefix) and n.endswith('.pt')}
        return os.path.join(self.arg.work_dir, max(steps, key=steps.get)) if steps else None

    def test_best(self):
        """Re-evaluate the best epoch's weights, writing its scores, per-class accuracy, wrong/right files."""
        path = self.best_weights()
        if path is None:
            self.print_log(f'No weights of the best epoch {self.best_acc_epoch} in {self.arg.work_dir}.')
            return
        self.model.load_state_dict(strip_module(load_torch(path, 'weights file')))
        stem = os.path.join(self.arg.work_dir, os.path.basename(path)[:-len('.pt')])
        self.arg.print_log, print_log = False, self.arg.print_log
        _, _, confusion = self.eval(
            self.best_acc_epoch, [os.path.join(self.arg.work_dir, SCORE_FILE)],
            csv_file=os.path.join(self.arg.work_dir, 'best_test_each_class_acc.csv'),
            wrong_file=stem + '_wrong.txt', result_file=stem + '_right.txt')
        self.arg.print_log = print_log
        self.save_confusion(confusion, f'best epoch {self.best_acc_epoch}')
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        for line in (f'Best accuracy: {self.best_acc}', f'Epoch number: {self.best_acc_epoch}',
                     f'Model name: {self.arg.work_dir}', f'Model total number of params: {n_params}',
                     f'Weight decay: {self.arg.weight_decay}', f'Base LR: {self.arg.base_lr}',
                     f'Batch Size: {self.arg.batch_size}', f'Test Batch Size: {self.arg.test_batch_size}',
                     f'seed: {self.arg.seed}',
                     f'Best weights: {path} (also {os.path.join(self.arg.work_dir, BEST_WEIGHTS)})'):
            self.print_log(line)

    def plan_test_outputs(self):
        """The test phase's output files, named after the weights; none may be one of the run's inputs."""
        if not self.arg.weights:
            raise ValueError('--phase test needs --weights <work_dir>/runs-<epoch>-<step>.pt (or best.pt)')
        stem = os.path.splitext(os.path.basename(self.arg.weights))[0]
        base = os.path.join(self.arg.work_dir, stem)
        planned = dict(wrong=base + '_wrong.txt', right=base + '_right.txt', csv=base + '_test_each_class_acc.csv',
                       scores=os.path.join(self.arg.work_dir, SCORE_FILE) if self.arg.save_score else None,
                       config=os.path.join(self.arg.work_dir, 'config_test.yaml'))
        inputs = {os.path.realpath(p): flag for p, flag in ((self.arg.weights, '--weights'),
                                                           (self.arg.config, '--config')) if p}
        for path in filter(None, planned.values()):
            if os.path.realpath(path) in inputs:
                raise ValueError(f'{inputs[os.path.realpath(path)]} {path} would be overwritten by the test phase\'s '
                                 f'output of the same name: rename it or use another --work-dir')
        return planned

    def test(self):
        out = self.test_outputs
        self.print_log(f'Model:   {self.arg.model}.')
        self.print_log(f'Weights: {self.arg.weights}' + (f' (epoch {self.weights_epoch}).' if self.weights_epoch else '.'))
        accuracy, _, confusion = self.eval(self.weights_epoch or 0, [out['scores']] if out['scores'] else [],
                                           csv_file=out['csv'], wrong_file=out['wrong'], result_file=out['right'])
        epoch = f'epoch {self.weights_epoch}' if self.weights_epoch else os.path.basename(self.arg.weights)
        self.save_confusion(confusion, f'test of {epoch}')
        self.print_log(f'Outputs: {", ".join(os.path.basename(p) for p in out.values() if p)} in {self.arg.work_dir}')
        self.print_log('Done.\n')
        return accuracy

    def class_names(self, num_class):
        return class_names(self.arg.dataset, num_class, self.arg.text_dir)

    def save_confusion(self, confusion, what):
        outputs.save_confusion_png(os.path.join(self.arg.work_dir, 'confusion_matrix.png'), confusion,
                                   self.class_names(len(confusion)), f'{self.run_title()}, {what}')


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


def check_split(dataset, split, num_class):
    """A split must have samples, and labels in 0..num_class-1."""
    labels = np.asarray(dataset.label)
    if len(labels) == 0:
        raise ValueError(f'the {split} split is empty ({type(dataset).__module__}): check the feeder arguments')
    if num_class is not None and (labels.min() < 0 or labels.max() >= num_class):
        bad = int(labels.min()) if labels.min() < 0 else int(labels.max())
        raise ValueError(f'the {split} split has label {bad}, outside 0..{num_class - 1} (model_args num_class '
                         f'{num_class})')
