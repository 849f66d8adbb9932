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
samples); quick = 3 tiny epochs on generated data (unless --data-root is given; custom benchmarks: your
--ann-file), for tests.

On your own data (custom-2d, custom-3d) every run's arguments, data, classes and descriptions are checked with the
training's own checks before the first run starts: a mistake is one `error:` line (exit status 2), nothing written.
Interrupted runs resume, finished runs are skipped; at the end <out>/summary.md, summary.json and curves.png are
written from whatever has finished (failed runs are listed with their last log line, kept in each run's exit.json so
that --summary-only says it too). With --time-limit, no run starts after that many seconds and running ones are
stopped then: they resume from their last finished epoch next time. Ctrl-C or SIGTERM stops the running runs the same
way (exit status 130) and starts no other.

The summary compares each pair of arms seed by seed (tools/paired_stats.py): per stream and per fusion of streams the
difference with its 95% t-interval, t-test p and the seeds that 80% power would need; McNemar's exact test per seed on
the test samples right in one arm only; per class the same, with the class each arm most often predicts instead.
ctrgcn, trained from its own weights and recipe, is compared with lst and control unpaired: the difference of the
means over all runs, with Welch's t-interval.
--export-results DIR copies the small files it reads (no weights) so that `--summary-only --out DIR` remakes it
(with --protocol too).

--protocol FILE ... runs the seen/unseen protocol instead (config/zero-shot/*.yaml, tools/reproduce_protocol.py):
per split, arm (lst, lst_names, lst_shuffled), stream and seed, training on the seen classes, the zero-shot
test of its last epoch, and with --shots K ... (0: zero-shot alone) K-shot training on the unseen classes from those
weights, the classifier from their text and at random (--few-shot-init); summary.md and summary.json give unseen
top-1 and the harmonic mean with their intervals, chance beside them.

    python tools/reproduce.py --protocol config/zero-shot/ucla-7-3-a.yaml config/zero-shot/ucla-7-3-b.yaml \\
        config/zero-shot/ucla-7-3-c.yaml --arms lst lst_names --seeds 1 2 --shots 0 1 5 --schedule short \\
        --head all-MiniLM-L6-v2 --out work_dir/reproduce/ucla-zero-shot
"""
import argparse
import concurrent.futures
import contextlib
import dataclasses
import math
import os
import platform
import signal
import sys
import threading
import time

import yaml
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

import ensemble  # noqa: E402
import reproduce_protocol as protocol  # noqa: E402
import specs  # noqa: E402
from engine.report import METRICS_FILE  # noqa: E402
from lstbase import errors  # noqa: E402
from lstbase.arguments import ArgumentParser  # noqa: E402
from lstbase.files import plain, read_json, write_json  # noqa: E402
from lstbase.processes import run_until, usable_cores  # noqa: E402
from reproduce_summary import (EXIT_FILE, FOLDER_DELETED, INTERRUPTED, MACHINE_FILE, NOT_STARTED,  # noqa: E402
                               SCORE_FILES, STOPPED, STREAMS, Run, machines_used, run_record, summarize,
                               write_summary)

BENCHMARKS = specs.REPRODUCIBLE            # --benchmark name: its configs, data and spec
ARMS = ('lst', 'control', 'ctrgcn', 'lst_te', 'lst_shuffled', 'lst_names')
ARM_ARGS = {'lst': [], 'control': ['--loss-alpha', '0'], 'ctrgcn': [], 'lst_te': ['--te-lr-ratio', '1'],
            'lst_names': ['--part-text', 'False'],
            'lst_shuffled': []}                                   # + --text-dir <out>/text-shuffled (command)
SHUFFLED_TEXT = 'text-shuffled'                                  # under --out: the lst_shuffled arm's descriptions
SCHEDULES = {'full': 1.0, 'medium': 22 / 110, 'short': 6 / 110, 'quick': None}
QUICK = dict(num_epoch=3, step=[2], warm_up_epoch=1, batch_size=16, repeat=1)
STOP_GRACE_S = 15                          # a stopped run gets this long to exit after SIGINT, then it is killed
POLL_S = 1.0                               # how often a waiting run looks at the time limit and the stop request
STOP = threading.Event()                   # set by Ctrl-C / SIGTERM: running runs are stopped, no other starts
# what --export-results copies of each run: all the summary reads (the checkpoints and weights stay behind); the
# last two are a protocol run's zero-shot test
EXPORTED_FILES = (METRICS_FILE, 'config.yaml', MACHINE_FILE, EXIT_FILE, *SCORE_FILES.values(), 'zero_shot.json',
                  'zero_shot_scores.pkl')
LABELS_FILE = 'test_labels.json'           # in an exported folder: the test split's names and labels (no data needed)
QUICK_HEAD = 'all-MiniLM-L6-v2'            # the quick schedule's text encoder: its weights come with a package


# ---------------------------------------------------------------------------------------------------- runs
def changed_settings(run, argv):
    """How the experiment `run`'s folder holds differs from the one `argv` asks for (the trainer's EXPERIMENT_KEYS,
    file locations aside); empty when it does not, or when nothing was trained yet."""
    from engine.args import load_config, parse_args
    from engine.checkpoint import EXPERIMENT_KEYS, without_paths
    path = os.path.join(run.work_dir, 'config.yaml')
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


def read_yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def command(run, benchmark, schedule, opts, data_root, plan=None):
    """The run's training command and schedule (`plan`: another than `schedule`'s)."""
    cfg_path = config_path(benchmark, run.arm, run.stream)
    config = read_yaml(cfg_path)
    plan = plan or schedule_of(config, schedule)
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
    argv += device_args(opts)
    if opts.text_cache_dir:
        argv += ['--text-cache-dir', opts.text_cache_dir]
    if run.arm == 'lst_shuffled':
        argv += ['--text-dir', shuffled_text(opts.out, benchmark, opts.num_class or config['model_args']['num_class'],
                                             opts.text_dir)]
    elif opts.text_dir and run.arm != 'ctrgcn':
        argv += ['--text-dir', os.path.abspath(opts.text_dir)]
    return argv + ARM_ARGS[run.arm] + opts.extra, plan


def device_args(opts):
    """--device for every run: the GPUs asked, or the CPU for `--device` with no index."""
    if opts.device is None:
        return []
    return ['--device', *(map(str, opts.device) if opts.device else ['cpu'])]


def check_runs(benchmark, commands):
    """Before any run on your own data starts, each arm and stream's command through the training's own checks
    (engine.check: its arguments, model, every sample, labels, descriptions), in this process: a mistake is one
    error, not a table of failed runs. (The released benchmarks' data comes from the project's preprocessing.)"""
    from engine import check
    script = specs.get(BENCHMARKS[benchmark].spec).script
    family = script[len('main_multipart_'):-len('.py')] if script.startswith('main_multipart_') else None
    for argv in commands.values():
        check(family, argv[argv.index('--config'):])


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
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--benchmark', default=None, choices=sorted(BENCHMARKS),
                   help='default ucla; with --protocol, the one its files name')
    p.add_argument('--streams', nargs='+', default=['joint'], choices=STREAMS)
    p.add_argument('--arms', nargs='+', default=None, choices=ARMS,
                   help='default lst control; with --protocol, lst')
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
                        'score files, zero-shot results; no weights) into DIR, same layout, with the test labels: '
                        '`--summary-only --out DIR` then makes the same summary without the runs or the data')
    p.add_argument('--protocol', nargs='+', metavar='FILE',
                   help='run the seen/unseen protocol of these files (config/zero-shot/*.yaml) instead')
    p.add_argument('--shots', type=int, nargs='+', default=[0],
                   help='with --protocol: K samples of each unseen class to train on after the zero-shot test (0: '
                        'none, the default)')
    p.add_argument('--few-shot-init', nargs='+', default=list(protocol.INITS), choices=protocol.INITS,
                   help='with --protocol --shots: the new classifier from the unseen classes\' descriptions, at '
                        'random, or both (the default)')
    p.add_argument('extra', nargs=argparse.REMAINDER,
                   help='after --: more arguments for every run, e.g. -- --amp False')
    opts = p.parse_args(argv)
    opts.extra = opts.extra[1:] if opts.extra[:1] == ['--'] else opts.extra
    check_values(p, opts)
    check_protocol(p, opts)
    opts.benchmark = opts.benchmark or 'ucla'
    opts.arms = opts.arms or ['lst', 'control']
    if opts.ann_file and not os.path.isfile(opts.ann_file):
        p.error(f'--ann-file {opts.ann_file}: no such file')
    if opts.text_dir and not os.path.isdir(opts.text_dir):
        p.error(f'--text-dir {opts.text_dir}: no such folder')
    if BENCHMARKS[opts.benchmark].data is None and not opts.summary_only and \
            not (opts.ann_file and opts.num_class and opts.text_dir):
        p.error(f'--benchmark {opts.benchmark} trains on your data: give --ann-file, --num-class and --text-dir')
    if opts.schedule == 'quick' and opts.head is None:    # the config's CLIP needs a download: the first check fails
        opts.head = QUICK_HEAD
    return opts


def check_values(p, opts):
    """Numbers in their ranges: they are passed to every run, which would stop on each of them."""
    least = dict(jobs=1, threads=1, num_worker=0, num_class=2)
    for key, value in least.items():
        given = getattr(opts, key)
        if given is not None and given < value:
            p.error(f'--{key.replace("_", "-")} {given}: expected at least {value}')
    if any(not 0 <= seed < 2 ** 32 for seed in opts.seeds):
        p.error(f'--seeds {" ".join(map(str, opts.seeds))}: expected seeds in 0 .. 2**32 - 1')
    if opts.time_limit is not None and not (math.isfinite(opts.time_limit) and opts.time_limit >= 0):
        p.error(f'--time-limit {opts.time_limit}: expected seconds >= 0')


def check_protocol(p, opts):
    """--protocol's files read, their benchmark and arms that train a text space; the other mode's options refused."""
    if not opts.protocol:
        if opts.shots != [0]:
            p.error('--shots: with --protocol')
        return
    try:
        opts.splits = protocol.read_splits(opts.protocol)
    except (OSError, ValueError) as exc:
        p.error(str(exc))
    if opts.benchmark not in (None, opts.splits[0].benchmark):
        p.error(f'--benchmark {opts.benchmark}: the --protocol files are of {opts.splits[0].benchmark}')
    opts.benchmark = opts.splits[0].benchmark
    opts.arms = opts.arms or ['lst']
    foreign = [arm for arm in opts.arms if arm not in protocol.ARMS]
    if foreign:
        p.error(f'--arms {foreign[0]}: --protocol takes {", ".join(protocol.ARMS)} (control and ctrgcn train no text '
                f'space to score unseen classes in; lst_te\'s trained text encoder is not in its weights files)')
    if min(opts.shots) < 0:
        p.error(f'--shots {" ".join(map(str, opts.shots))}: expected samples per class, 0 for none')


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
    generated = opts.schedule == 'quick' and data_root is None and BENCHMARKS[opts.benchmark].data is not None
    if generated and not (opts.summary_only and (exported or opts.protocol)):    # a summary reads no data
        data_root = generated_data(opts.benchmark, out)
    if opts.protocol:
        return protocol_main(opts, out, data_root, threads, deadline, generated)
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
    if todo and not opts.summary_only and BENCHMARKS[opts.benchmark].data is None:      # your own data
        check_runs(opts.benchmark, {key[:2]: commands[key] for key in todo})
    # a finished run is skipped, so it must be the experiment this command asks for, or the summary would mix them
    changed = [f'{runs[key].name}: {"; ".join(diff)}' for key in runs if key not in todo
               for diff in [changed_settings(runs[key], commands[key])] if diff]
    if refused_changed(changed, out):
        return 2
    returncodes = {}
    if todo and not opts.summary_only:
        print(f'{len(todo)} of {len(runs)} runs to train ({len(runs) - len(todo)} finished already) in {out}')
        if not train_until_stopped(todo, runs, commands, opts.jobs, threads, deadline, machine, returncodes):
            return 130
    elif not todo:
        print(f'all {len(runs)} runs finished already in {out}: summarising')
    for key, run in runs.items():
        run.finished_flag = run.finished(plans[key[:2]]['num_epoch'])
    records = [run_record(runs[key], plans[key[:2]]['num_epoch'], returncodes.get(key)) for key in runs]
    labels = summary_labels(opts.benchmark, out, data_root, runs.values())
    data = dict(generated=generated, test_samples=len(labels[1]) if labels else None)
    summary = summarize(records, runs, opts.benchmark, opts.streams, opts.arms, opts.seeds,
                        schedule_text(plans, opts), labels, machines_used(runs.values()), data, opts.text_dir)
    write_summary(summary, os.path.abspath(opts.summary_dir or out), opts.streams, opts.arms)
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


def export_results(runs, folder, labels):
    """Each run's EXPORTED_FILES into <folder>/<arm>/<stream>/seed<k> (every run with a folder, so that failed and
    unfinished runs read the same), and the test labels into <folder>/test_labels.json; returns the runs copied."""
    import shutil
    copied = 0
    for run in runs:
        if not os.path.isdir(run.work_dir):
            continue
        target = run.relocated(folder).work_dir
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


def refused_changed(changed, out):
    """Whether finished runs were trained with other settings than the command asks (`changed`: 'run: how'), said
    in one error line: a finished run is skipped, so the summary would mix two experiments."""
    if changed:
        print(f'error: {len(changed)} finished run(s) in {out} were trained with other settings than this command '
              f'asks ({changed[0]}): give the settings they ran with, or another --out', file=sys.stderr)
    return bool(changed)


def train_until_stopped(todo, runs, commands, jobs, threads, deadline, machine, returncodes, job=None):
    """train(), telling what a time limit left; False when Ctrl-C or SIGTERM stopped it."""
    with stop_on_signals():
        try:
            train(todo, runs, commands, jobs, threads, deadline, machine, returncodes, job)
        except KeyboardInterrupt:
            stopped = sum(code == INTERRUPTED for code in returncodes.values())
            print(f'interrupted: {stopped} run(s) stopped, they resume from their last finished epoch; the same '
                  f'command continues', file=sys.stderr)
            return False
    cut = sum(code in (STOPPED, NOT_STARTED) for code in returncodes.values())
    if cut:
        print(f'time limit reached: {cut} run(s) stopped or not started; the same command continues them')
    return True


def train(todo, runs, commands, jobs, threads, deadline, machine, returncodes, job=None):
    """The runs in `todo`, `jobs` at a time, their return codes into `returncodes`; `job` (default: execute) runs
    one. On Ctrl-C or SIGTERM (KeyboardInterrupt here) the running runs are stopped cleanly and no other starts;
    then it re-raises."""
    job = job or execute
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool, \
            tqdm(total=len(todo), desc='runs', unit='run') as bar:
        futures = {pool.submit(job, runs[key], commands[key], threads, deadline, machine): key for key in todo}
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


# ---------------------------------------------------------------------------------------------------- protocol
@dataclasses.dataclass
class Step:
    """One command of a protocol chain: its run, its command line (made when it starts: it may name weights that
    an earlier step writes), whether it has been done, whether it trains (and so records the machine)."""
    run: protocol.ProtocolRun
    argv: object
    done: object
    trains: bool = True


def protocol_chain(split, arm, stream, seed, opts, out, data_root, runs, plans):
    """The steps of one split, arm, stream and seed (reproduce_protocol's docstring); its runs and their epochs into
    `runs` and `plans`."""
    trained = protocol.ProtocolRun(split.name, arm, stream, seed, out)
    argv, plan = command(trained, split.benchmark, opts.schedule, opts, data_root)
    argv += ['--unseen-classes', *map(str, split.unseen)]
    epochs = plan['num_epoch']
    runs[split.name, arm, stream, seed, 0, None], plans[split.name, arm, stream, seed, 0, None] = trained, plan
    steps = [Step(trained, lambda: argv, lambda: trained.finished(epochs)),
             Step(trained, lambda: zero_shot_test(trained, epochs, split.benchmark, opts),
                  lambda: trained.zero_shot(epochs) is not None, trains=False)]
    base_lr = read_yaml(config_path(split.benchmark, arm, stream))['base_lr'] * protocol.FEW_SHOT_LR
    for shots in (k for k in opts.shots if k):
        for init in opts.few_shot_init:
            run = protocol.ProtocolRun(split.name, arm, stream, seed, out, shots, init)
            few = protocol.few_shot_plan(shots, len(split.unseen), opts.schedule)
            runs[run.split, arm, stream, seed, shots, init] = run
            plans[run.split, arm, stream, seed, shots, init] = few
            steps.append(Step(run, few_shot_command(run, split, trained, epochs, few, base_lr, opts, data_root),
                              lambda run=run, few=few: run.finished(few['num_epoch'])))
    return steps


def zero_shot_test(run, epochs, benchmark, opts):
    """The test phase of a protocol run's last epoch: its zero-shot measures."""
    script = specs.get(BENCHMARKS[benchmark].spec).script
    return [sys.executable, os.path.join(ROOT, script), '--config', os.path.join(run.work_dir, 'config.yaml'),
            '--work-dir', run.work_dir, '--phase', 'test', '--weights', run.last_weights(epochs),
            '--num-worker', str(opts.num_worker)] + device_args(opts)


def few_shot_command(run, split, trained, epochs, plan, base_lr, opts, data_root):
    """A K-shot run's command line, made once `trained` has its last epoch's weights (in an exported folder, which
    has none, a name that only the comparison of settings reads, paths aside)."""
    def argv():
        weights = trained.last_weights(epochs) or os.path.join(trained.work_dir, f'runs-{epochs}.pt')
        return command(run, split.benchmark, opts.schedule, opts, data_root, dict(plan))[0] + [
            '--classes', *map(str, split.unseen), '--weights', weights,
            '--init-classifier', run.init, '--base-lr', str(base_lr),
            '--train-feeder-args', repr(dict(shots=run.shots, shots_seed=run.seed))]
    return argv


def run_chain(first, steps, threads, deadline, machine):
    """A protocol chain's steps not done yet, in order, until one fails: its return code (0 when all are done)."""
    for step in steps:
        if step.done():
            continue
        code = execute(step.run, step.argv(), threads, deadline, machine if step.trains else None)
        if code != 0:
            return code
    return 0


def protocol_main(opts, out, data_root, threads, deadline, generated):
    """tools/reproduce.py --protocol: the chains to their ends, then summary.md and summary.json."""
    runs, plans, chains = {}, {}, {}
    for split in opts.splits:
        for stream in opts.streams:
            for arm in opts.arms:
                for seed in opts.seeds:
                    chains[split.name, arm, stream, seed] = protocol_chain(split, arm, stream, seed, opts, out,
                                                                           data_root, runs, plans)
    todo = [key for key, steps in chains.items() if not all(step.done() for step in steps)]
    changed = [f'{step.run.name}: {"; ".join(diff)}' for steps in chains.values() for step in steps
               if step.trains and step.done() for diff in [changed_settings(step.run, step.argv())] if diff]
    if refused_changed(changed, out):
        return 2
    if todo and not opts.summary_only:
        print(f'{len(todo)} of {len(chains)} chains of runs to go on with in {out}')
        first_runs = {key: steps[0].run for key, steps in chains.items()}
        if not train_until_stopped(todo, first_runs, chains, opts.jobs, threads, deadline,
                                   machine_line(opts, threads), {}, job=run_chain):
            return 130
    opts.schedule_text = protocol_schedule_text(plans, opts)
    data = protocol_data_line(generated, data_root)
    classes = specs.get(BENCHMARKS[opts.benchmark].spec).num_class or opts.num_class
    summary = protocol.summarize(runs, plans, opts.splits, opts, classes, machines_used(runs.values()), data)
    protocol.write(summary, os.path.abspath(opts.summary_dir or out))
    if opts.export_results:
        count = export_results(runs.values(), os.path.abspath(opts.export_results), None)
        print(f'exported: the small files of {count} run(s) to {opts.export_results}')
    return 1 if any(r['status'] == 'failed' for r in summary['runs']) else 0


def protocol_schedule_text(plans, opts):
    """The seen classes' schedule (as schedule_text says it) and the K-shot runs'."""
    seen = schedule_text({key[1:3]: plan for key, plan in plans.items() if not key[4]}, opts)
    few = protocol.QUICK_FEW_SHOT if opts.schedule == 'quick' else protocol.FEW_SHOT
    return (f'seen classes: {seen}; K-shot: {few["num_epoch"]} epochs of {few["repeat"]} x the K samples of each '
            f'unseen class (one batch of them), lr {protocol.FEW_SHOT_LR} x the config\'s, step at {few["step"]}')


def protocol_data_line(generated, data_root):
    if generated:
        return ('Data: **generated** (the quick schedule\'s small stand-in), not the real benchmark: these numbers '
                'test the tool, not the method.')
    return f'Data: {data_root}.' if data_root else 'Data: the configs\' data paths.'


def schedule_text(plans, opts):
    parts = []
    for (arm, stream), plan in sorted(plans.items()):
        repeat = f', repeat {plan["repeat"]}' if plan['repeat'] else ''
        parts.append(f'{arm}/{stream}: {plan["num_epoch"]} epochs{repeat}, lr steps {plan["step"]}, '
                     f'warm-up {plan["warm_up_epoch"]}, batch {plan["batch_size"]}')
    head = f'; text encoder {opts.head}' if opts.head else ''
    return f'{opts.schedule} ({"; ".join(dict.fromkeys(parts))}){head}'


if __name__ == '__main__':
    sys.exit(errors.run(main))
