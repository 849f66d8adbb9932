"""The trainer behind main.py and the released entry scripts: `Processor(arg)` builds one run's
parts in the release's order, so that a seed gives the release's initial weights, and `start()` runs its phase.

    engine/build.py       the model and the data loaders         engine/criterion.py  the model's objective + text
    engine/weights.py     --weights, weights files               engine/optim.py      optimiser, learning rate
    engine/checkpoint.py  training state, resume, experiment     engine/loop.py       one training epoch
    engine/evaluate.py    the test split through model.logits    engine/report.py     score, result and figure files
    engine/training.py    the train phase                        engine/testing.py    the test phase
"""
import os

import torch

from engine import distributed as dist
from engine.args import save_config
from engine.build import build, data_loaders, data_warnings, datasets
from engine.checkpoint import Checkpoint, Progress
from engine.criterion import build_criterion
from engine.logger import Logger
from engine.optim import build_optimizer
from engine.report import Report, summary_writer
from engine.rng import run_generators
from engine.testing import plan_test_outputs, test
from engine.training import Training, check_inputs
from engine.weights import load_initial_weights
from lstbase.processes import cpu_threads
from text.prompts import class_names


class Processor:
    """Trains and evaluates one model as the released `Processor` does, on CPU, one or several GPUs, or DDP."""

    def __init__(self, arg):
        self.arg = arg                                               # arg.dataset: the spec (descriptions, names)
        self.rank, self.world, self.local_rank = dist.init_from_env()
        self.is_main = self.rank == 0
        self.log = Logger(arg.work_dir, enabled=self.is_main, to_file=arg.print_log)   # log.txt once checks pass
        if arg.phase == 'train' and self.is_main:
            check_inputs(arg)
        self.device, self.use_amp = dist.choose_device(arg.device, arg.amp, self.world, self.local_rank, self.log)
        if self.device.type == 'cpu':
            threads, why = cpu_threads(self.world)
            torch.set_num_threads(threads)
            self.log(f'threads: {threads} ({why})')
        self.generators = run_generators(arg.seed)
        self.model = build('model', arg.model, arg.model_args).to(self.device)
        self.weights_epoch, global_step = load_initial_weights(self.model, arg, self.log) if arg.weights \
            else (None, 0)
        sets = datasets(arg, self.world, self.model)
        self.data_loader = data_loaders(arg, sets, self.world, self.device, self.generators['shuffle'])
        for warning in data_warnings(arg, sets):
            self.log.warning(warning)
        self.report = Report(arg.work_dir, class_names(arg.dataset, self.model.num_class, arg.text_dir,
                                                       self.log.warning))
        if arg.phase == 'train':
            self.prepare_training(Progress(global_step))
        elif self.is_main:
            self.test_outputs = plan_test_outputs(arg)
            self.log.open_file()
            save_config(arg, arg.work_dir, 'config_test.yaml')       # the training run's config.yaml stays
        # what training passes go through
        self.net = dist.parallel(self.model, self.device, arg.device, self.world, self.model.has_unsupervised_heads)

    def prepare_training(self, progress):
        arg = self.arg
        self.criterion = build_criterion(arg, self.model, self.device, self.generators['text'], self.world,
                                         self.is_main, self.log)
        self.optimizer = build_optimizer(arg, self.model, self.criterion)
        self.scaler = torch.amp.GradScaler('cuda', enabled=self.use_amp)
        self.log(f'using warm up, epoch: {arg.warm_up_epoch}')
        self.checkpoint = Checkpoint(arg, self.model, self.optimizer, self.scaler, self.criterion, self.generators,
                                     self.data_loader['train'].dataset, self.log, self.is_main)
        self.start_epoch, self.progress = self.checkpoint.resume(progress)     # checked before anything is written
        self.writers = {}
        if self.is_main:
            self.log.open_file()
            save_config(arg, arg.work_dir)
            runs = os.path.join(arg.work_dir, 'runs')
            self.writers = {name: summary_writer(os.path.join(runs, name), self.log) for name in ('train', 'val')}

    def start(self):
        if self.arg.phase == 'train':
            Training(self).train()
        elif self.is_main:                                           # under torchrun, the main process tests alone
            test(self, self.test_outputs)
        dist.cleanup()
