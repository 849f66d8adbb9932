"""One entry point for every benchmark: prints a table and writes it as JSON and Markdown.

    python bench/run.py [--quick | --smoke] [--device cpu|cuda] [--reference-dir /path/to/CTR-GCN]
                        [--release-dir /path/to/LST] [--only train_step feeder preprocess text_bank compile video]
                        [--budget SECONDS] [--out bench/results]

Ratios are taken from runs in the same process (or back to back), medians over several repetitions, with the spread
(min..max) beside them: these machines are noisy, so absolute CPU times are indicative only. `compile`
(torch.compile) and `video` (pose extraction and live streams, bench/video.py; `make install-video`) run only when
named. After the suites, the NTU-120 X-Sub epoch estimate and the performance goals
are derived from their rows (bench/epoch.py). With --budget, each suite gets a share of the seconds (what one leaves
passes on) and stops measuring when its share is spent; the results are written after every suite.
"""
import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from bench.epoch import derive  # noqa: E402
from lstbase.files import write_text  # noqa: E402

SUITES = ('train_step', 'feeder', 'preprocess', 'text_bank', 'compile', 'video')
DEFAULT_SUITES = SUITES[:4]
SHARES = dict(train_step=35, feeder=15, preprocess=10, text_bank=5, compile=50, video=20)       # of --budget, by weight
DERIVED = ('ntu120_epoch', 'goals')


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device):
    import torch
    info = {
        'date': datetime.date.today().isoformat(),
        'python': platform.python_version(),
        'torch': torch.__version__,
        'cpu': cpu_name(),
        'cpu_count': os.cpu_count(),
        'torch_threads': torch.get_num_threads(),
        'device': device,
    }
    if device.startswith('cuda') and torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def to_markdown(results):
    """Each suite returns {'rows': [dict, ...], 'notes': [str, ...]}; render one table per suite."""
    lines = []
    for suite, result in results.items():
        if suite == 'machine':
            continue
        lines.append(f'### {suite}\n')
        rows = result.get('rows', [])
        if rows:
            columns = list(dict.fromkeys(key for row in rows for key in row))
            lines.append('| ' + ' | '.join(columns) + ' |')
            lines.append('|' + '---|' * len(columns))
            for row in rows:
                lines.append('| ' + ' | '.join(_fmt(row.get(c, '')) for c in columns) + ' |')
        for note in result.get('notes', []):
            lines.append(f'\n- {note}')
        lines.append('')
    return '\n'.join(lines)


def _fmt(value):
    if isinstance(value, float):
        return f'{value:.4g}'
    return str(value)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='fewer repetitions and smaller inputs')
    parser.add_argument('--smoke', action='store_true', help='tiny shapes, one repetition: every code path in seconds')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (train step, feeder batch augmentation)")
    parser.add_argument('--reference-dir', default=None,
                        help='a clone of Uason-Chen/CTR-GCN: its preprocessing scripts, feeders and CTR-GCN are timed '
                             'beside ours')
    parser.add_argument('--release-dir', default=None,
                        help='a clone of MartinXM/LST: its feeder and model class are timed beside ours')
    parser.add_argument('--only', nargs='+', choices=SUITES, default=list(DEFAULT_SUITES),
                        help='run these suites; the others keep their numbers from the previous results file')
    parser.add_argument('--budget', type=float, default=None, help='seconds for all the suites together')
    parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'results'))
    args = parser.parse_args(argv)

    kind = 'smoke' if args.smoke else 'quick' if args.quick else 'full'
    stem = os.path.join(args.out, f'{kind}-{args.device.split(":")[0]}')
    results = previous_results(stem, args.only, machine_info(args.device))
    end = None if args.budget is None else time.time() + args.budget
    for index, suite in enumerate(args.only):
        module = importlib.import_module(f'bench.{suite}')
        print(f'== {suite}', flush=True)
        offered = dict(quick=args.quick, smoke=args.smoke, device=args.device, reference_dir=args.reference_dir,
                       release_dir=args.release_dir, deadline=suite_deadline(end, args.only[index:]))
        accepted = inspect.signature(module.run).parameters
        results[suite] = module.run(**{k: v for k, v in offered.items() if k in accepted})
        write_results(stem, results)


def previous_results(stem, only, machine):
    """A partial run updates its suites in the previous results and keeps the others (and their machine line)."""
    if set(only) == set(DEFAULT_SUITES) or not os.path.exists(stem + '.json'):
        return {'machine': machine}
    with open(stem + '.json') as f:
        previous = json.load(f)
    return {**previous, 'machine': previous.get('machine', machine)}


def suite_deadline(end, remaining):
    """The first of `remaining` suites gets its share of the time left (None: no budget)."""
    if end is None:
        return None
    weights = [SHARES[s] for s in remaining]
    return time.time() + max(0.0, end - time.time()) * weights[0] / sum(weights)


def write_results(stem, results):
    """JSON and Markdown of the suites so far, with the derived epoch estimate and goals."""
    results.update(derive(results))
    results = {'machine': results['machine'], **{k: results[k] for k in SUITES + DERIVED if k in results}}
    markdown = to_markdown(results)
    print(markdown, flush=True)
    write_text(stem + '.json', json.dumps(results, indent=2))
    write_text(stem + '.md', f'Machine: {json.dumps(results["machine"])}\n\n' + markdown)


if __name__ == '__main__':
    main()
