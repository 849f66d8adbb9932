"""The train phase: each epoch trained, evaluated and saved (weights, training state, curves, metrics.json), then the
best epoch's weights evaluated again for its score file, per-class accuracy, wrong/right files and confusion matrix."""
import os
import time

from engine import distributed as dist
from engine.args import CONFIG_FILE, input_files
from engine.checkpoint import STATE_FILE, best_weights_path
from engine.evaluate import evaluate
from engine.loop import EpochLoop
from engine.report import LAST_SCORE_FILE, SCORE_FILE
from engine.weights import BEST_WEIGHTS, read_weights, save_weights, strip_module, trained_as
from lstbase.files import copy_file, refuse_writing_inputs, same_file


def check_inputs(arg):
    """A training run writes into its work dir, so none of its inputs may be a file there (nor a link to one): such
    a --weights is refused rather than copied, so that the run's best.pt and runs-*.pt are never what the user
    pointed at before, and no second copy of a large file appears. The run's own record and state are read whole
    before they are written again: `--config <work dir>/config.yaml` and `--resume <work dir>/checkpoint.pt` continue
    a run."""
    if not os.path.isdir(arg.work_dir):
        return
    files = [os.path.join(arg.work_dir, name) for name in sorted(os.listdir(arg.work_dir))]
    own = {'--config': os.path.join(arg.work_dir, CONFIG_FILE), '--resume': os.path.join(arg.work_dir, STATE_FILE)}
    inputs = [(what, path) for what, path in input_files(arg) if not (what in own and same_file(path, own[what]))]
    refuse_writing_inputs([("the work dir's file", path) for path in files if os.path.isfile(path)], inputs,
                          advice='a training run writes into its work dir: copy the file elsewhere first, or train in '
                                 'another --work-dir')


def count_parameters(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Training:
    """Runs the train phase with the parts `run` (the Processor) built: its model and network, objective, optimiser,
    loaders, checkpoint, progress and report."""

    def __init__(self, run):
        self.run, self.arg, self.log, self.progress = run, run.arg, run.log, run.progress
        self.loop = EpochLoop(run.arg, run.net, run.criterion, run.optimizer, run.scaler, run.data_loader['train'],
                              run.device, run.use_amp, run.generators['shuffle'], run.writers.get('train'), run.log,
                              run.is_main)

    def train(self):
        self.log(f'Parameters:\n{vars(self.arg)}\n')
        self.log(f'# Parameters: {count_parameters(self.run.model)}')
        for epoch in range(self.run.start_epoch, self.arg.num_epoch):
            tick = time.time()
            train_loss, train_acc, train_terms = self.loop.run(epoch, self.progress)
            if self.run.is_main:
                self.end_epoch(epoch + 1, train_loss, train_acc, train_terms, time.time() - tick)
            dist.barrier()
        if self.run.is_main:
            for writer in self.run.writers.values():
                writer.close()
            self.test_best()
            self.run.report.metrics(self.progress, self.arg.num_epoch, finished=True)

    def evaluate(self, epoch, log):
        run = self.run
        return evaluate(run.model, run.data_loader['test'], run.device, run.use_amp, epoch, self.arg.show_topk, log)

    def end_epoch(self, epoch, train_loss, train_acc, train_terms, seconds):
        """Evaluate, keep the best and the last weights (and every epoch after save_epoch), save the state.
        `train_terms`: the training loss's parts (cross_entropy, LST's language_loss), kept as train_<part>."""
        arg, progress, report = self.arg, self.progress, self.run.report
        last = epoch == arg.num_epoch
        score_files = [report.path(f'epoch{epoch}_test_score.pkl')] if arg.save_score else []
        if last:
            score_files.append(report.path(LAST_SCORE_FILE))
        evaluation = self.evaluate(epoch, self.log)
        report.evaluation(evaluation, score_files, csv_file=report.path(f'epoch{epoch}_test_each_class_acc.csv'))
        improved = progress.best_acc_epoch == 0 or evaluation.accuracy > progress.best_acc
        if improved:
            progress.best_acc, progress.best_acc_epoch = evaluation.accuracy, epoch
        self.log(f'\tBest top-1 so far: {100 * progress.best_acc:.2f}% (epoch {progress.best_acc_epoch})')
        self.run.writers['val'].add_scalar('loss', evaluation.loss, progress.global_step)
        self.run.writers['val'].add_scalar('acc', evaluation.accuracy, progress.global_step)
        scheduled = epoch % arg.save_interval == 0 and epoch > arg.save_epoch
        if improved or scheduled or last:
            path = self.save_weights(epoch)
            if improved:
                progress.best_weights_file = os.path.basename(path)
                copy_file(path, report.path(BEST_WEIGHTS))
        progress.history.append(dict(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                                     **{f'train_{name}': value for name, value in train_terms.items()},
                                     val_loss=float(evaluation.loss), val_acc=float(evaluation.accuracy),
                                     lr=self.run.optimizer.param_groups[0]['lr'], seconds=round(seconds, 2)))
        report.curves(progress.history)
        self.run.checkpoint.save(epoch, progress)
        report.metrics(progress, arg.num_epoch)

    def save_weights(self, epoch):
        """runs-<epoch>-<step>.pt, a plain state dict as released, carrying what it was trained as."""
        arg, step = self.arg, self.progress.global_step
        info = dict(trained_as(arg.model, arg.model_args, arg.test_feeder_args), epoch=epoch, global_step=step,
                    work_dir=os.path.abspath(arg.work_dir))
        path = self.run.report.path(f'runs-{epoch}-{step}.pt')
        save_weights(strip_module(self.run.model.state_dict()), info, path)
        return path

    def test_best(self):
        """Evaluate the best epoch's weights again, writing its scores, per-class accuracy, wrong/right files."""
        progress, report = self.progress, self.run.report
        path = best_weights_path(self.arg.work_dir, progress)
        if path is None:
            self.log(f'No weights of the best epoch {progress.best_acc_epoch} in {self.arg.work_dir}.')
            return
        self.run.model.load_state_dict(strip_module(read_weights(path)))
        stem = report.path(os.path.basename(path)[:-len('.pt')])
        evaluation = self.evaluate(progress.best_acc_epoch, self.log.console)     # its lines are in log.txt already
        confusion = report.evaluation(evaluation, [report.path(SCORE_FILE)],
                                      csv_file=report.path('best_test_each_class_acc.csv'),
                                      wrong_file=stem + '_wrong.txt', right_file=stem + '_right.txt')
        report.confusion(confusion, f'best epoch {progress.best_acc_epoch}')
        arg = self.arg
        for line in (f'Best accuracy: {progress.best_acc}', f'Epoch number: {progress.best_acc_epoch}',
                     f'Model name: {arg.work_dir}', f'Model total number of params: {count_parameters(self.run.model)}',
                     f'Weight decay: {arg.weight_decay}', f'Base LR: {arg.base_lr}',
                     f'Batch Size: {arg.batch_size}', f'Test Batch Size: {arg.test_batch_size}', f'seed: {arg.seed}',
                     f'Best weights: {path} (also {report.path(BEST_WEIGHTS)})'):
            self.log(line)
