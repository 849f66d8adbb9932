"""Feeder throughput: our NTU train-split transforms vs the release's per-sample code, and the batch (GPU) path.

    python bench/feeder.py [--quick] [--release-dir /path/to/LST] [--device cuda]

Samples of 300 frames (NTU's padded length) with 60-120 valid frames, window 64, random rotation, as the NTU
configs train. The release's feeders/tools.py is imported from a clone you point to (its train crop needs a
one-line numpy 2 fix, applied in a temporary copy).
"""
import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from feeders import feeder_ntu  # noqa: E402


def toy_npz(folder, n):
    rng = np.random.default_rng(0)
    x = np.zeros((n, 300, 150), np.float32)
    for i in range(n):
        length = int(rng.integers(60, 120))
        x[i, :length] = rng.normal(size=(length, 150))
    path = os.path.join(folder, 'bench.npz')
    np.savez(path, x_train=x, y_train=np.eye(60)[rng.integers(0, 60, n)])
    return path


def release_transform(release_dir):
    """The release's per-sample train transform (valid_crop_resize + random_rot), numpy-2 fixed."""
    source = open(os.path.join(release_dir, 'feeders', 'tools.py')).read()
    source = source.replace('int(np.floor(valid_size*p))', 'int(np.floor(valid_size*p).item())')
    path = os.path.join(tempfile.mkdtemp(), 'release_tools.py')
    open(path, 'w').write(source)
    spec = importlib.util.spec_from_file_location('release_tools', path)
    tools = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tools)

    def transform(sample):
        valid = np.sum(sample.sum(0).sum(-1).sum(-1) != 0)
        return tools.random_rot(tools.valid_crop_resize(sample, valid, [0.5, 1], 64))
    return transform


def run(quick=False, device='cpu', release_dir=None):
    n = 200
    reps = 3 if quick else 7
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = toy_npz(folder, n)
        ours = feeder_ntu.Feeder(path, split='train', window_size=64, p_interval=[0.5, 1], random_rot=True)
        batched = feeder_ntu.Feeder(path, split='train', window_size=64, p_interval=[0.5, 1], random_rot=True,
                                    batch_augment=True)
        raw = torch.from_numpy(np.stack([batched[i][0] for i in range(n)])).to(device)
        variants = {'ours, per sample (DataLoader worker)': lambda: [ours[i] for i in range(n)],
                    f'ours, whole batch on {device}': lambda: batched.batch_transform(raw)}
        if release_dir:
            transform = release_transform(release_dir)
            data = ours.data
            variants['release, per sample'] = lambda: [transform(np.array(data[i])) for i in range(n)]
        times = {k: [] for k in variants}
        for rep in range(reps + 1):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn()
                if device.startswith('cuda'):
                    torch.cuda.synchronize()
                if rep:
                    times[name].append(time.perf_counter() - start)
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(dict(variant=name, batch=n, median_s=median, spread_s=f'{min(values):.3f}..{max(values):.3f}',
                         samples_per_s=n / median))
    notes = [] if release_dir else ['release not timed: pass --release-dir (a clone of MartinXM/LST)']
    for row in rows:
        print(row)
    return dict(rows=rows, notes=notes)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--release-dir', default=None)
    args = parser.parse_args()
    run(args.quick, args.device, args.release_dir)
