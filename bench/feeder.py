"""Feeder throughput: our NTU train-split transforms vs the release's per-sample code, the batch (GPU) path, and the
DataLoader as training uses it.

    python bench/feeder.py [--quick] [--release-dir /path/to/LST] [--device cuda] [--workers 16] [--batch 200]

Samples of 300 frames (NTU's padded length) with 60-120 valid frames, window 64, random rotation, as the NTU
configs train. The release's feeders/tools.py is imported from a clone you point to (its train crop needs a
one-line numpy 2 fix, applied in a temporary copy). The DataLoader rows time whole batches delivered on the device
with `workers` worker processes, after the first batch (worker start-up): per-sample transforms in the workers, or
raw samples from the workers and `batch_augment`'s transform on the device.
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

NTU_TRAIN = dict(split='train', window_size=64, p_interval=[0.5, 1], random_rot=True)


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


def sync(device):
    if device.startswith('cuda'):
        torch.cuda.synchronize()


def loader_rate(feeder, device, workers, batch, batches):
    """Samples per second of a training DataLoader (random order, `batches` batches after the first), each batch
    moved to `device` and, with batch_augment, transformed there."""
    sampler = torch.utils.data.RandomSampler(feeder, replacement=True, num_samples=(batches + 1) * batch)
    loader = torch.utils.data.DataLoader(feeder, batch_size=batch, sampler=sampler, num_workers=workers,
                                         pin_memory=device.startswith('cuda'), drop_last=True)
    start = None
    for data, _, _ in loader:
        data = data.to(device, non_blocking=True)
        if feeder.batch_transform is not None:
            data = feeder.batch_transform(data)
        sync(device)
        start = start or time.perf_counter()                          # the clock starts after the first batch
    return batches * batch / (time.perf_counter() - start)


def loader_rows(path, device, workers, batch, batches, reps):
    rows = []
    for augment, where in ((False, 'per-sample transforms in the workers'),
                           (True, f'batch_augment on {device}')):
        feeder = feeder_ntu.Feeder(path, batch_augment=augment, **NTU_TRAIN)
        rates = [loader_rate(feeder, device, workers, batch, batches) for _ in range(reps)]
        rows.append(dict(variant=f'DataLoader, {workers} workers, {where}', batch=batch,
                         samples_per_s=statistics.median(rates),
                         spread_s=f'{batch / max(rates):.3f}..{batch / min(rates):.3f} per batch'))
        print(rows[-1], flush=True)
    return rows


def run(quick=False, device='cpu', release_dir=None, workers=None, batch=None, smoke=False, deadline=None):
    """In-process transforms on 200 samples; then, unless the budget (`deadline`) is spent, the DataLoader with
    `workers` processes (default: the CPU count, as the trainer caps num_worker) at `batch` (default: NTU's 200)."""
    n = 24 if smoke else 200
    reps = 1 if smoke else 3 if quick else 7
    workers = workers or (2 if smoke else os.cpu_count() or 1)
    batch = batch or (8 if smoke else 200)
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as folder:
        path = toy_npz(folder, n)
        ours = feeder_ntu.Feeder(path, **NTU_TRAIN)
        batched = feeder_ntu.Feeder(path, batch_augment=True, **NTU_TRAIN)
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
                sync(device)
                if rep:
                    times[name].append(time.perf_counter() - start)
        for name, values in times.items():
            median = statistics.median(values)
            rows.append(dict(variant=name, batch=n, median_s=median, spread_s=f'{min(values):.3f}..{max(values):.3f}',
                             samples_per_s=n / median))
            print(rows[-1], flush=True)
        if deadline is None or time.time() < deadline:
            rows += loader_rows(path, device, workers, batch, batches=3 if smoke else 4 * workers, reps=min(reps, 3))
        else:
            notes.append('skipped, the bench budget was spent: the DataLoader rows')
    if not release_dir:
        notes.append('release not timed: pass --release-dir (a clone of MartinXM/LST)')
    return dict(rows=rows, notes=notes)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--release-dir', default=None)
    parser.add_argument('--workers', type=int, default=None, help='DataLoader workers (default: the CPU count)')
    parser.add_argument('--batch', type=int, default=None, help='DataLoader batch (default: 200, as NTU trains)')
    args = parser.parse_args()
    run(args.quick, args.device, args.release_dir, args.workers, args.batch)
