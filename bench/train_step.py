"""Training-step and inference cost: CTR-GCN vs LST with the frozen text bank vs LST fine-tuning a text tower.

    python bench/train_step.py [--quick] [--device cuda] [--batch 16] [--dataset ntu|ucla] [--release-dir LST]

All variants run in one process, interleaved, after a warm-up; medians over repetitions with the spread.
"text tower trained each step" is the release's behaviour: five text-encoder passes per step, forward and
backward (here CLIP ViT-B/32's text tower with random weights, the same computation as the release's). With
--release-dir (a clone of MartinXM/LST) the released model class itself is timed too, with that text tower.
"""
import argparse
import contextlib
import importlib.util
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from engine.loss import contrastive_loss  # noqa: E402
from model.ctrgcn import Model, Model_lst_4part, Model_lst_4part_ucla  # noqa: E402
from text.bank import TextFeatureBank  # noqa: E402
from text.clip import TextTransformer  # noqa: E402

SHAPES = {'ntu': dict(C=3, T=64, V=25, M=2, graph='graph.ntu_rgb_d.Graph', num_class=60, lst=Model_lst_4part, k=8),
          'ucla': dict(C=3, T=52, V=20, M=1, graph='graph.ucla.Graph', num_class=10, lst=Model_lst_4part_ucla, k=6)}


@contextlib.contextmanager
def _release_imports(release_dir):
    """The released ctrgcn.py imports `clip` (unused by the model classes; a stub here) and Text_Prompt, which
    reads the clone's text files relative to the working directory."""
    saved_cwd, saved_clip = os.getcwd(), sys.modules.get('clip')
    sys.modules['clip'] = types.ModuleType('clip')
    sys.path.append(release_dir)
    os.chdir(release_dir)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.path.remove(release_dir)
        if saved_clip is None:
            del sys.modules['clip']
        else:
            sys.modules['clip'] = saved_clip


def release_model_class(release_dir, name):
    with _release_imports(release_dir):
        spec = importlib.util.spec_from_file_location('release_ctrgcn', os.path.join(release_dir, 'model', 'ctrgcn.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return getattr(module, name)


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def make_step(model, device, text=None, lst=True):
    optimizer = torch.optim.SGD(list(model.parameters()) + (list(text.parameters()) if text else []), lr=0.01,
                                momentum=0.9, nesterov=True)

    def step(x, labels, bank, tokens):
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        if not lst:
            loss = F.cross_entropy(out, labels)
        else:
            logits, features, scale, parts = out
            feats = bank.sample(labels) if text is None else [text(tokens[g]) for g in range(5)]
            loss = F.cross_entropy(logits, labels) + 0.8 * contrastive_loss(
                features['ViT-B/32'], parts, feats, scale, labels)
        loss.backward()
        optimizer.step()
    return step


def timings(functions, reps, device):
    """Interleaved repetitions of each function; {name: [seconds]}."""
    times = {name: [] for name in functions}
    for rep in range(reps + 1):
        for name, fn in functions.items():
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            if rep:                                                # the first round warms up
                times[name].append(time.perf_counter() - start)
    return times


def summarise(measure, times, batch):
    """One row per variant: median, spread, samples/s and the ratio to CTR-GCN's median."""
    base = statistics.median(times['CTR-GCN'])
    return [dict(measure=measure, variant=name, median_s=statistics.median(values),
                 spread_s=f'{min(values):.3f}..{max(values):.3f}', samples_per_s=batch / statistics.median(values),
                 vs_ctrgcn=statistics.median(values) / base) for name, values in times.items()]


def run(quick=False, device='cpu', batch=None, dataset=None, release_dir=None):
    """Both datasets' shapes unless `dataset` names one."""
    rows, notes = [], []
    for name in [dataset] if dataset else SHAPES:
        result = run_dataset(quick, device, batch, name, release_dir)
        rows += result['rows']
        notes += result['notes']
    return dict(rows=rows, notes=sorted(set(notes)))


def run_dataset(quick, device, batch, dataset, release_dir):
    device = torch.device(device)
    batch = batch or (16 if device.type == 'cpu' else 200)
    reps = 3 if quick else 7
    s = SHAPES[dataset]
    torch.manual_seed(0)
    common = dict(num_class=s['num_class'], num_point=s['V'], num_person=s['M'], graph=s['graph'])
    ctrgcn = Model(**common).to(device)
    lst = s['lst'](head=['ViT-B/32'], k=s['k'], **common).to(device)
    lst_tuned = s['lst'](head=['ViT-B/32'], k=s['k'], **common).to(device)
    tower = TextTransformer(embed_dim=512, context_length=77, vocab_size=49408, width=512, heads=8,
                            layers=12).to(device)
    bank = TextFeatureBank(torch.randn(s['num_class'], 11, 512), torch.full((s['num_class'],), 11),
                           torch.randn(4, s['num_class'], 512)).to(device)
    x = torch.randn(batch, s['C'], s['T'], s['V'], s['M'], device=device)
    labels = torch.randint(0, s['num_class'], (batch,), device=device)
    tokens = torch.randint(1, 49000, (5, batch, 77), device=device)
    tokens[..., 20] = 49407                                           # end token: prompts of ~20 tokens
    steps = {'CTR-GCN': make_step(ctrgcn, device, lst=False), 'LST, frozen text bank': make_step(lst, device),
             'LST, text tower trained each step': make_step(lst_tuned, device, text=tower)}
    models = {'CTR-GCN': ctrgcn, 'LST': lst}
    if release_dir:
        released = release_model_class(release_dir, s['lst'].__name__)(head=['ViT-B/32'], k=s['k'], **common)
        steps['LST, released code, text tower trained each step'] = make_step(released.to(device), device, text=tower)
        models['LST, released code'] = released
    train = timings({k: (lambda f=f: f(x, labels, bank, tokens)) for k, f in steps.items()}, reps, device)

    def infer(model):
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()
    # inference is cheap and the claim is equality (within 3%): three times the repetitions
    inference = timings({k: (lambda m=m: infer(m)) for k, m in models.items()}, 3 * reps, device)

    rows = summarise(f'train step, {dataset}, batch {batch}', train, batch)
    rows += summarise(f'inference, {dataset}, batch {batch}', inference, batch)
    for row in rows:
        print(row)
    return dict(rows=rows, notes=[f'{reps} (train) and {3 * reps} (inference) interleaved repetitions after one '
                                  f'warm-up, device {device}, torch threads {torch.get_num_threads()}'])


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--dataset', choices=sorted(SHAPES), default=None, help='default: both')
    parser.add_argument('--release-dir', default=None, help='a clone of MartinXM/LST: time its model class too')
    args = parser.parse_args()
    run(args.quick, args.device, args.batch, args.dataset, args.release_dir)
