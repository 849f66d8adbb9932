"""One entry point for every benchmark: prints a table and writes it as JSON and Markdown.

    python bench/run.py [--quick] [--device cpu|cuda] [--reference-dir /path/to/CTR-GCN] [--release-dir /path/to/LST]
                        [--only train_step feeder preprocess text_bank] [--out bench/results]

Ratios are taken from runs in the same process (or back to back), medians over several repetitions, with the spread
(min..max) beside them: these machines are noisy, so absolute CPU times are indicative only.
"""
import argparse
import datetime
import importlib
import inspect
import json
import os
import platform
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

SUITES = ('train_step', 'feeder', 'preprocess', 'text_bank')


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


def write_atomic(path, text):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with tempfile.NamedTemporaryFile('w', dir=directory, delete=False, suffix='.tmp') as f:
        f.write(text)
    os.replace(f.name, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='fewer repetitions and smaller inputs (a smoke run)')
    parser.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (train step, feeder batch augmentation)")
    parser.add_argument('--reference-dir', default=None,
                        help='a clone of Uason-Chen/CTR-GCN: its preprocessing scripts and feeders are timed beside ours')
    parser.add_argument('--release-dir', default=None,
                        help='a clone of MartinXM/LST: its feeder and model class are timed beside ours')
    parser.add_argument('--only', nargs='+', choices=SUITES, default=list(SUITES),
                        help='run these suites; the others keep their numbers from the previous results file')
    parser.add_argument('--out', default=os.path.join(ROOT, 'bench', 'results'))
    args = parser.parse_args(argv)

    stem = os.path.join(args.out, f'{"quick" if args.quick else "full"}-{args.device.split(":")[0]}')
    results = {'machine': machine_info(args.device)}
    if set(args.only) != set(SUITES) and os.path.exists(stem + '.json'):
        # a partial run updates its suites in the previous results and keeps the others (and their machine line)
        with open(stem + '.json') as f:
            previous = json.load(f)
        results = {**previous, 'machine': previous.get('machine', results['machine'])}
    for suite in args.only:
        module = importlib.import_module(f'bench.{suite}')
        print(f'== {suite}', flush=True)
        offered = dict(quick=args.quick, device=args.device,
                       reference_dir=args.reference_dir, release_dir=args.release_dir)
        accepted = inspect.signature(module.run).parameters
        results[suite] = module.run(**{k: v for k, v in offered.items() if k in accepted})
    results = {'machine': results['machine'], **{k: results[k] for k in SUITES if k in results}}
    markdown = to_markdown(results)
    print(markdown)
    write_atomic(stem + '.json', json.dumps(results, indent=2))
    write_atomic(stem + '.md', f'Machine: {json.dumps(results["machine"])}\n\n' + markdown)


if __name__ == '__main__':
    main()
