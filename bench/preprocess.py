"""NTU preprocessing: ours vs the reference scripts (CTR-GCN's data/ntu) on the same generated raw files.

    python bench/preprocess.py --files 3000 --reference-dir /path/to/CTR-GCN

Runs the reference's three scripts and our three steps back to back on a generated raw set, reports wall time,
files/s and peak memory (of each step's process) with the ratios, and checks that the outputs are equal.
The reference scripts are used from a clone you point to; only numpy aliases removed in numpy 2 are patched
(in a temporary copy).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_SCRIPTS = ('get_raw_skes_data.py', 'get_raw_denoised_data.py', 'seq_transformation.py')


# Peak memory of a step: its own high-water mark (VmHWM: ru_maxrss of a process started from this one would also
# count this process's size at the fork) or that of its largest worker process, in KiB.
PEAK = ('import re, resource; hwm = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1));'
        'print("PEAK", max(hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))')


def run_steps(scripts, cwd):
    """Run the three scripts in `cwd` one after the other; wall time and the largest peak memory of a step."""
    total, peaks = 0.0, []
    for script in scripts:
        code = f'import runpy, sys; sys.argv = [{script!r}]; runpy.run_path({script!r}, run_name="__main__"); {PEAK}'
        start = time.perf_counter()
        result = subprocess.run([sys.executable, '-c', code], cwd=cwd, capture_output=True, text=True)
        total += time.perf_counter() - start
        if result.returncode:
            raise RuntimeError(f'{script} failed in {cwd}:\n{result.stderr[-2000:]}')
        peaks.append(int(result.stdout.rsplit('PEAK', 1)[1]) / 1024)
    return total, max(peaks)


def prepare_reference(reference_dir, raw_dir, names, work):
    """A copy of the reference's data/ntu scripts with statistics files for `names` and the raw folder linked."""
    folder = os.path.join(work, 'data', 'ntu')
    os.makedirs(os.path.join(folder, 'statistics'))
    os.makedirs(os.path.join(work, 'data', 'nturgbd_raw'))
    os.symlink(os.path.abspath(raw_dir), os.path.join(work, 'data', 'nturgbd_raw', 'nturgb+d_skeletons'))
    for script in REFERENCE_SCRIPTS:
        text = open(os.path.join(reference_dir, 'data', 'ntu', script)).read()
        text = text.replace('np.int)', 'int)').replace('np.int,', 'int,').replace('dtype=np.int', 'dtype=int')
        text = text.replace('np.string_', 'np.bytes_').replace(".astype(np.int)", ".astype(int)")
        with open(os.path.join(folder, script), 'w') as f:
            f.write(text)
    fields = {'setup': 1, 'camera': 2, 'performer': 3, 'replication': 4, 'label': 5}
    for stat, index in fields.items():
        values = [int(n[1 + 4 * (index - 1) + 0: 4 * index][-3:]) for n in names]
        np.savetxt(os.path.join(folder, 'statistics', f'{stat}.txt'), values, fmt='%d')
    with open(os.path.join(folder, 'statistics', 'skes_available_name.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')
    return folder


def prepare_ours(raw_dir, work):
    folder = os.path.join(work, 'data', 'ntu')
    os.makedirs(folder)
    os.makedirs(os.path.join(work, 'data', 'nturgbd_raw'))
    os.symlink(os.path.abspath(raw_dir), os.path.join(work, 'data', 'nturgbd_raw', 'nturgb+d_skeletons'))
    for script in REFERENCE_SCRIPTS:
        shutil.copy(os.path.join(ROOT, 'data', 'ntu', script), folder)
    # the scripts find the library from their own location: point them at this repository
    for script in REFERENCE_SCRIPTS:
        path = os.path.join(folder, script)
        text = open(path).read().replace("os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..')",
                                         repr(ROOT))
        open(path, 'w').write(text)
    return folder


def compare(ours, reference):
    """Largest difference over every array of both benchmark files; sample order included."""
    worst = 0.0
    for stem in ('NTU60_CS', 'NTU60_CV'):
        a, b = np.load(os.path.join(ours, f'{stem}.npz')), np.load(os.path.join(reference, f'{stem}.npz'))
        for key in ('x_train', 'y_train', 'x_test', 'y_test'):
            if a[key].shape != b[key].shape:
                raise AssertionError(f'{stem} {key}: shape {a[key].shape} vs the reference {b[key].shape}')
            worst = max(worst, float(np.abs(a[key] - b[key]).max(initial=0)))
    return worst


def run(quick=False, reference_dir=None, files=None, repeats=None):
    sys.path[:0] = [ROOT]
    from preprocess import synthetic
    files = files or (300 if quick else 3000)
    repeats = repeats or (1 if quick else 3)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as work:
        raw = os.path.join(work, 'raw')
        names = synthetic.write_ntu(raw, num_classes=60, per_class=max(1, files // 60), seed=0)
        names = sorted(names)
        size = sum(os.path.getsize(os.path.join(raw, n + '.skeleton')) for n in names) / 2 ** 20
        results = {'ours': [], 'reference': []}
        for rep in range(repeats):
            for who in (['ours', 'reference'] if reference_dir else ['ours']):
                run_dir = os.path.join(work, f'{who}{rep}')
                folder = (prepare_ours(raw, run_dir) if who == 'ours'
                          else prepare_reference(reference_dir, raw, names, run_dir))
                results[who].append(run_steps(REFERENCE_SCRIPTS if who == 'ours' else REFERENCE_SCRIPTS, folder))
        for who, runs in results.items():
            if runs:
                wall = statistics.median(r[0] for r in runs)
                rows.append(dict(pipeline=who, files=len(names), MiB=round(size, 1), wall_s=wall,
                                 spread_s=f'{min(r[0] for r in runs):.2f}..{max(r[0] for r in runs):.2f}',
                                 files_per_s=len(names) / wall, peak_MiB=max(r[1] for r in runs)))
        if reference_dir:
            diff = compare(os.path.join(work, 'ours0', 'data', 'ntu'), os.path.join(work, 'reference0', 'data', 'ntu'))
            ratio = rows[1]['wall_s'] / rows[0]['wall_s']
            notes.append(f'speed-up {ratio:.1f}x, peak memory {rows[1]["peak_MiB"] / rows[0]["peak_MiB"]:.1f}x lower; '
                         f'max |ours - reference| over all output arrays: {diff:g}')
        else:
            notes.append('reference not timed: pass --reference-dir (a clone of Uason-Chen/CTR-GCN)')
    for row in rows:
        print(row)
    for note in notes:
        print(note)
    return dict(rows=rows, notes=notes)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--files', type=int, default=3000)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--reference-dir', default=None)
    parser.add_argument('--quick', action='store_true')
    args = parser.parse_args()
    run(args.quick, args.reference_dir, args.files, args.repeats)
