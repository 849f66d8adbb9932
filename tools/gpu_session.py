#!/usr/bin/env python
"""One time-boxed job on a bare GPU machine: the GPU benchmark and the full-schedule NW-UCLA reproduction,
resumable across jobs.

Run through tools/gpu_session.sh (it installs the carried wheels first); its header says how to run a job.

    bash tools/gpu_session.sh --prepare [--release-dir ../LST]   # here: fill .gpu/, the folder a job takes along
    bash tools/gpu_session.sh [--budget 540] [--out DIR]          # there: bench, reproduce, pack into $OUT
    bash tools/gpu_session.sh --restore FILES_OR_FOLDER           # here: what came back, for reading and the next job
    bash tools/gpu_session.sh --smoke --out DIR                   # the same parts on the CPU, tiny (the suite's test)

Parts, each stopping when its share of --budget is spent and keeping what it has:
  bench      bench/run.py --device cuda: train step (fp32, fp16 and bf16 AMP, channels-last), inference, GPU memory,
             DataLoader vs step rate, torch.compile, the NTU-120 X-Sub epoch and the goals; skipped when an
             earlier job's bench is in the state (--bench-again measures again);
  reproduce  tools/reproduce.py --schedule full on NW-UCLA, in this order: joint lst + control seeds 1-3, the four
             LST streams seed 1 (4-stream ensemble), CTR-GCN joint; --jobs runs share the GPU; at the end of the
             budget running runs are stopped and resume from their last epoch in the next job;
  pack       into --out, at most 8 files of 15 MiB, 62 MiB in all: session.md; results.tar.gz.partNN (every
             log, summary, score file and bench table: what to read); state.tar.gz.partNN (what the next job
             resumes from: those files plus the checkpoint and best-epoch weights of unfinished runs, the most
             advanced first, up to --state-mb); weights.tar.gz.partNN (best-epoch weights of runs finished in
             this job, as room allows).
"""
import argparse
import glob
import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight'), os.path.join(ROOT, 'tools')]

import reproduce  # noqa: E402
from lstbase.arguments import ArgumentParser  # noqa: E402
from lstbase.files import atomic_path, read_json, write_json  # noqa: E402
from lstbase.processes import run_until  # noqa: E402
from engine.checkpoint import STATE_FILE  # noqa: E402
from engine.report import read_metrics  # noqa: E402

CARRY = os.path.join(ROOT, '.gpu')             # what a job takes along (git-ignored): wheels, data, banks, state
HEAD = 'all-MiniLM-L6-v2'                     # the text encoder of the LST arms: no download, banks built here
WHEELS = ('ftfy', 'wcwidth')                  # what the GPU machine lacks
DEVICE_PYTHON = ['--python-version', '3.12', '--implementation', 'cp', '--platform', 'manylinux_2_17_x86_64',
                 '--platform', 'manylinux2014_x86_64', '--platform', 'any']         # the GPU machine's python3
RELEASE_FILES = ('model', 'text', 'feeders/tools.py', 'Text_Prompt.py', 'tools.py')      # what bench/ imports
UCLA_DATA = os.path.join(ROOT, 'data', 'NW-UCLA')
MiB = 2 ** 20
PART_BYTES, OUT_FILES, OUT_BYTES = 15 * MiB, 8, 62 * MiB
MAX_STATE_MB = 56                             # 4 parts: with results and session.md, 6 of the 8 files
PACKED = ('bench', 'logs', 'reproduce')       # what of the work folder travels back (and session.json)
SESSION = 'session.json'                      # every job's record, the last one last
RUN_STATE_FILES = ('config.yaml', 'metrics.json', 'log.txt', 'machine.txt', 'epoch1_test_score.pkl',
                   'last_test_score.pkl')      # of a run folder, carried in the state (with its resume files)
BENCH_SHARE = 0.5                             # of the budget, when the bench runs
RESERVE_S = dict(gpu=30, smoke=12)            # kept for stopping runs, summaries and packing
MIN_STAGE_S = dict(gpu=60, smoke=20)          # a reproduction stage starts only with this much time left
STAGES = (('joint-pair', ['--streams', 'joint', '--arms', 'lst', 'control']),
          ('lst-streams', ['--streams', *reproduce.STREAMS, '--arms', 'lst']),
          ('ctrgcn', ['--streams', 'joint', '--arms', 'ctrgcn']))
STAGE_SEEDS = dict(gpu=([1, 2, 3], [1], [1]), smoke=([1], [1], [1]))
SMOKE_DATA_PER_CLASS = 3                      # generated NW-UCLA: 20 train and 10 val sequences


# ---------------------------------------------------------------------------------------------------- helpers
def say(text):
    print(f'[gpu_session {time.strftime("%H:%M:%S")}] {text}', flush=True)


class Clock:
    def __init__(self, budget):
        self.end = time.time() + budget

    def left(self):
        return max(0.0, self.end - time.time())


def run_logged(argv, log_path, timeout, env=None):
    """Run a command with its output in `log_path`; past `timeout` it is stopped as reproduce stops runs."""
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    say(f'$ {" ".join(argv)}  (log: {os.path.relpath(log_path)}, at most {timeout:.0f} s)')
    end = time.time() + timeout
    with open(log_path, 'a') as log:
        return run_until(argv, log, lambda: 'stopped at its time limit' if time.time() >= end else None,
                         reproduce.STOP_GRACE_S, cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED='1', **(env or {})))


def files_under(folder):
    for base, _, names in os.walk(folder):
        for name in sorted(names):
            yield os.path.join(base, name)


def folder_bytes(folder):
    return sum(os.path.getsize(p) for p in files_under(folder)) if os.path.isdir(folder) else 0


# ---------------------------------------------------------------------------------------------------- archives
class Parts:
    """A write-only stream cut into files <prefix>.part00, .part01, ... of at most `size` bytes each."""

    def __init__(self, prefix, size=None):
        self.prefix, self.size, self.paths, self.file, self.used = prefix, size or PART_BYTES, [], None, 0

    def write(self, data):
        view = memoryview(data)
        while view:
            if self.file is None or self.used == self.size:
                self.next_file()
            n = min(len(view), self.size - self.used)
            self.file.write(view[:n])
            self.used += n
            view = view[n:]
        return len(data)

    def next_file(self):
        if self.file:
            self.file.close()
        self.paths.append(f'{self.prefix}.part{len(self.paths):02d}')
        self.file, self.used = open(self.paths[-1], 'wb'), 0

    def close(self):
        if self.file:
            self.file.close()


class Joined(io.RawIOBase):
    """The parts of one archive read back as one stream."""

    def __init__(self, paths):
        self.files = [open(p, 'rb') for p in paths]

    def readable(self):
        return True

    def readinto(self, buffer):
        while self.files:
            n = self.files[0].readinto(buffer)
            if n:
                return n
            self.files.pop(0).close()
        return 0


def write_archive(prefix, work, members):
    """members (paths under `work`) -> <prefix>.partNN (a gzipped tar); returns the part paths."""
    parts = Parts(prefix)
    with gzip.GzipFile(fileobj=parts, mode='wb', compresslevel=1) as stream, \
            tarfile.open(fileobj=stream, mode='w|') as tar:                     # level 1: weights barely compress
        for path in members:
            tar.add(path, arcname=os.path.relpath(path, work))
    parts.close()
    return parts.paths


def archive_parts(folder, name):
    return sorted(glob.glob(os.path.join(glob.escape(folder), f'{name}.tar.gz.part[0-9][0-9]')))


def extract(paths, dest):
    with tarfile.open(fileobj=io.BufferedReader(Joined(paths)), mode='r|gz') as tar:
        tar.extractall(dest, filter='data')


# ---------------------------------------------------------------------------------------------------- packing
class RunDir:
    """One reproduce run folder: small files for everyone, weights and checkpoint by status."""

    def __init__(self, folder):
        self.folder = folder
        self.metrics = read_metrics(folder) or {}
        self.finished = bool(self.metrics.get('finished'))
        self.epochs = len(self.metrics.get('history', []))
        best = self.metrics.get('best_epoch')
        self.best_weights = sorted(glob.glob(os.path.join(glob.escape(folder), f'runs-{best}-*.pt')))[-1:]
        checkpoint = os.path.join(folder, STATE_FILE)
        self.resume_files = ([checkpoint] if os.path.exists(checkpoint) else []) + self.best_weights
        self.name = '/'.join(folder.split(os.sep)[-3:])                             # arm/stream/seed<k>


def pack_plan(work, state_bytes):
    """Which files go into results, state and weights; the unfinished runs kept and dropped from the state."""
    small = [p for top in PACKED for p in files_under(os.path.join(work, top)) if not p.endswith(('.pt', '.tmp'))]
    runs = [RunDir(os.path.dirname(p)) for p in sorted(glob.glob(os.path.join(work, 'reproduce', '*', '*', '*',
                                                                              'seed*', 'config.yaml')))]
    folders = {r.folder for r in runs}
    # logs, curves, per-epoch tables and summaries go back with the results only: the state carries what the next
    # job reads (the bench's results, each run's settings, metrics, log and scores) and the resume files
    state_small = [p for p in small if os.path.relpath(p, work).startswith('bench' + os.sep) or
                   (os.path.dirname(p) in folders and os.path.basename(p) in RUN_STATE_FILES)]
    unfinished = sorted((r for r in runs if not r.finished and r.resume_files), key=lambda r: -r.epochs)
    kept = fitting(unfinished, lambda r: sum(map(os.path.getsize, r.resume_files)),
                   state_bytes - sum(map(os.path.getsize, state_small)))
    dropped = [r for r in unfinished if r not in kept]
    dropped_folders = tuple(r.folder + os.sep for r in dropped)
    state = [p for p in state_small if not p.startswith(dropped_folders)] + [p for r in kept for p in r.resume_files]
    return dict(small=small, state=state, kept=kept, dropped=dropped,
                weights=[p for r in runs if r.finished for p in r.best_weights])


def pack(work, out, state_bytes, record):
    """The archives into `out` within the limits on what comes back; what went where is added to `record`."""
    os.makedirs(out, exist_ok=True)
    plan = pack_plan(work, state_bytes)
    record['pack'] = dict(state_runs=[f'{r.name} (epoch {r.epochs})' for r in plan['kept']],
                          dropped_from_state=[f'{r.name} (epoch {r.epochs}): over --state-mb, restarts from epoch 0'
                                              for r in plan['dropped']])
    session_file = write_session(work, record)
    written = write_archive(os.path.join(out, 'results.tar.gz'), work, plan['small'] + [session_file])
    written += write_archive(os.path.join(out, 'state.tar.gz'), work, plan['state'] + [session_file])
    room_files = OUT_FILES - 1 - len(written)                                       # session.md comes last
    room = min(room_files * PART_BYTES, OUT_BYTES - sum(map(os.path.getsize, written)))
    weights = fitting(plan['weights'], lambda p: os.path.getsize(p) + 1024, room)      # + a tar header
    if weights:
        written += write_archive(os.path.join(out, 'weights.tar.gz'), work, weights)
    record['pack'].update(files={os.path.basename(p): os.path.getsize(p) for p in written},
                          weights_left_out=[os.path.relpath(p, work) for p in plan['weights'] if p not in weights])
    return written


def fitting(items, size, room):
    """The items, in order, that fit into `room` bytes (a larger one is passed over, a later smaller one taken)."""
    chosen, used = [], 0
    for item in items:
        if used + size(item) <= room:
            chosen.append(item)
            used += size(item)
    return chosen


# ---------------------------------------------------------------------------------------------------- the record
def write_session(work, record):
    """<work>/session.json: the records of the earlier jobs (restored with the state), then this one."""
    path = os.path.join(work, SESSION)
    calls = [c for c in (read_json(path)['calls'] if os.path.exists(path) else []) if c['started'] != record['started']]
    calls.append(record)
    write_json(path, dict(calls=calls))
    return path


def session_markdown(record):
    lines = [f'# GPU session {record["started"]}', '', f'- machine: {record["machine"]}',
             f'- budget: {record["budget_s"]:.0f} s, used {record.get("wall_s", 0):.0f} s']
    for part, info in record['parts'].items():
        lines.append(f'- {part}: ' + '; '.join(f'{k} {v}' for k, v in info.items() if k not in ('stages', 'goals')))
        lines += [f'  - {goal}' for goal in info.get('goals', [])]
        for stage in info.get('stages', []):
            lines.append(f'  - {stage["stage"]}: {stage["status"]}' +
                         ''.join(f'\n    - {r}' for r in stage.get('runs', [])))
    pack = record.get('pack', {})
    lines += [f'- state (resumes next job): {", ".join(pack.get("state_runs", [])) or "no unfinished run"}']
    lines += [f'- dropped from the state: {d}' for d in pack.get('dropped_from_state', [])]
    lines += [f'- weights left out (no room): {", ".join(pack["weights_left_out"])}'] if pack.get('weights_left_out') else []
    lines += ['', '| file | MiB |', '|---|---|'] + [f'| {n} | {b / MiB:.2f} |' for n, b in pack.get('files', {}).items()]
    lines += ['', 'Next: `bash tools/gpu_session.sh --restore <these files>`, then the same job again (README, '
                  'Performance, GPU session).']
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------- parts
def restore_state(state_dir, work):
    """The previous job's state into a new work folder (a warm machine's work folder is newer: kept)."""
    parts = archive_parts(state_dir, 'state')
    if os.path.isdir(os.path.join(work, 'reproduce')) or not parts:
        return 'kept the work folder' if parts else 'no earlier state'
    extract(parts, work)
    return f'restored from {len(parts)} part(s) in {os.path.relpath(state_dir, ROOT)}'


def prepare_data(opts):
    """The NW-UCLA folder for the runs (None: the configs' data/NW-UCLA/all_sqe, unpacked from .gpu/ if needed)."""
    if opts.smoke:
        from preprocess import synthetic
        if not os.path.isdir(opts.data):
            synthetic.write_ucla(opts.data, num_classes=10, per_class=SMOKE_DATA_PER_CLASS)
        return opts.data
    if opts.data:
        return opts.data
    folder = os.path.join(UCLA_DATA, 'all_sqe')
    if not glob.glob(os.path.join(folder, '*.json')):
        archive = os.path.join(CARRY, 'NW-UCLA.tar.xz')
        if not os.path.exists(archive):
            raise FileNotFoundError(f'no NW-UCLA data in {folder} and no {archive}: run tools/gpu_session.sh '
                                    f'--prepare here and carry .gpu')
        with tarfile.open(archive) as tar:
            tar.extractall(UCLA_DATA, filter='data')
    return None


def bench_status(path):
    """'complete', 'partial' (a suite missing or cut by the budget) or None (no results)."""
    if not os.path.exists(path):
        return None
    results = read_json(path)
    suites = [results.get(s) for s in ('train_step', 'feeder', 'compile')]
    cut = not all(suites) or any(n.startswith('skipped') for s in filter(None, suites) for n in s.get('notes', []))
    return 'partial' if cut else 'complete'


def goals(path):
    """The bench's goal rows as lines (bench/epoch.py), or none."""
    rows = read_json(path).get('goals', {}).get('rows', []) if os.path.exists(path) else []
    return [f'{r["goal"]}: {r["measured"]}, {"met" if r["met"] else "NOT met"} ({r["where"]})' for r in rows]


def run_bench(opts, clock, work):
    folder, stem = os.path.join(work, 'bench'), 'smoke-cpu' if opts.smoke else 'full-cuda'
    path = os.path.join(folder, stem + '.json')
    earlier = bench_status(path)
    if earlier and not opts.bench_again:
        return dict(status=f'{earlier} from an earlier job: kept (--bench-again measures again)', goals=goals(path))
    seconds = min(opts.budget * BENCH_SHARE, clock.left() - RESERVE_S[opts.kind])
    if seconds < MIN_STAGE_S[opts.kind]:
        return dict(status='not run: the budget is spent')
    argv = [sys.executable, 'bench/run.py', '--device', 'cpu' if opts.smoke else 'cuda', '--only', 'train_step',
            'feeder', 'compile', '--budget', f'{seconds:.0f}', '--out', folder]
    argv += ['--smoke'] if opts.smoke else []
    release = os.path.join(CARRY, 'release')
    argv += ['--release-dir', release] if os.path.isdir(release) and not opts.smoke else []
    start = time.time()
    code = run_logged(argv, os.path.join(work, 'logs', 'bench.log'), seconds + (30 if opts.smoke else 45),
                      env=dict(OMP_NUM_THREADS='1') if opts.smoke else None)
    return dict(status=bench_status(path) or 'nothing measured', returncode=code, seconds=round(time.time() - start),
                goals=goals(path))


def check_text_bank(cache_dir):
    """The LST runs' bank must load here (the GPU machine cannot build one): fail once, early, if it does not."""
    from text.bank import TextFeatureBank
    bank = TextFeatureBank.load_or_build(HEAD, 'ucla', cache_dir, num_class=10, log=say)
    return bank.path


def run_stage(opts, clock, work, name, args, seeds, data_root):
    limit = clock.left() - RESERVE_S[opts.kind]
    if limit < MIN_STAGE_S[opts.kind]:
        return dict(stage=name, status='not started: the budget is spent')
    out = os.path.join(work, 'reproduce', 'ucla-quick' if opts.smoke else 'ucla-full')
    argv = [sys.executable, 'tools/reproduce.py', '--benchmark', 'ucla', *args, '--seeds', *map(str, seeds),
            '--schedule', 'quick' if opts.smoke else 'full', '--jobs', str(opts.jobs), '--head', HEAD,
            '--out', out, '--summary-dir', os.path.join(out, 'summaries', name), '--time-limit', f'{limit:.0f}']
    argv += ['--text-cache-dir', opts.text_cache_dir] if opts.text_cache_dir else []
    argv += ['--data-root', data_root] if data_root else []
    argv += ['--threads', '1'] if opts.smoke else []
    code = run_logged(argv, os.path.join(work, 'logs', f'reproduce-{name}.log'),
                      limit + reproduce.STOP_GRACE_S + 20)                     # its own stop, then its summary
    summary_path = os.path.join(out, 'summaries', name, 'summary.json')
    runs = read_json(summary_path)['runs'] if os.path.exists(summary_path) else []
    done = sum(r['status'] == 'done' for r in runs)
    return dict(stage=name, status=f'{done} of {len(runs)} runs done (reproduce.py returned {code})',
                runs=[f'{r["arm"]}/{r["stream"]}/seed{r["seed"]}: {r["status"]}, {r["epochs_done"]} epoch(s)'
                      for r in runs])


def run_reproduce(opts, clock, work):
    start = time.time()
    try:
        data_root = prepare_data(opts)
        bank = check_text_bank(opts.text_cache_dir or reproduce_default_cache())
    except (OSError, ImportError, ValueError, tarfile.TarError) as exc:
        return dict(status=f'not run: {exc}')
    stages = [run_stage(opts, clock, work, name, args, seeds, data_root)
              for (name, args), seeds in zip(STAGES, STAGE_SEEDS[opts.kind])]
    return dict(status='ran', text_bank=os.path.basename(bank), seconds=round(time.time() - start), stages=stages)


def reproduce_default_cache():
    from engine.args import get_parser
    return get_parser('ucla').get_default('text_cache_dir')


def machine():
    import torch
    if torch.cuda.is_available():
        return f'{torch.cuda.get_device_name(0)}; PyTorch {torch.__version__}; {os.cpu_count()} CPU cores'
    return f'CPU ({os.cpu_count()} cores); PyTorch {torch.__version__}'


def session(opts):
    clock, start = Clock(opts.budget), time.time()
    work, out = os.path.abspath(opts.work), os.path.abspath(opts.out)
    os.makedirs(work, exist_ok=True)
    record = dict(started=time.strftime('%Y-%m-%d %H:%M:%S'), machine=machine(), budget_s=opts.budget,
                  smoke=opts.smoke, parts={})
    parts = [('setup', lambda: dict(state=restore_state(opts.state, work)))]
    parts += [('bench', lambda: run_bench(opts, clock, work))] if 'bench' in opts.parts else []
    parts += [('reproduce', lambda: run_reproduce(opts, clock, work))] if 'reproduce' in opts.parts else []
    for name, part in parts:
        say(name)
        try:
            record['parts'][name] = part()
        except Exception as exc:                # whatever happened, what the other parts made still comes back
            record['parts'][name] = dict(status=f'failed: {type(exc).__name__}: {exc}')
            traceback.print_exc()
    record['wall_s'] = time.time() - start
    say('pack')
    written = pack(work, out, opts.state_mb * MiB, record)
    text = session_markdown(record)
    with open(os.path.join(out, 'session.md'), 'w') as f:
        f.write(text)
    print(text)
    say(f'{len(written) + 1} files in {out}, {(time.time() - start):.0f} s in all')
    return 0


# ---------------------------------------------------------------------------------------------------- here
def prepare(opts):
    """Fill .gpu/ with what the GPU machine lacks; report what a job would take along."""
    os.makedirs(CARRY, exist_ok=True)
    fetch_wheels(os.path.join(CARRY, 'whl'))
    pack_data(opts.data or os.path.join(UCLA_DATA, 'all_sqe'), os.path.join(CARRY, 'NW-UCLA.tar.xz'))
    say(f'text bank: {build_bank(os.path.join(CARRY, "text_bank"))}')
    if opts.release_dir:
        copy_release(opts.release_dir, os.path.join(CARRY, 'release'))
    travel = travelling_bytes()
    say(f'a job takes along {travel / MiB:.1f} MiB (limit 64): .gpu {folder_bytes(CARRY) / MiB:.1f} MiB, of which '
        f'state {folder_bytes(opts.state) / MiB:.1f} MiB')
    if travel > 64 * MiB:
        raise SystemExit(f'the working tree and .gpu come to {travel / MiB:.1f} MiB, over the 64 MiB a job takes along: '
                         f'drop state parts from {opts.state} or lower --state-mb')
    return 0


def fetch_wheels(folder):
    from importlib.metadata import version
    wanted = [f'{name}=={version(name)}' for name in WHEELS]
    have = {os.path.basename(p).split('-')[0].lower() for p in glob.glob(os.path.join(folder, '*.whl'))}
    if have >= set(WHEELS):
        return
    say(f'wheels: {" ".join(wanted)}')
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', '-d', folder,
                    *DEVICE_PYTHON, *wanted], check=True)


def pack_data(source, archive):
    if os.path.exists(archive):
        return
    if not glob.glob(os.path.join(source, '*.json')):
        raise SystemExit(f'no NW-UCLA JSON files in {source}: pass --data DIR (the all_sqe folder)')
    say(f'NW-UCLA: {source} -> {archive} (xz, about a minute)')
    with atomic_path(archive) as tmp, tarfile.open(tmp, 'w:xz') as tar:
        tar.add(source, arcname='all_sqe')


def build_bank(cache_dir):
    """The all-MiniLM-L6-v2 bank of the NW-UCLA prompts, alone in `cache_dir` (stale banks removed)."""
    path = check_text_bank(cache_dir)
    for other in glob.glob(os.path.join(cache_dir, '*.pt')):
        if other != path:
            os.remove(other)
    return os.path.relpath(path, ROOT)


def copy_release(source, dest):
    shutil.rmtree(dest, ignore_errors=True)
    for name in RELEASE_FILES:
        src, dst = os.path.join(source, name), os.path.join(dest, name)
        if not os.path.exists(src):
            raise SystemExit(f'--release-dir {source}: no {name} (expected a clone of MartinXM/LST)')
        if os.path.isdir(src):
            shutil.copytree(src, dst)
        else:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(src, dst)


def travelling_bytes():
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split('\0')
    tree = sum(os.path.getsize(os.path.join(ROOT, p)) for p in listed if p and os.path.isfile(os.path.join(ROOT, p)))
    return tree + folder_bytes(CARRY)


def restore(opts):
    """What a job returned: state parts into --state (for the next job), everything unpacked into --work."""
    paths = [p for arg in opts.restore for p in (sorted(files_under(arg)) if os.path.isdir(arg) else [arg])]
    folder = os.path.dirname(os.path.abspath(paths[0])) if paths else None
    by_name = {name: [p for p in paths if os.path.basename(p).startswith(f'{name}.tar.gz.part')]
               for name in ('results', 'state', 'weights')}
    if not by_name['state']:
        raise SystemExit(f'no state.tar.gz.partNN among {opts.restore} (folder {folder})')
    shutil.rmtree(opts.state, ignore_errors=True)
    os.makedirs(opts.state)
    for path in by_name['state']:
        shutil.copy(path, opts.state)
    if os.path.isdir(opts.work) and os.listdir(opts.work):
        if not os.path.exists(os.path.join(opts.work, SESSION)):
            raise SystemExit(f'--work {opts.work} is not empty and holds no {SESSION}: name an empty folder')
        shutil.rmtree(opts.work)
    for name in ('state', 'results', 'weights'):
        if by_name[name]:
            extract(sorted(by_name[name]), opts.work)
    say(f'state for the next job: {len(by_name["state"])} part(s) in {opts.state}; everything unpacked in {opts.work}')
    return 0


# ---------------------------------------------------------------------------------------------------- main
def parse(argv=None):
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument('--prepare', action='store_true', help='here: fill .gpu/ (wheels, data, text bank, release)')
    mode.add_argument('--restore', nargs='+', metavar='PATH', help='here: files (or their folder) a job returned')
    mode.add_argument('--smoke', action='store_true', help='the session on the CPU, tiny, quick schedule')
    p.add_argument('--budget', type=float, default=None, help='seconds for the session (default 540; smoke 140)')
    p.add_argument('--out', default=os.environ.get('OUT'), help='where the archives go (default: $OUT)')
    p.add_argument('--work', default=None, help='work folder (default work_dir/gpu; smoke: <out>-work)')
    p.add_argument('--state', default=os.path.join(CARRY, 'state'), help='state parts of the last job')
    p.add_argument('--parts', nargs='+', choices=['bench', 'reproduce'], default=['bench', 'reproduce'])
    p.add_argument('--bench-again', action='store_true', help='measure even if the state holds a bench')
    p.add_argument('--jobs', type=int, default=2, help='runs sharing the device (the state of each unfinished '
                                                       'NW-UCLA LST run is about 23 MiB: 2 fit the carry)')
    p.add_argument('--state-mb', type=float, default=50, help='MiB of state taken to the next job')
    p.add_argument('--data', default=None, help='the NW-UCLA all_sqe folder (smoke: where generated data goes)')
    p.add_argument('--text-cache-dir', default=None, help='frozen text banks (default .gpu/text_bank; smoke: the '
                                                          "trainer's default)")
    p.add_argument('--release-dir', default=None, help='--prepare: a clone of MartinXM/LST, timed by the bench')
    opts = p.parse_args(argv)
    opts.kind = 'smoke' if opts.smoke else 'gpu'
    opts.budget = opts.budget or (140.0 if opts.smoke else 540.0)
    opts.work = opts.work or (os.path.abspath(opts.out) + '-work' if opts.smoke and opts.out else
                              os.path.join(ROOT, 'work_dir', 'gpu'))
    if opts.smoke:
        opts.data = opts.data or os.path.join(opts.work, 'data')
    elif not (opts.prepare or opts.restore):
        opts.text_cache_dir = opts.text_cache_dir or os.path.join(CARRY, 'text_bank')
    if not (opts.prepare or opts.restore or opts.out):
        p.error('--out DIR (or $OUT) is needed: where the archives go')
    if not 0 <= opts.state_mb <= MAX_STATE_MB:
        p.error(f'--state-mb {opts.state_mb}: expected 0 to {MAX_STATE_MB} (what comes back is 64 MiB at most)')
    return opts


def main(argv=None):
    opts = parse(argv)
    if opts.prepare:
        return prepare(opts)
    if opts.restore:
        return restore(opts)
    return session(opts)


if __name__ == '__main__':
    sys.exit(main())
