"""torch.compile on the training step: LST (frozen text bank) and CTR-GCN, compiled vs eager, in one precision.

    python bench/compile.py [--device cuda] [--precision bf16] [--dataset ntu] [--backend inductor] [--smoke]

Each model is compiled (forward and backward) on its first step, whose time is reported as compile_s; then the
compiled and the eager step run interleaved. A compile starts only while `min_compile_s` of the budget is left
(LST first: it is the one the NTU-120 epoch estimate needs).
"""
import argparse
import os
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from bench.train_step import (SHAPES, SMOKE, Budget, DatasetBench, make_step, summarise, sync,  # noqa: E402
                              timings, unavailable, working)

COMPILED = ', torch.compile'
VARIANTS = (('LST, frozen text bank', 'LST', True), ('CTR-GCN', 'CTR-GCN', False))   # (row name, model, LST loss)


def run(quick=False, device='cpu', dataset='ntu', precision=None, backend=None, deadline=None, min_compile_s=None,
        smoke=False):
    """`smoke`: tiny shapes and dynamo's eager backend (inductor's C++ build takes minutes on a busy CPU)."""
    device = torch.device(device)
    backend = backend or ('eager' if smoke else 'inductor')
    min_compile_s = (10.0 if smoke else 60.0) if min_compile_s is None else min_compile_s
    precision = precision or ('bf16' if device.type == 'cuda' else 'fp32')
    why = unavailable(device, precision)
    if why:
        return dict(rows=[], notes=[why])
    reps = SMOKE['reps'] if smoke else 3 if quick else 7
    batch = SMOKE['batch'] if smoke else SHAPES[dataset]['batch'] if device.type == 'cuda' else 16
    bench = DatasetBench(dataset, device, batch, SMOKE['frames'] if smoke else None, None, channels_last=False,
                         tower_layers=1)                                   # the tower is not timed here
    budget, rows = Budget(deadline), []
    for name, model_name, lst in VARIANTS:
        if not budget.allows(f'compiling {name}', min_compile_s):
            continue
        model = bench.models[model_name]
        eager = make_step(model, device, lst=lst, precision=precision)
        compiled = make_step(torch.compile(model, backend=backend), device, lst=lst, precision=precision)
        args = (bench.x, bench.labels, bench.bank, bench.tokens)
        start = time.perf_counter()
        if not working({name + COMPILED: lambda: compiled(*args)}, bench.notes):
            continue
        sync(device)
        compile_s = time.perf_counter() - start
        times = timings({name: lambda: eager(*args), name + COMPILED: lambda: compiled(*args)}, reps, device)
        for row in summarise(f'train step, {dataset}, batch {batch}, {precision}', times, batch, base=name):
            row['vs_eager'] = row.pop('vs_ctrgcn')
            rows.append(dict(row, compile_s=compile_s if row['variant'] == name + COMPILED else ''))
            print(rows[-1], flush=True)
    notes = bench.notes + budget.notes() + [f'backend {backend}; vs_eager: the step over the eager step of the same model; '
                              f'{reps} interleaved repetitions after the compiling step']
    return dict(rows=rows, notes=notes)


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--dataset', choices=sorted(SHAPES), default='ntu')
    parser.add_argument('--precision', choices=['fp32', 'fp16', 'bf16'], default=None,
                        help='default: bf16 on CUDA, fp32 on the CPU')
    parser.add_argument('--backend', default=None, help='default: inductor (eager with --smoke)')
    parser.add_argument('--smoke', action='store_true')
    args = parser.parse_args()
    run(device=args.device, dataset=args.dataset, precision=args.precision, backend=args.backend, smoke=args.smoke)
