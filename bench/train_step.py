"""Training-step and inference cost: CTR-GCN vs LST with the frozen text bank vs LST fine-tuning a text tower, and
our CTR-GCN vs the released one.

    python bench/train_step.py [--quick] [--device cuda] [--batch 16] [--dataset ntu|ucla] [--release-dir LST]
                               [--reference-dir CTR-GCN] [--precision fp32 fp16 bf16] [--channels-last] [--backbone]

All variants run in one process, interleaved, after a warm-up; medians over repetitions with the spread.
"text tower trained each step" is the release's behaviour: five text-encoder passes per step, forward and
backward (here CLIP ViT-B/32's text tower with random weights, the same computation as the release's). With
--release-dir (a clone of MartinXM/LST) the released model class itself is timed too, with that text tower.
Each precision (fp32; fp16 or bf16 under torch.autocast, fp16 with a gradient scaler as the trainer does) is one
interleaved group, so the ratio to CTR-GCN compares like with like; channels-last copies of CTR-GCN and LST join
each group when asked. On CUDA each variant's step also reports the GPU memory it allocates above what was resident. --backbone times our
CTR-GCN and the released one only (a few minutes on a CPU, so the ratio can be measured several times).
"""
import argparse
import contextlib
import copy
import importlib.util
import os
import statistics
import sys
import time
import types

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

from bench.peak import cpu_peak  # noqa: E402
from model.objective import contrastive_loss  # noqa: E402
from model.ctrgcn import Model, Model_lst_4part, Model_lst_4part_ucla  # noqa: E402
from text.bank import TextFeatureBank  # noqa: E402
from text.clip import TextTransformer  # noqa: E402

SHAPES = {'ntu': dict(C=3, T=64, V=25, M=2, graph='graph.ntu_rgb_d.Graph', num_class=60, lst=Model_lst_4part, k=8,
                      batch=200),
          'ucla': dict(C=3, T=52, V=20, M=1, graph='graph.ucla.Graph', num_class=10, lst=Model_lst_4part_ucla, k=6,
                       batch=64)}                                   # batch: the configs' (the GPU default)
PRECISIONS = {'fp32': None, 'fp16': torch.float16, 'bf16': torch.bfloat16}
SMOKE = dict(batch=2, frames=16, reps=1, tower_layers=1)            # tiny shapes: every code path, in seconds
CHANNELS_LAST = ', channels-last'
RELEASED_CTRGCN = 'CTR-GCN, released code'


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
    """Class `name` of a clone's model/ctrgcn.py (MartinXM/LST or Uason-Chen/CTR-GCN)."""
    release_dir = os.path.abspath(release_dir)                      # _release_imports changes the directory
    with _release_imports(release_dir):
        spec = importlib.util.spec_from_file_location('release_ctrgcn', os.path.join(release_dir, 'model', 'ctrgcn.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return getattr(module, name)


def released_ctrgcn(clone, ours, common, device):
    """The released CTR-GCN from `clone` with the weights of `ours`, and the relative difference of its eval-mode
    logits from ours on a batch."""
    importlib.import_module(common['graph'].rsplit('.', 1)[0])     # the release looks the graph up by attribute
    released = release_model_class(clone, 'Model')(**common).to(device)
    released.load_state_dict(ours.state_dict(), strict=True)
    x = torch.randn(4, 3, 16, common['num_point'], common['num_person'], device=device)
    with torch.no_grad():
        theirs, mine = released.eval()(x), ours.eval()(x)
    released.train(), ours.train()
    return released, ((mine - theirs).norm() / theirs.norm()).item()


def gflop(fn):
    """GFLOP that one call of fn computes (torch's FlopCounterMode)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


def autocast(device, precision):
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)


def unavailable(device, precision):
    """Why `precision` is not timed on `device`, or None."""
    if precision == 'fp16' and device.type == 'cpu':
        return 'fp16 autocast is not timed on the CPU (no fast fp16 kernels there); bf16 stands for AMP'
    if precision == 'bf16' and device.type == 'cuda' and not torch.cuda.is_bf16_supported():
        return 'bf16 is not supported by this GPU'
    return None


def make_step(model, device, text=None, lst=True, precision='fp32'):
    optimizer = torch.optim.SGD(list(model.parameters()) + (list(text.parameters()) if text else []), lr=0.01,
                                momentum=0.9, nesterov=True)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == 'fp16')

    def step(x, labels, bank, tokens):
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            out = model(x)
            if not lst:
                loss = F.cross_entropy(out, labels)
            else:
                logits, features, scale, parts = out
                feats = bank.sample(labels) if text is None else [text(tokens[g]) for g in range(5)]
                loss = F.cross_entropy(logits, labels) + 0.8 * contrastive_loss(
                    features['ViT-B/32'], parts, feats, scale, labels)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
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


def working(functions, notes):
    """The functions that run (one call each, on top of the warm-up); a failure becomes a note, so that one variant
    (a released class, a precision, a compiler) cannot cost the others their numbers."""
    ok = {}
    for name, fn in functions.items():
        try:
            fn()
            ok[name] = fn
        except Exception as exc:                                    # any failure: reported, not hidden
            message = ' '.join(line.strip() for line in str(exc).strip().splitlines()[:2])[:300]
            notes.append(f'{name}: failed, not timed ({type(exc).__name__}: {message})')
    return ok


def step_memory(functions, device):
    """{name: MiB} a call allocates on the GPU above what was resident before it (empty on the CPU)."""
    if device.type != 'cuda':
        return {}
    extra = {}
    for name, fn in functions.items():
        sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        sync(device)
        extra[name] = (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    return extra


def summarise(measure, times, batch, base='CTR-GCN', memory=None, flops=None, peak=None):
    """One row per variant: median, spread, samples/s, the ratio to `base`'s median and to the released CTR-GCN's,
    GFLOP per call and the share of the `peak` GFLOP/s it reaches (and GPU memory)."""
    reference = statistics.median(times[base])
    release = statistics.median(times[RELEASED_CTRGCN]) if RELEASED_CTRGCN in times else None
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        row = dict(measure=measure, variant=name, median_s=median, spread_s=f'{min(values):.3f}..{max(values):.3f}',
                   samples_per_s=batch / median, vs_ctrgcn=median / reference)
        if release:
            row['vs_release'] = median / release
        if flops and name in flops:
            row['GFLOP'] = flops[name]
            if peak:
                row['share_of_peak'] = flops[name] / median / peak
        if memory:
            row['step_peak_MiB'] = memory[name]
        rows.append(row)
    return rows


class Budget:
    """A deadline (time.time()) shared by a suite's measurements; what it cuts is listed."""

    def __init__(self, deadline=None):
        self.deadline, self.skipped = deadline, []

    def allows(self, what, needed_s=0.0):
        if self.deadline is None or time.time() + needed_s < self.deadline:
            return True
        self.skipped.append(what)
        return False

    def notes(self):
        return [f'skipped, the bench budget was spent: {", ".join(self.skipped)}'] if self.skipped else []


def run(quick=False, device='cpu', batch=None, dataset=None, release_dir=None, precisions=None, channels_last=None,
        frames=None, deadline=None, smoke=False, reference_dir=None, backbone=False):
    """Both datasets' shapes unless `dataset` names one. Defaults: CPU fp32 only; CUDA all three precisions and
    channels-last; `smoke`: tiny shapes, fp32 and bf16 (CPU AMP), channels-last. The released CTR-GCN comes from
    `reference_dir` (a CTR-GCN clone), else from `release_dir` (an LST clone)."""
    device = torch.device(device)
    cuda = device.type == 'cuda'
    torch.backends.cudnn.benchmark = True                           # as the trainer runs (engine.rng.init_seed)
    precisions = precisions or (['fp32', 'fp16', 'bf16'] if cuda else ['fp32', 'bf16'] if smoke else ['fp32'])
    channels_last = (cuda or smoke) if channels_last is None else channels_last
    if smoke:
        batch, frames = batch or SMOKE['batch'], frames or SMOKE['frames']
    reps = SMOKE['reps'] if smoke else 3 if quick else 7
    if backbone and not (reference_dir or release_dir):
        raise SystemExit('error: --backbone compares our CTR-GCN with the released one: give --reference-dir or '
                         '--release-dir')
    budget, rows, notes = Budget(deadline), [], []
    cores = min(torch.get_num_threads(), len(os.sched_getaffinity(0)))
    peak, how = (None, 'CPU runs only') if cuda else cpu_peak(cores)
    notes.append(f'share_of_peak: GFLOP / median_s over the fp32 peak of the cores the run uses; {how}')
    for name in [dataset] if dataset else SHAPES:
        bench = DatasetBench(name, device, batch or (SHAPES[name]['batch'] if cuda else 16), frames, release_dir,
                             channels_last, SMOKE['tower_layers'] if smoke else 12, reference_dir, backbone)
        for precision in precisions:
            why = unavailable(device, precision)
            if why:
                notes.append(why)
            elif budget.allows(f'{name} {precision}'):
                rows += bench.measure(precision, reps, peak if precision == 'fp32' else None)
        notes += bench.notes
    notes += budget.notes()
    notes.append(f'{reps} (train) and {3 * reps} (inference) interleaved repetitions after one warm-up, device '
                 f'{device}, torch threads {torch.get_num_threads()}' + (', tiny smoke shapes' if smoke else ''))
    if cuda:
        notes.append('step_peak_MiB: GPU memory a step allocates above what was resident before it '
                     '(torch.cuda.max_memory_allocated)')
    return dict(rows=rows, notes=sorted(set(notes)))


class DatasetBench:
    """The models, inputs and text side of one dataset's shapes."""

    def __init__(self, dataset, device, batch, frames, release_dir, channels_last, tower_layers=12, reference_dir=None,
                 backbone=False):
        s = SHAPES[dataset]
        self.dataset, self.device, self.batch, self.notes, self.flops = dataset, device, batch, [], {}
        self.backbone = backbone
        torch.manual_seed(0)
        common = dict(num_class=s['num_class'], num_point=s['V'], num_person=s['M'], graph=s['graph'])
        self.models = {'CTR-GCN': Model(**common).to(device), 'LST': s['lst'](head=['ViT-B/32'], k=s['k'], **common).to(device)}
        self.lst_tuned = s['lst'](head=['ViT-B/32'], k=s['k'], **common).to(device)
        self.released = None
        if release_dir:
            try:                                # the release's code is not ours to fix: a failure is a note
                released = release_model_class(release_dir, s['lst'].__name__)(head=['ViT-B/32'], k=s['k'], **common)
            except Exception as exc:
                self.notes.append(f'released {s["lst"].__name__} not timed: {type(exc).__name__}: {exc}')
            else:
                self.released = self.models['LST, released code'] = released.to(device)
        if reference_dir or release_dir:
            self.add_released_ctrgcn(reference_dir or release_dir, common)
        if channels_last:
            for name in ('CTR-GCN', 'LST'):
                self.models[name + CHANNELS_LAST] = copy.deepcopy(self.models[name]).to(
                    memory_format=torch.channels_last)
        self.tower = TextTransformer(embed_dim=512, context_length=77, vocab_size=49408, width=512, heads=8,
                                     layers=tower_layers).to(device)
        self.bank = TextFeatureBank(torch.randn(s['num_class'], 11, 512), torch.full((s['num_class'],), 11),
                                    torch.randn(4, s['num_class'], 512)).to(device)
        self.x = torch.randn(batch, s['C'], frames or s['T'], s['V'], s['M'], device=device)
        self.labels = torch.randint(0, s['num_class'], (batch,), device=device)
        self.tokens = torch.randint(1, 49000, (5, batch, 77), device=device)
        self.tokens[..., 20] = 49407                                   # end token: prompts of ~20 tokens

    def add_released_ctrgcn(self, clone, common):
        try:                                    # the release's code is not ours to fix: a failure is a note
            released, difference = released_ctrgcn(clone, self.models['CTR-GCN'], common, self.device)
        except Exception as exc:
            self.notes.append(f'{RELEASED_CTRGCN} ({clone}) not timed: {type(exc).__name__}: {exc}')
            return
        self.models[RELEASED_CTRGCN] = released
        self.notes.append(f'{self.dataset}: {RELEASED_CTRGCN} (model/ctrgcn.py of {clone}) runs with our CTR-GCN\'s '
                          f'weights; eval-mode logits differ from ours by {difference:.1e} (relative)')

    def steps(self, precision):
        d, p = self.device, precision
        steps = {'CTR-GCN': make_step(self.models['CTR-GCN'], d, lst=False, precision=p),
                 'LST, frozen text bank': make_step(self.models['LST'], d, precision=p),
                 'LST, text tower trained each step': make_step(self.lst_tuned, d, text=self.tower, precision=p)}
        if self.released is not None:
            steps['LST, released code, text tower trained each step'] = make_step(self.released, d, text=self.tower,
                                                                                   precision=p)
        if RELEASED_CTRGCN in self.models:
            steps[RELEASED_CTRGCN] = make_step(self.models[RELEASED_CTRGCN], d, lst=False, precision=p)
        if 'LST' + CHANNELS_LAST in self.models:
            steps['CTR-GCN' + CHANNELS_LAST] = make_step(self.models['CTR-GCN' + CHANNELS_LAST], d, lst=False,
                                                         precision=p)
            steps['LST, frozen text bank' + CHANNELS_LAST] = make_step(self.models['LST' + CHANNELS_LAST], d,
                                                                       precision=p)
        return {k: (lambda f=f: f(self.x, self.labels, self.bank, self.tokens)) for k, f in steps.items()
                if self.timed(k)}

    def timed(self, variant):
        return not self.backbone or variant in ('CTR-GCN', RELEASED_CTRGCN)

    def infer(self, model, precision):
        model.eval()
        with torch.no_grad(), autocast(self.device, precision):
            model(self.x)
        model.train()

    def counted(self, kind, functions):
        """GFLOP per call of each function, counted once per variant (the count does not depend on precision)."""
        for name, fn in functions.items():
            if (kind, name) not in self.flops:
                self.flops[kind, name] = gflop(fn)
        return {name: self.flops[kind, name] for name in functions}

    def counted_inference(self, model):
        """The inference pass for FlopCounterMode: eval mode, with autograd on (its module tracker fails on the
        release's graph convolution under no_grad); the same products as `infer`."""
        def forward():
            model.eval()
            model(self.x)
            model.train()
        return forward

    def measure(self, precision, reps, peak=None):
        train = working(self.steps(precision), self.notes)
        train_flops = self.counted('train', train)
        train_times = timings(train, reps, self.device)
        # inference is cheap and the claim is equality (within 3%): three times the repetitions
        inference = working({k: (lambda m=m: self.infer(m, precision)) for k, m in self.models.items()
                             if self.timed(k)}, self.notes)
        inference_flops = self.counted('inference', {k: self.counted_inference(self.models[k]) for k in inference})
        inference_times = timings(inference, 3 * reps, self.device)
        what = f'{self.dataset}, batch {self.batch}, {precision}'
        rows = summarise(f'train step, {what}', train_times, self.batch, memory=step_memory(train, self.device),
                         flops=train_flops, peak=peak)
        rows += summarise(f'inference, {what}', inference_times, self.batch, flops=inference_flops, peak=peak)
        for row in rows:
            print(row, flush=True)
        return rows


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=None)
    parser.add_argument('--dataset', choices=sorted(SHAPES), default=None, help='default: both')
    parser.add_argument('--release-dir', default=None, help='a clone of MartinXM/LST: time its model classes too')
    parser.add_argument('--reference-dir', default=None,
                        help="a clone of Uason-Chen/CTR-GCN: time its CTR-GCN (default: the LST clone's)")
    parser.add_argument('--precision', nargs='+', choices=list(PRECISIONS), default=None,
                        help='default: fp32 on the CPU, all three on CUDA')
    parser.add_argument('--channels-last', action='store_true', default=None, help='also time channels-last copies')
    parser.add_argument('--backbone', action='store_true',
                        help='our CTR-GCN and the released one only (needs --reference-dir or --release-dir)')
    args = parser.parse_args()
    run(args.quick, args.device, args.batch, args.dataset, args.release_dir, args.precision, args.channels_last,
        reference_dir=args.reference_dir, backbone=args.backbone)
