#!/usr/bin/env python
"""Reproduce a results table: paired LST / control runs over several seeds, streams fused, mean +- std.

    python tools/reproduce.py --benchmark ucla --streams joint bone joint_vel bone_vel \\
        --arms lst control ctrgcn --seeds 1 2 3 --schedule short --jobs 2 --out work_dir/reproduce/ucla

Arms (each run is an ordinary main_multipart_*.py run in <out>/<arm>/<stream>/seed<k>):
  lst      the stream's released LST config
  control  the same config and seed with loss_alpha 0: identical initial weights, batches, augmentation and prompt
           draws; only the language gradient is removed (the paired comparison)
  ctrgcn   the CTR-GCN baseline with its own released recipe (a second, unpaired reference)
  lst_te   LST training its text encoder every step (--te-lr-ratio 1), as the released code does
  lst_shuffled  LST with each class's body-part descriptions moved to another class (a fixed derangement; names and
           synonyms kept, files in <out>/text-shuffled): is it what the descriptions say, or any text target?
  lst_names  LST with prompt groups 1-4 the class name alone (--part-text False): the part heads get a class-specific
           text target without any body-part description (the other half of the text ablation)
Every arm but ctrgcn shares the seed's initial weights and data stream, so each pair of them is compared per seed.

Schedules: full = the configs as released; medium = 22/110 and short = 6/110 of the released number of training
samples (epochs, lr steps and warm-up scaled together; NW-UCLA drops `repeat` to 1 first: short = 30 epochs of 1,020
samples); quick = 3 tiny epochs on generated data (unless --data-root is given), for tests.

Interrupted runs resume, finished runs are skipped; at the end <out>/summary.md, summary.json and curves.png are
written from whatever has finished (failed runs are listed with their last log line, kept in each run's exit.json so
that --summary-only says it too). With --time-limit, no run starts after that many seconds and running ones are
stopped then: they resume from their last finished epoch next time. Ctrl-C or SIGTERM stops the running runs the same
way (exit status 130) and starts no other.

The summary compares each pair of arms seed by seed (tools/paired_stats.py): per stream and per fusion of streams the
difference with its 95% t-interval, t-test p and the seeds that 80% power would need; McNemar's exact test per seed on
the test samples right in one arm only; per class the same, with the class each arm most often predicts instead.
--export-results DIR copies the small files it reads (no weights) so that `--summary-only --out DIR` remakes it.
"""
import argparse
import concurrent.futures
import contextlib
import math
import os
import platform
import signal
import sys
import threading
import time

import numpy as np
import yaml
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

import ensemble  # noqa: E402
from engine.report import read_metrics  # noqa: E402
import specs  # noqa: E402
from lstbase.figures import pyplot, save_png  # noqa: E402
from lstbase.files import UnreadableFile, plain, read_json, write_json, write_text  # noqa: E402
from lstbase.processes import run_until  # noqa: E402
from paired_stats import mcnemar, mean_std, paired_stat, t_test, top_confusion  # noqa: E402
from text.prompts import class_names  # noqa: E402

# --benchmark name: its configs, data and spec
BENCHMARKS = {b.key: b for b in (*specs.BENCHMARKS.values(), *specs.CUSTOM_BENCHMARKS.values())}
STREAMS = ('joint', 'bone', 'joint_vel', 'bone_vel')
ARMS = ('lst', 'control', 'ctrgcn', 'lst_te', 'lst_shuffled', 'lst_names')
MACHINE_FILE = 'machine.txt'           # in each run's folder: the machine, PyTorch, jobs and threads it ran with
ARM_ARGS = {'lst': [], 'control': ['--loss-alpha', '0'], 'ctrgcn': [], 'lst_te': ['--te-lr-ratio', '1'],
            'lst_names': ['--part-text', 'False'],
            'lst_shuffled': []}                                   # + --text-dir <out>/text-shuffled (command)
# the paired comparisons (first - second) summarised when both arms are run: they differ in one setting each
COMPARISONS = (('lst', 'control'), ('lst', 'lst_shuffled'), ('lst_shuffled', 'control'), ('lst', 'lst_names'),
               ('lst_names', 'control'), ('lst_te', 'lst'))
SHUFFLED_TEXT = 'text-shuffled'                                  # under --out: the lst_shuffled arm's descriptions
SCHEDULES = {'full': 1.0, 'medium': 22 / 110, 'short': 6 / 110, 'quick': None}
QUICK = dict(num_epoch=3, step=[2], warm_up_epoch=1, batch_size=16, repeat=1)
ENSEMBLES = {2: ('joint', 'bone'), 3: ('joint', 'bone', 'joint_vel'), 4: STREAMS}
STOPPED, NOT_STARTED = 'stopped at the time limit', 'not started (time limit)'     # what execute returns then
INTERRUPTED = 'interrupted'                # ... and after Ctrl-C or SIGTERM
STOP_GRACE_S = 15                          # a stopped run gets this long to exit after SIGINT, then it is killed
POLL_S = 1.0                               # how often a waiting run looks at the time limit and the stop request
STOP = threading.Event()                   # set by Ctrl-C / SIGTERM: running runs are stopped, no other starts
FOLDER_DELETED = 'failed: its folder was deleted while it ran'     # what execute returns then
EXIT_FILE = 'exit.json'                    # in each run's folder: how its last attempt ended, for --summary-only
SCORE_FILES = {'best': 'epoch1_test_score.pkl', 'last': 'last_test_score.pkl'}       # the trainer's, per epoch kind
# what --export-results copies of each run: all the summary reads (the checkpoints and weights stay behind)
EXPORTED_FILES = ('metrics.json', 'config.yaml', MACHINE_FILE, EXIT_FILE, *SCORE_FILES.values())
LABELS_FILE = 'test_labels.json'           # in an exported folder: the test split's names and labels (no data needed)
QUICK_HEAD = 'all-MiniLM-L6-v2'            # the quick schedule's text encoder: its weights come with a package


# ---------------------------------------------------------------------------------------------------- runs
class Run:
    def __init__(self, arm, stream, seed, out):
        self.arm, self.stream, self.seed = arm, stream, seed
        self.work_dir = os.path.join(out, arm, stream, f'seed{seed}')

    @property
    def name(self):
        return f'{self.arm}/{self.stream}/seed{self.seed}'

    def metrics(self):
        """The trainer's metrics.json; None when there is none. One cut short or without the trainer's keys raises
        UnreadableFile."""
        return read_metrics(self.work_dir)

    def finished(self, num_epoch):
        try:
            metrics = self.metrics()
        except UnreadableFile:              # trained again: the trainer rewrites it from its checkpoint
            return False
        return bool(metrics and metrics['finished'] and metrics['num_epoch'] == num_epoch)

    def exit_record(self):
        """How execute saw this run's last attempt end: returncode, failed, reason; None when never executed."""
        path = os.path.join(self.work_dir, EXIT_FILE)
        return read_json(path, ('returncode', 'failed', 'reason')) if os.path.exists(path) else None

    def changed_settings(self, argv):
        """How the experiment this run's folder holds differs from the one `argv` asks for (the trainer's
        EXPERIMENT_KEYS, file locations aside); empty when it does not, or when nothing was trained yet."""
        from engine.args import load_config, parse_args
        from engine.checkpoint import EXPERIMENT_KEYS, without_paths
        path = os.path.join(self.work_dir, 'config.yaml')
        if not os.path.exists(path):
            return []
        saved, asked = load_config(path), vars(parse_args(None, argv[argv.index('--config'):]))
        recorded = [k for k in EXPERIMENT_KEYS if k in saved]         # an earlier version did not record them all
        saved, asked = (without_paths(plain({k: d.get(k) for k in recorded})) for d in (saved, asked))
        changed = []
        for key in recorded:
            there, here = saved[key], asked[key]
            if isinstance(there, dict) and isinstance(here, dict):            # name the argument inside
                changed += [f'{key}.{k} {there.get(k)!r} there, {here.get(k)!r} asked'
                            for k in sorted(set(there) | set(here)) if there.get(k) != here.get(k)]
            elif there != here:
                changed.append(f'{key} {there!r} there, {here!r} asked')
        return changed

    def last_log_line(self):
        path = os.path.join(self.work_dir, 'console.log')
        if not os.path.exists(path):
            return ''
        with open(path, errors='replace') as f:
            lines = [line.strip() for line in f.read().replace('\r', '\n').splitlines() if line.strip()]
        return lines[-1] if lines else ''


def config_path(benchmark, arm, stream):
    name = BENCHMARKS[benchmark].config(arm, stream)
    path = name and os.path.join(ROOT, name)
    if not path or not os.path.exists(path):
        raise ValueError(f'--benchmark {benchmark} has no config for the {arm} arm on the {stream} stream'
                         + (f' ({name} not found)' if name else ''))
    return path


def schedule_of(config, schedule):
    """The schedule's settings for one config: epochs, lr steps, warm-up (and repeat, batch size)."""
    repeat = config['train_feeder_args'].get('repeat')
    if schedule == 'quick':
        return dict(QUICK, repeat=1 if repeat else None)
    epochs, steps, warm = config['num_epoch'], config['step'], config['warm_up_epoch']
    fraction = SCHEDULES[schedule]
    if fraction == 1:
        return dict(num_epoch=epochs, step=steps, warm_up_epoch=warm, batch_size=config['batch_size'], repeat=repeat)
    epochs_now = max(1, round(epochs * (repeat or 1) * fraction))     # epochs of one pass over the training set
    factor = epochs_now / epochs
    steps_now = sorted({min(epochs_now, max(1, round(s * factor))) for s in steps})
    warm_now = min(warm, max(2, math.ceil(warm * factor)))             # at least 2: a 1-epoch warm-up is none
    return dict(num_epoch=epochs_now, step=steps_now, warm_up_epoch=warm_now, batch_size=config['batch_size'],
                repeat=1 if repeat else None)


def command(run, benchmark, schedule, opts, data_root):
    cfg_path = config_path(benchmark, run.arm, run.stream)
    with open(cfg_path) as f:
        config = yaml.safe_load(f)
    plan = schedule_of(config, schedule)
    spec = specs.get(BENCHMARKS[benchmark].spec)
    train, test = {}, {}
    if plan['repeat']:
        train['repeat'] = plan['repeat']
    if run.arm == 'ctrgcn' and run.stream != 'joint':          # LST streams make bones inside the model instead
        train.update(spec.stream_args(run.stream))
        test.update(spec.stream_args(run.stream))
    if data_root:
        train.update(spec.relocate(config['train_feeder_args'], data_root))
        test.update(spec.relocate(config['test_feeder_args'], data_root))
    if opts.ann_file:
        train['ann_file'] = test['ann_file'] = os.path.abspath(opts.ann_file)
    argv = [sys.executable, os.path.join(ROOT, spec.script), '--config', cfg_path,
            '--work-dir', run.work_dir, '--seed', str(run.seed), '--num-epoch', str(plan['num_epoch']),
            '--step', *map(str, plan['step']), '--warm_up_epoch', str(plan['warm_up_epoch']),
            '--batch-size', str(plan['batch_size']), '--num-worker', str(opts.num_worker)]
    for flag, extra in (('--train-feeder-args', train), ('--test-feeder-args', test)):
        if extra:
            argv += [flag, repr(extra)]
    model_args = dict(head=[opts.head]) if run.arm != 'ctrgcn' and opts.head else {}
    if opts.num_class:
        model_args['num_class'] = opts.num_class
    if model_args:
        argv += ['--model-args', repr(model_args)]
    if opts.device is not None:                            # `--device` with no index: the CPU
        argv += ['--device', *(map(str, opts.device) if opts.device else ['cpu'])]
    if opts.text_cache_dir:
        argv += ['--text-cache-dir', opts.text_cache_dir]
    if run.arm == 'lst_shuffled':
        argv += ['--text-dir', shuffled_text(opts.out, benchmark, opts.num_class or config['model_args']['num_class'],
                                             opts.text_dir)]
    elif opts.text_dir and run.arm != 'ctrgcn':
        argv += ['--text-dir', os.path.abspath(opts.text_dir)]
    return argv + ARM_ARGS[run.arm] + opts.extra, plan


def execute(run, argv, threads, deadline=None, machine=None):
    """One run to its end (it resumes by itself) and its return code; its console output goes to
    <work_dir>/console.log, the machine it ran on to <work_dir>/machine.txt (one line per session), how it ended to
    <work_dir>/exit.json (read by later summaries). Past `deadline` (a time.time()) it is not started, or stopped:
    NOT_STARTED, STOPPED; once STOP is set, likewise: NOT_STARTED, INTERRUPTED. FOLDER_DELETED when its folder was
    deleted (or replaced) while it ran."""
    if STOP.is_set() or (deadline is not None and time.time() >= deadline):
        return NOT_STARTED
    os.makedirs(run.work_dir, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):        # the record of an earlier attempt must not outlive this one
        os.remove(os.path.join(run.work_dir, EXIT_FILE))
    folder = os.stat(run.work_dir).st_ino
    if machine:
        with open(os.path.join(run.work_dir, MACHINE_FILE), 'a') as f:
            f.write(machine + '\n')
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    code = supervise(run, argv, env, deadline)
    if not same_folder(run.work_dir, folder):
        code = FOLDER_DELETED
    write_exit_record(run, code)
    return code


def supervise(run, argv, env, deadline):
    """The run's process to its end (its return code), or stopped past `deadline` or on STOP (STOPPED,
    INTERRUPTED)."""
    def stop_reason():
        if STOP.is_set():
            return INTERRUPTED
        return STOPPED if deadline is not None and time.time() >= deadline else None

    with open(os.path.join(run.work_dir, 'console.log'), 'a') as log:
        log.write(f'\n$ {" ".join(argv)}\n')
        log.flush()
        code = run_until(argv, log, stop_reason, STOP_GRACE_S, cwd=ROOT, env=env, poll_s=POLL_S)
        if code in (INTERRUPTED, STOPPED):
            log.write(f'\n[reproduce.py] {code}: the run resumes from its last finished epoch\n')
        return code


def same_folder(path, inode):
    """Whether `path` is still the folder whose inode was `inode` (not deleted, nor deleted and made again)."""
    try:
        return os.stat(path).st_ino == inode
    except FileNotFoundError:
        return False


def write_exit_record(run, code):
    """<work_dir>/exit.json: the return code (None when stopped), whether the run failed and why, so that a summary
    made by another process (--summary-only) tells a failed run from an unfinished one."""
    failed = code == FOLDER_DELETED or (isinstance(code, int) and code != 0)
    if code == FOLDER_DELETED:
        reason = f'its folder {run.name} was deleted while it ran'
    elif isinstance(code, int) and code != 0:
        reason = run.last_log_line() or f'exit status {code}'
    else:
        reason = '' if code == 0 else code
    record = dict(returncode=code if isinstance(code, int) else None, failed=failed, reason=reason)
    write_json(os.path.join(run.work_dir, EXIT_FILE), record)


# ---------------------------------------------------------------------------------------------------- data
def shuffled_text(out, benchmark, num_class, text_dir=None):
    """<out>/text-shuffled: the descriptions of the lst_shuffled arm (written once; the same every time)."""
    from text.prompts import write_shuffled
    folder = os.path.abspath(os.path.join(out, SHUFFLED_TEXT))
    if not os.path.exists(os.path.join(folder, 'shuffle.txt')):
        write_shuffled(BENCHMARKS[benchmark].spec, folder, num_class, text_dir=text_dir)
    return folder


def generated_data(benchmark, out):
    """Small generated data in the benchmark's format under <out>/data (made once); returns the data root."""
    from preprocess import synthetic
    spec = BENCHMARKS[benchmark].spec
    root = os.path.join(out, 'data', spec)
    done = os.path.join(root, '.complete')
    if not os.path.exists(done):
        synthetic.write_dataset(spec, root, num_classes=10, per_class=12)
        open(done, 'w').close()
    return root


def test_labels(benchmark, data_root, runs=()):
    """(names, labels) of the test split, for fusing the streams' score files: from the benchmark's data, or for
    your own data (custom benchmarks) from the test split a run's config names."""
    if BENCHMARKS[benchmark].data is not None:
        return BENCHMARKS[benchmark].test_labels(os.path.join(ROOT, 'data'), data_root)
    for run in runs:
        if os.path.exists(os.path.join(run.work_dir, 'config.yaml')):
            return ensemble.config_labels(run.work_dir)[:2]
    raise FileNotFoundError('no run has started yet')


# ---------------------------------------------------------------------------------------------------- summary
def fmt(stat, digits=2, signed=False):
    """mean +- std (n, the 95% t-interval and the t-test's p when `stat` has them); '-' for None."""
    if stat is None:
        return '-'
    mean = f'{stat["mean"]:{"+" if signed else ""}.{digits}f}'
    if stat['n'] == 1:
        return f'{mean} (n=1)'
    ci = f', 95% CI [{stat["ci95"][0]:+.{digits}f}, {stat["ci95"][1]:+.{digits}f}]' if 'ci95' in stat else ''
    p = f', p {p_text(stat["p"])}' if stat.get('p') is not None else ''
    return f'{mean} +- {stat["std"]:.{digits}f} (n={stat["n"]}{ci}{p})'


def p_text(p):
    return '-' if p is None else f'{p:.2g}'


def signed(value):
    return '-' if value is None else f'{value:+.2f}'


def run_record(run, num_epoch, returncode=None):
    """A run's line of the summary: its status (done, failed, unreadable, incomplete, not run), curve and wall time,
    and why when there is a reason. `returncode`: what execute returned in this process (None: not run here). Paths
    are relative to --out, so that a summary does not depend on where the folder lies (--export-results)."""
    record = dict(arm=run.arm, stream=run.stream, seed=run.seed, epochs_done=0, curve=[], wall_s=0.0)
    try:
        metrics, exit_record = run.metrics() or {}, run.exit_record()
    except UnreadableFile as exc:
        return dict(record, status='unreadable', reason=str(exc).replace(run.work_dir, run.name))
    history = metrics.get('history', [])
    record.update(epochs_done=len(history), curve=[round(100 * h['val_acc'], 2) for h in history],
                  wall_s=round(sum(h.get('seconds', 0) for h in history), 1))
    if history and metrics['finished'] and metrics['num_epoch'] == num_epoch:
        return dict(record, status='done', best=round(100 * metrics['best_acc'], 2),
                    best_epoch=metrics['best_epoch'], last=record['curve'][-1])
    if returncode not in (None, NOT_STARTED) and not os.path.isdir(run.work_dir):
        return dict(record, status='failed', reason=f'its folder {run.name} was deleted during the reproduction')
    if exit_record and exit_record['failed']:
        return dict(record, status='failed', returncode=exit_record['returncode'], reason=exit_record['reason'])
    record['status'] = 'incomplete' if history else 'not run'
    if exit_record and exit_record['reason']:                    # e.g. stopped at the time limit
        record['reason'] = exit_record['reason']
    return record


class ScoreFiles:
    """The runs' score files, rows in the order of the test split's `names`. Predictions are kept once read (small);
    scores are read again for each fusion (on NTU, a file's scores are tens of MB)."""

    def __init__(self, names):
        self.names, self.predicted = names, {}

    def scores(self, run, score_file):
        """(scores, None), or (None, what is wrong, naming '<arm>/<stream>/seed<k>/<file>')."""
        path = os.path.join(run.work_dir, score_file)
        where = f'{run.name}/{score_file}'
        if not os.path.exists(path):
            return None, f'{where}: missing'
        try:
            return ensemble.load_scores_file(path, self.names), None
        except (OSError, ValueError) as exc:
            return None, str(exc).replace(path, where)

    def predictions(self, run, score_file):
        """(predicted class per test sample, None), or (None, what is wrong)."""
        key = run.name, score_file
        if key not in self.predicted:
            scores, why = self.scores(run, score_file)
            self.predicted[key] = (None if scores is None else scores.argmax(1)), why
        return self.predicted[key]


def paired_predictions(runs, stream, seeds, files, arms, score_file):
    """Over the seeds where both `arms` finished on `stream` and their `score_file`s read: each arm's predicted
    classes (an array [seed, sample]); `missing` names the score files of finished runs that did not read."""
    used, predicted, missing = [], {arm: [] for arm in arms}, []
    for seed in seeds:
        pair = [runs.get((arm, stream, seed)) for arm in arms]
        if not all(run is not None and run.finished_flag for run in pair):
            continue
        got = [files.predictions(run, score_file) for run in pair]
        gaps = [why for _, why in got if why]
        if gaps:
            missing += gaps
            continue
        for arm, (classes, _) in zip(arms, got):
            predicted[arm].append(classes)
        used.append(seed)
    return dict(arms=list(arms), seeds=used, score_file=score_file,
                predicted={arm: np.array(rows) for arm, rows in predicted.items()}, missing=missing)


def mcnemar_per_seed(pairs, labels):
    """McNemar's exact test of each seed on the whole test split: b = samples right in the first arm only, c = in
    the second only."""
    a, b = (pairs['predicted'][arm] for arm in pairs['arms'])
    return [dict(seed=seed, **mcnemar(x == labels, y == labels)) for seed, x, y in zip(pairs['seeds'], a, b)]


def per_class_paired(pairs, labels, class_names):
    """Per class, over the paired seeds of `pairs` (paired_predictions; summarize gives the last epoch's: no epoch
    chosen on the test split): each arm's top-1 (%) (`a`, `b`), a - b per seed with its paired t-test, the (test
    sample, seed) pairs that only one arm gets right (`a_only`, `b_only`), McNemar's exact test per seed within the
    class, and the class each arm most often predicts instead. None without a paired seed."""
    if not pairs['seeds']:
        return None
    labels = np.asarray(labels)
    first, second = (pairs['predicted'][arm] for arm in pairs['arms'])
    rows = [class_row(k, name, first[:, labels == k], second[:, labels == k], pairs, class_names)
            for k, name in enumerate(class_names) if (labels == k).any()]
    return dict(arms=pairs['arms'], seeds=pairs['seeds'], score_file=pairs['score_file'], classes=rows,
                missing=pairs['missing'])


def class_row(label, name, a_predicted, b_predicted, pairs, class_names):
    """One class's line of per_class_paired from each arm's predictions for its samples ([seed, sample])."""
    a, b = a_predicted == label, b_predicted == label
    per_seed = [round(100 * float(x.mean() - y.mean()), 2) for x, y in zip(a, b)]
    return dict(label=label, name=name, samples=int(a.shape[1]), pairs=int(a.size),
                a=round(100 * float(a.mean()), 2), b=round(100 * float(b.mean()), 2), per_seed=per_seed,
                mean=round(float(np.mean(per_seed)), 2), t_test=t_test(per_seed),
                a_only=int((a & ~b).sum()), b_only=int((~a & b).sum()),
                mcnemar=[dict(seed=seed, **mcnemar(x, y)) for seed, x, y in zip(pairs['seeds'], a, b)],
                a_confused=named(top_confusion(a_predicted, label, b_predicted), class_names),
                b_confused=named(top_confusion(b_predicted, label, a_predicted), class_names))


def named(confusion, class_names):
    return confusion and dict(confusion, name=class_names[confusion['label']])


def fused_arm(runs, arm, members, seeds, files, labels):
    """The released fusion of `members` (streams) of one arm, per seed, from the best and the last epoch's scores.
    A seed of which some member finished but not all, or whose score file did not read, is named in `missing`."""
    per_seed, missing = [], []
    for seed in seeds:
        member_runs = [runs[arm, stream, seed] for stream in members]
        unfinished = [run for run in member_runs if not run.finished_flag]
        if len(unfinished) == len(member_runs):         # nothing of this seed yet: the runs table says so
            continue
        if unfinished:
            missing += [f'{run.name}: not finished' for run in unfinished]
            continue
        row = dict(seed=seed)
        for key, score_file in SCORE_FILES.items():
            scores = [files.scores(run, score_file) for run in member_runs]
            gaps = [why for _, why in scores if why]
            missing += gaps
            row[key] = None if gaps else \
                round(100 * ensemble.top_k(ensemble.fuse([s for s, _ in scores], 1.0), labels, 1), 2)
        per_seed.append(row)
    return dict(streams=list(members), weights=ensemble.weights_for(len(members), 1.0), per_seed=per_seed,
                best=mean_std([r['best'] for r in per_seed]), last=mean_std([r['last'] for r in per_seed]),
                missing=missing)


def paired_difference(by_seed, arms):
    """a - b per seed over the seeds both arms have (`by_seed`: arm -> seed -> {'best': top-1, 'last': top-1}, None
    where missing), its paired_stat, and each arm's mean over the same seeds (`arms`), so that the arms' means and
    their difference rest on the same n."""
    a, b = (by_seed[arm] for arm in arms)
    rows = [dict(seed=seed, **{key: difference(a[seed][key], b[seed][key]) for key in SCORE_FILES})
            for seed in a if seed in b]
    result = dict(per_seed=rows, **{key: paired_stat([r[key] for r in rows]) for key in SCORE_FILES})
    result['arms'] = {arm: {key: mean_std([by_seed[arm][r['seed']][key] for r in rows if r[key] is not None])
                            for key in SCORE_FILES} for arm in arms}
    return result


def difference(x, y):
    return None if x is None or y is None else round(x - y, 2)


def summarize(records, runs, benchmark, streams, arms, seeds, plan_text, labels, machine, data, text_dir=None):
    """summary.json: the runs (`runs`), each arm and stream over all its runs (`table`); per comparison 'a - b' the
    paired differences per stream (`paired`) and per fusion of streams (`fused_paired`), the per-class tables
    (`per_class`); each arm's fusions (`ensembles`). Without test `labels`, nothing that reads score files."""
    done = [r for r in records if r['status'] == 'done']
    comparisons = [(a, b) for a, b in COMPARISONS if a in arms and b in arms]
    paired, per_class, fused, fused_paired = {}, {}, {}, {}
    if labels is None:
        for a, b in comparisons:
            paired[f'{a} - {b}'] = {stream: paired_difference(records_by_seed(done, stream, (a, b)), (a, b))
                                    for stream in streams}
    else:
        files, label_list = ScoreFiles(labels[0]), np.asarray(labels[1])
        names = class_names(BENCHMARKS[benchmark].spec, int(np.max(label_list)) + 1, text_dir)
        for a, b in comparisons:
            key = f'{a} - {b}'
            paired[key], tables = compare_streams(done, runs, (a, b), streams, seeds, files, label_list, names)
            if tables:
                per_class[key] = tables
        sizes = [size for size, members in ENSEMBLES.items() if set(members) <= set(streams)]
        fused = {f'{arm}/{size}': fused_arm(runs, arm, ENSEMBLES[size], seeds, files, label_list)
                 for arm in arms for size in sizes}
        for a, b in comparisons:
            fused_paired[f'{a} - {b}'] = {str(size): compare_fusions(fused, (a, b), size) for size in sizes}
    return dict(benchmark=benchmark, schedule=plan_text, data=data, machine=machine, runs=records,
                table=arm_table(done, arms, streams), paired=paired, fused_paired=fused_paired, per_class=per_class,
                ensembles=fused)


def records_by_seed(done, stream, arms):
    """arm -> seed -> the finished run's record on `stream`."""
    return {arm: {r['seed']: r for r in done if r['arm'] == arm and r['stream'] == stream} for arm in arms}


def compare_streams(done, runs, arms, streams, seeds, files, labels, class_names):
    """One comparison on each stream: stream -> the paired difference with McNemar's tests per seed and what was
    left out, and stream -> the per-class table (streams without a paired seed left out)."""
    paired, per_class = {}, {}
    for stream in streams:
        pairs = {kind: paired_predictions(runs, stream, seeds, files, arms, score_file)
                 for kind, score_file in SCORE_FILES.items()}
        paired[stream] = dict(paired_difference(records_by_seed(done, stream, arms), arms),
                              mcnemar={kind: mcnemar_per_seed(p, labels) for kind, p in pairs.items()},
                              missing=list(dict.fromkeys(pairs['best']['missing'] + pairs['last']['missing'])))
        table = per_class_paired(pairs['last'], labels, class_names)
        if table:
            per_class[stream] = table
    return paired, per_class


def compare_fusions(fused, arms, size):
    """The paired difference of the two arms' fusions of `size` streams."""
    members = fused[f'{arms[0]}/{size}']['streams']
    seeds = {arm: {r['seed']: r for r in fused[f'{arm}/{size}']['per_seed']} for arm in arms}
    return dict(streams=members, **paired_difference(seeds, arms))


def arm_table(done, arms, streams):
    """Each arm and stream over all its finished runs (the paired sections use the paired seeds only)."""
    table = {}
    for arm in arms:
        for stream in streams:
            group = [r for r in done if r['arm'] == arm and r['stream'] == stream]
            table[f'{arm}/{stream}'] = dict(best=mean_std([r['best'] for r in group]),
                                            last=mean_std([r['last'] for r in group]),
                                            wall_s=mean_std([r['wall_s'] for r in group]))
    return table


def markdown(summary):
    s = summary
    lines = [f'# Reproduction: {s["benchmark"]}', '', data_line(s['data']), '', f'Schedule: {s["schedule"]}  ',
             *[f'Machine: {line}  ' for line in s["machine"] or ['no run started']], '',
             'Top-1 (%) on the test split, mean +- std over every finished run (sample std). "best" = the best epoch, '
             'as the release reports it (chosen on the test split); "last" = the last epoch.', '',
             '| arm / stream | best | last | wall time per run (min) |', '|---|---|---|---|']
    for key, row in s['table'].items():
        wall = row['wall_s']
        wall_text = '-' if wall is None else f'{wall["mean"] / 60:.1f}'
        lines.append(f'| {key} | {fmt(row["best"])} | {fmt(row["last"])} | {wall_text} |')
    for comparison, streams in s['paired'].items():
        lines += paired_markdown(comparison, streams, s['fused_paired'].get(comparison, {}))
    for tables in s['per_class'].values():
        for stream, table in tables.items():
            lines += per_class_markdown(stream, table)
    if s['ensembles']:
        lines += ['', '## Ensembles (ensemble.py\'s released weights)', '',
                  '| arm | streams | weights | best-epoch scores | last-epoch scores |', '|---|---|---|---|---|']
        for key, row in s['ensembles'].items():
            lines.append(f'| {key.split("/")[0]} | {" + ".join(row["streams"])} | {row["weights"]} | '
                         f'{fmt(row["best"])} | {fmt(row["last"])} |')
        missing = [why for row in s['ensembles'].values() for why in row['missing']]
        lines += ['', f'Seeds left out of a fusion: {"; ".join(missing)}.'] if missing else []
    lines += ['', '## Runs', '', '| run | status | best (epoch) | last | epochs | wall (min) |', '|---|---|---|---|---|---|']
    for r in s['runs']:
        name = f'{r["arm"]}/{r["stream"]}/seed{r["seed"]}'
        if r['status'] == 'done':
            lines.append(f'| {name} | done | {r["best"]:.2f} ({r["best_epoch"]}) | {r["last"]:.2f} | {r["epochs_done"]} '
                         f'| {r["wall_s"] / 60:.1f} |')
        else:
            why = f': `{r["reason"]}`' if r.get('reason') else ''
            lines.append(f'| {name} | {r["status"]}{why} | - | - | {r["epochs_done"]} | {r["wall_s"] / 60:.1f} |')
    return '\n'.join(lines) + '\n'


def data_line(data):
    samples = f', {data["test_samples"]} test samples' if data.get('test_samples') else ''
    if data['generated']:
        return (f'Data: **generated** (the quick schedule\'s small stand-in in the benchmark\'s format{samples}), '
                'not the real benchmark: these numbers test the tool, not the method.')
    return f'Data: the benchmark\'s own test split{samples}.'


def paired_markdown(comparison, streams, fused):
    """The paired differences of one comparison per stream and fusion, then McNemar's test per seed."""
    a, b = comparison.split(' - ')
    lines = ['', f'## Paired difference, {comparison} (same seed, weights and data stream)', '',
             f'Per seed {a} - {b}, best epoch (last epoch); mean +- std over seeds, the 95% t-interval of the mean '
             f'and the paired t-test\'s p; {a} and {b} over the same seeds; the seeds that 80% power would need '
             '(two-sided t-test at 5%, the observed mean taken as the true difference, the observed std as the '
             'spread).', '',
             f'| stream | per seed: best (last) | mean best | mean last | {a} / {b} on these seeds: best; last '
             f'| seeds for 80% power: best / last |', '|---|---|---|---|---|---|']
    rows = [(stream, row) for stream, row in streams.items()] + \
           [(f'fused {" + ".join(row["streams"])}', row) for row in fused.values()]
    for name, row in rows:
        per_seed = ', '.join(f'seed {r["seed"]}: {signed(r["best"])} ({signed(r["last"])})' for r in row['per_seed'])
        power = ' / '.join(str(row[key]['seeds_for_80_power'] or '-') if row[key] else '-' for key in SCORE_FILES)
        lines.append(f'| {name} | {per_seed or "-"} | {fmt(row["best"], signed=True)} | '
                     f'{fmt(row["last"], signed=True)} | {arms_text(row["arms"], (a, b))} | {power} |')
    tested = [(stream, row) for stream, row in streams.items() if 'mcnemar' in row]
    if tested:
        lines += ['', f'McNemar\'s exact test per seed on the test samples right in one arm only ({a} only : {b} '
                      'only, two-sided p), last epoch (best epoch):', '', '| stream | per seed |', '|---|---|']
        for stream, row in tested:
            best = {t['seed']: t for t in row['mcnemar']['best']}
            cells = [f'seed {t["seed"]}: {mcnemar_text(t)} ({mcnemar_text(best.get(t["seed"]))})'
                     for t in row['mcnemar']['last']]
            lines.append(f'| {stream} | {"; ".join(cells) or "-"} |')
    missing = [why for _, row in tested for why in row['missing']]
    return lines + (['', f'Left out (paired runs without their scores): {"; ".join(missing)}.'] if missing else [])


def arms_text(arms, names):
    """'86.07 / 84.05 (n=3); 85.70 / 83.33 (n=3)': each arm's mean over the paired seeds, best; last."""
    parts = []
    for key in SCORE_FILES:
        a, b = (arms[name][key] for name in names)
        parts.append('-' if a is None else f'{a["mean"]:.2f} / {b["mean"]:.2f} (n={a["n"]})')
    return '; '.join(parts)


def mcnemar_text(test):
    return '-' if test is None else f'{test["b"]} : {test["c"]}, p {p_text(test["p"])}'


def per_class_markdown(stream, table, most=20):
    """The per-class table; past `most` classes, the `most` // 2 largest gains and losses (all in summary.json)."""
    rows = table['classes']
    shown = rows if len(rows) <= most else \
        sorted(rows, key=lambda r: -r['mean'])[:most // 2] + sorted(rows, key=lambda r: -r['mean'])[-(most // 2):]
    seeds = ', '.join(map(str, table['seeds']))
    a, b = table['arms']
    lines = ['', f'## Per class, {a} - {b}: {stream} (last-epoch scores, seeds {seeds})', '',
             f'Top-1 (%) per class, mean over seeds; the difference per seed and the paired t-test\'s p over seeds; '
             f'"{a} / {b} only": the (test sample, seed) pairs right in that arm only, then per seed with McNemar\'s '
             f'exact p; "says instead": the wrong class that arm predicts most often for the class\'s (sample, '
             f'seed) pairs, how often, and how often the other arm predicts it. With many classes, some differences '
             f'of one sign arise by chance: a class is a lead to follow, not a finding.', '']
    if len(shown) < len(rows):
        lines += [f'The {most // 2} largest gains and losses of {len(rows)} classes (every class: summary.json).', '']
    lines += [f'| class | samples | {a} | {b} | {a} - {b} per seed | mean | {a} / {b} only | t-test p | per seed '
              f'(McNemar p) | {a} says instead | {b} says instead |', '|---|---|---|---|---|---|---|---|---|---|---|']
    for r in shown:
        per_seed = ', '.join(f'{d:+.1f}' for d in r['per_seed'])
        tests = ', '.join(f'{t["b"]} : {t["c"]} ({p_text(t["p"])})' for t in r['mcnemar'])
        lines.append(f'| {r["label"]} {r["name"]} | {r["samples"]} | {r["a"]:.1f} | {r["b"]:.1f} | {per_seed} | '
                     f'{r["mean"]:+.1f} | {r["a_only"]} / {r["b_only"]} | {p_text(r["t_test"]["p"])} | {tests} | '
                     f'{confusion_text(r["a_confused"], b)} | {confusion_text(r["b_confused"], a)} |')
    if table['missing']:
        lines += ['', f'Left out: {"; ".join(table["missing"])}.']
    return lines


def confusion_text(confusion, other_arm):
    """'donning 23 (lst 1)': the class said instead, how often, and how often the other arm says it."""
    if confusion is None:
        return '-'
    return f'{confusion["name"]} {confusion["count"]} ({other_arm} {confusion["other_count"]})'


def plot_curves(summary, path, streams, arms):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(streams), figsize=(5 * len(streams), 4), squeeze=False)
    for ax, stream in zip(axes[0], streams):
        for arm in arms:
            curves = [r['curve'] for r in summary['runs'] if r['arm'] == arm and r['stream'] == stream
                      and r['status'] == 'done']
            if not curves:
                continue
            length = min(len(c) for c in curves)
            data = np.array([c[:length] for c in curves])
            epochs = np.arange(1, length + 1)
            mean = data.mean(0)
            ax.plot(epochs, mean, marker='o' if length < 20 else None, label=f'{arm} (n={len(curves)})')
            if len(curves) > 1:
                ax.fill_between(epochs, data.min(0), data.max(0), alpha=0.2)
        ax.set_title(f'{summary["benchmark"]} {stream}: val top-1, mean and range over seeds', fontsize=9)
        ax.set_xlabel('epoch')
        ax.set_ylabel('top-1 (%)')
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    save_png(fig, path)


def machines_used(runs):
    """The distinct machine lines the runs recorded, in order of first use ("unrecorded" for runs without one)."""
    lines = []
    for run in runs:
        path = os.path.join(run.work_dir, MACHINE_FILE)
        if os.path.exists(path):
            with open(path) as f:
                lines += [line.strip() for line in f if line.strip()]
        elif os.path.isdir(run.work_dir):
            lines.append(f'unrecorded ({run.name})')
    return list(dict.fromkeys(lines))


def machine_line(opts, threads):
    import torch
    if torch.cuda.is_available() and opts.device != []:
        device = torch.cuda.get_device_name(0)
    else:
        device = platform.processor() or platform.machine()
        try:
            with open('/proc/cpuinfo') as f:
                device = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
        except (OSError, StopIteration):
            pass
        device = f'CPU ({os.cpu_count()} cores, {device})'
    return (f'{device}; PyTorch {torch.__version__}; {opts.jobs} run(s) at a time'
            + (f', {threads} thread(s) each' if threads else ''))


# ---------------------------------------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--benchmark', default='ucla', choices=sorted(BENCHMARKS))
    p.add_argument('--streams', nargs='+', default=['joint'], choices=STREAMS)
    p.add_argument('--arms', nargs='+', default=['lst', 'control'], choices=ARMS)
    p.add_argument('--seeds', nargs='+', type=int, default=[1, 2, 3])
    p.add_argument('--schedule', default='short', choices=list(SCHEDULES))
    p.add_argument('--jobs', type=int, default=1, help='runs at a time (CPU: the cores are split between them; '
                                                       'GPU: several processes share the device)')
    p.add_argument('--threads', type=int, default=None,
                   help='CPU threads per run (default: the cores this process may use, or OMP_NUM_THREADS when set '
                        'and lower, divided by --jobs)')
    p.add_argument('--num-worker', type=int, default=None,
                   help='data loader workers per run (default: 0 on the CPU, cores / jobs with a GPU)')
    p.add_argument('--out', required=True, help='output folder (runs, summary.md, summary.json, curves.png)')
    p.add_argument('--data-root', default=None, help='NW-UCLA: the all_sqe folder; NTU: the folder of the .npz files '
                                                     '(default: the configs\' paths; quick: generated data)')
    p.add_argument('--ann-file', default=None,
                   help='custom-2d / custom-3d: your annotation file (pyskl\'s format, splits train and val)')
    p.add_argument('--text-dir', default=None, help='custom-2d / custom-3d: your descriptions (custom_*.txt)')
    p.add_argument('--num-class', type=int, default=None, help='custom-2d / custom-3d: your number of classes')
    p.add_argument('--head', default=None, help=f'text encoder for the LST arms (default: the config\'s, ViT-B/32, '
                                                f'whose weights are downloaded; with --schedule quick, {QUICK_HEAD}, '
                                                f'which works offline)')
    p.add_argument('--device', type=int, nargs='*', default=None, help='GPU index(es) passed to every run; no index: the CPU')
    p.add_argument('--text-cache-dir', default=None, help='passed to every run (the frozen text feature banks)')
    p.add_argument('--summary-only', action='store_true', help='train nothing; summarise what has finished')
    p.add_argument('--time-limit', type=float, default=None,
                   help='seconds: then no run starts and running ones are stopped (they resume next time)')
    p.add_argument('--summary-dir', default=None, help='where summary.md, summary.json and curves.png go '
                                                       '(default: --out)')
    p.add_argument('--export-results', default=None, metavar='DIR',
                   help='copy the small files the summary reads (metrics, configs, machine lines, exit records, '
                        'score files; no weights) into DIR, same layout, with the test labels: '
                        '`--summary-only --out DIR` then makes the same summary without the runs or the data')
    p.add_argument('extra', nargs=argparse.REMAINDER,
                   help='after --: more arguments for every run, e.g. -- --amp False')
    opts = p.parse_args(argv)
    opts.extra = opts.extra[1:] if opts.extra[:1] == ['--'] else opts.extra
    if opts.jobs < 1:
        p.error(f'--jobs {opts.jobs}: expected at least 1')
    if opts.time_limit is not None and opts.time_limit < 0:
        p.error(f'--time-limit {opts.time_limit}: expected seconds >= 0')
    if BENCHMARKS[opts.benchmark].data is None and not opts.summary_only and \
            not (opts.ann_file and opts.num_class and opts.text_dir):
        p.error(f'--benchmark {opts.benchmark} trains on your data: give --ann-file, --num-class and --text-dir')
    if opts.schedule == 'quick' and opts.head is None:    # the config's CLIP needs a download: the first check fails
        opts.head = QUICK_HEAD
    return opts


def usable_cores():
    """The cores this process may run on (its affinity: a container's or taskset's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                                # not on Linux
        return os.cpu_count() or 1


def default_threads(jobs):
    """CPU threads per run: the usable cores, or OMP_NUM_THREADS when it is set and lower, split between the runs."""
    cores = usable_cores()
    limit = os.environ.get('OMP_NUM_THREADS', '').strip()
    if limit.isdigit() and int(limit) > 0:
        cores = min(cores, int(limit))
    return max(1, cores // jobs)


def file_in_the_way(opts):
    """The first of the folders asked for that names an existing file: 'flag path', or None."""
    for flag, path in (('--out', opts.out), ('--summary-dir', opts.summary_dir),
                       ('--export-results', opts.export_results)):
        if path and os.path.exists(path) and not os.path.isdir(path):
            return f'{flag} {path}'
    return None


def main(argv=None):
    opts = parse(argv)
    deadline = None if opts.time_limit is None else time.time() + opts.time_limit
    in_the_way = file_in_the_way(opts)
    if in_the_way:                                        # before anything is written
        print(f'error: {in_the_way} is a file: expected a folder (or a path that does not exist yet)',
              file=sys.stderr)
        return 2
    out = os.path.abspath(opts.out)
    if opts.export_results and os.path.abspath(opts.export_results) == out:
        print(f'error: --export-results {opts.export_results} is --out: expected another folder', file=sys.stderr)
        return 2
    import torch
    gpu = torch.cuda.is_available() and opts.device != []
    threads = opts.threads or (None if gpu else default_threads(opts.jobs))
    if opts.num_worker is None:
        opts.num_worker = max(1, usable_cores() // opts.jobs) if gpu else 0
    data_root = os.path.abspath(opts.data_root) if opts.data_root else None
    exported = os.path.exists(os.path.join(out, LABELS_FILE))      # an --export-results folder: no data needed
    generated = opts.schedule == 'quick' and data_root is None
    if generated and not (opts.summary_only and exported):
        data_root = generated_data(opts.benchmark, out)
    runs, commands = {}, {}
    plans = {}
    for stream in opts.streams:
        for seed in opts.seeds:
            for arm in opts.arms:
                run = Run(arm, stream, seed, out)
                argv, plan = command(run, opts.benchmark, opts.schedule, opts, data_root)
                runs[arm, stream, seed], commands[arm, stream, seed], plans[arm, stream] = run, argv, plan
    machine = machine_line(opts, threads)
    todo = [key for key, run in runs.items() if not run.finished(plans[key[:2]]['num_epoch'])]
    # a finished run is skipped, so it must be the experiment this command asks for, or the summary would mix them
    changed = [f'{runs[key].name}: {"; ".join(diff)}' for key in runs if key not in todo
               for diff in [runs[key].changed_settings(commands[key])] if diff]
    if changed:
        print(f'error: {len(changed)} finished run(s) in {out} were trained with other settings than this command '
              f'asks ({changed[0]}): give the settings they ran with, or another --out', file=sys.stderr)
        return 2
    returncodes = {}
    if todo and not opts.summary_only:
        print(f'{len(todo)} of {len(runs)} runs to train ({len(runs) - len(todo)} finished already) in {out}')
        with stop_on_signals():
            try:
                train(todo, runs, commands, opts.jobs, threads, deadline, machine, returncodes)
            except KeyboardInterrupt:
                stopped = sum(code == INTERRUPTED for code in returncodes.values())
                print(f'interrupted: {stopped} run(s) stopped, they resume from their last finished epoch; '
                      f'the same command continues', file=sys.stderr)
                return 130
        cut = sum(code in (STOPPED, NOT_STARTED) for code in returncodes.values())
        if cut:
            print(f'time limit reached: {cut} run(s) stopped or not started; the same command continues them')
    elif not todo:
        print(f'all {len(runs)} runs finished already in {out}: summarising')
    for key, run in runs.items():
        run.finished_flag = run.finished(plans[key[:2]]['num_epoch'])
    records = [run_record(runs[key], plans[key[:2]]['num_epoch'], returncodes.get(key)) for key in runs]
    labels = summary_labels(opts.benchmark, out, data_root, runs.values())
    data = dict(generated=generated, test_samples=len(labels[1]) if labels else None)
    summary = summarize(records, runs, opts.benchmark, opts.streams, opts.arms, opts.seeds,
                        schedule_text(plans, opts), labels, machines_used(runs.values()), data, opts.text_dir)
    write_summary(summary, os.path.abspath(opts.summary_dir or out), opts)
    if opts.export_results:
        count = export_results(runs.values(), os.path.abspath(opts.export_results), labels)
        print(f'exported: the small files of {count} run(s) to {opts.export_results}')
    failed = [r for r in records if r['status'] in ('failed', 'unreadable')]
    return 1 if failed else 0


def summary_labels(benchmark, out, data_root, runs):
    """The test split's (names, labels): an exported folder's test_labels.json, else the data's; None without."""
    exported = os.path.join(out, LABELS_FILE)
    try:
        if os.path.exists(exported):
            content = read_json(exported, ('names', 'labels'))
            return content['names'], content['labels']
        return test_labels(benchmark, data_root, runs)
    except (OSError, ValueError, SystemExit) as exc:
        print(f'ensembles, McNemar\'s tests and per-class tables skipped: no test labels ({exc})')
        return None


def write_summary(summary, folder, opts):
    write_json(os.path.join(folder, 'summary.json'), summary)
    write_text(os.path.join(folder, 'summary.md'), markdown(summary))
    plot_curves(summary, os.path.join(folder, 'curves.png'), opts.streams, opts.arms)
    print(markdown(summary))
    print(f'written: {folder}/summary.md, summary.json, curves.png')


def export_results(runs, folder, labels):
    """Each run's EXPORTED_FILES into <folder>/<arm>/<stream>/seed<k> (every run with a folder, so that failed and
    unfinished runs read the same), and the test labels into <folder>/test_labels.json; returns the runs copied."""
    import shutil
    copied = 0
    for run in runs:
        if not os.path.isdir(run.work_dir):
            continue
        target = Run(run.arm, run.stream, run.seed, folder).work_dir
        os.makedirs(target, exist_ok=True)
        for name in EXPORTED_FILES:
            source, copy = os.path.join(run.work_dir, name), os.path.join(target, name)
            if os.path.exists(source):
                shutil.copyfile(source, copy)
            elif os.path.exists(copy):                    # an earlier export's file that the run no longer has
                os.remove(copy)
        copied += 1
    if labels is not None:
        names, label_list = labels
        content = dict(names=[str(n) for n in names], labels=[int(k) for k in label_list])
        write_json(os.path.join(folder, LABELS_FILE), content, indent=None)
    return copied


def train(todo, runs, commands, jobs, threads, deadline, machine, returncodes):
    """The runs in `todo`, `jobs` at a time, their return codes into `returncodes`. On Ctrl-C or SIGTERM
    (KeyboardInterrupt here) the running runs are stopped cleanly and no other starts; then it re-raises."""
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool, \
            tqdm(total=len(todo), desc='runs', unit='run') as bar:
        futures = {pool.submit(execute, runs[key], commands[key], threads, deadline, machine): key for key in todo}
        try:
            for future in concurrent.futures.as_completed(futures):
                key = futures[future]
                returncodes[key] = future.result()
                tqdm.write(f'{runs[key].name}: {outcome(returncodes[key], runs[key])}')
                bar.update()
        except KeyboardInterrupt:
            STOP.set()
            for future in futures:
                future.cancel()
            for future, key in futures.items():                 # each running one: SIGINT, then a kill
                if not future.cancelled():
                    returncodes[key] = future.result()
            raise


@contextlib.contextmanager
def stop_on_signals():
    """SIGTERM stops the runs like Ctrl-C does (otherwise they would go on without this process), and Ctrl-C works
    even when this process was started from a background job, which inherits SIGINT ignored."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    STOP.clear()
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def outcome(returncode, run):
    if returncode == 0:
        return 'done'
    if isinstance(returncode, int):
        return f'FAILED ({run.last_log_line()})'
    return returncode


def schedule_text(plans, opts):
    parts = []
    for (arm, stream), plan in sorted(plans.items()):
        repeat = f', repeat {plan["repeat"]}' if plan['repeat'] else ''
        parts.append(f'{arm}/{stream}: {plan["num_epoch"]} epochs{repeat}, lr steps {plan["step"]}, '
                     f'warm-up {plan["warm_up_epoch"]}, batch {plan["batch_size"]}')
    head = f'; text encoder {opts.head}' if opts.head else ''
    return f'{opts.schedule} ({"; ".join(dict.fromkeys(parts))}){head}'


if __name__ == '__main__':
    sys.exit(main())
