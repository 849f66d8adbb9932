#!/usr/bin/env python
"""Predict the action of raw skeleton files with trained LST (or CTR-GCN) streams.

    python tools/predict.py --config work_dir/demo/lst_joint/config.yaml \\
        --weights work_dir/demo/lst_joint/best.pt --input data/demo/raw [--top 5] [--format table|json|csv]

Inputs: NTU `.skeleton` files, NW-UCLA `.json` files, `.npy` arrays C,T,V,M (a sample as the feeder holds it before
its test-time transform; for a 2-D model x, y in pixels [and the score], with --img-shape), annotation files in
pyskl's format (`.pkl`: every sample in it, or those --split and --samples pick), videos (.mp4, .avi, .mov, .mkv,
.webm: keypoints estimated offline, `make install-video`), or folders of them. Each file goes through the preprocessing and the config's test
feeder, so a file of a preprocessed test split gets the test phase's logits. Several --config/--weights pairs
(joint, bone, joint motion, bone motion, in that order) are fused with ensemble.py's weights. --weights also takes
a model written by tools/export.py: ONNX, or TorchScript with --trust-code (a TorchScript file is a program: loading
it runs its code). Probabilities are the softmax of the (fused) scores.

Each result names its file, and a sample of an annotation file by its frame_dir too (`ann.pkl:<frame_dir>`; the
`sample` column and field). The true class is shown when the file tells it for the model's classes: an annotation
file's labels (not extract_pose's placeholder 0s), the name of an NTU or NW-UCLA file for a model of that dataset.
A file or a sample that cannot be read is reported on one line and skipped; the exit status is then 1. A wrong
argument, config or weights file ends with one `error:` line and status 2.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trained_model  # noqa: E402
from trained_model import UsageError  # noqa: E402

import ensemble  # noqa: E402  (trained_model puts the project root on the path)
from lstbase.arguments import ArgumentParser  # noqa: E402
from lstbase.errors import run  # noqa: E402
from lstbase.processes import cpu_threads  # noqa: E402


def parse(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', action='append', required=True,
                        help='a training config (<work_dir>/config.yaml); repeat for an ensemble')
    parser.add_argument('--weights', action='append', required=True,
                        help='its weights (.pt state dict, or TorchScript / .onnx from tools/export.py); one per '
                             '--config')
    parser.add_argument('--input', nargs='+', required=True,
                        help='.skeleton, .json, .npy, annotation (.pkl) or video files, or folders of them')
    parser.add_argument('--top', type=int, default=5, help='how many classes to list per file (default 5)')
    parser.add_argument('--format', choices=('table', 'json', 'csv'), default='table')
    parser.add_argument('--alpha', type=float, default=1.0, help='bone weight when fusing two streams (ensemble.py)')
    parser.add_argument('--trust-code', action='store_true',
                        help='load TorchScript --weights: this runs the code the file holds (give it only for files '
                             'you trust)')
    parser.add_argument('--batch-size', type=int, default=None,
                        help="files read per step (default: the first config's test_batch_size); each stream runs "
                             "its network in batches of its config's test_batch_size, as the test phase does")
    trained_model.add_input_options(parser)
    args = parser.parse_args(argv)
    args.options = trained_model.input_options(parser, args)
    if len(args.config) != len(args.weights):
        parser.error(f'{len(args.config)} --config but {len(args.weights)} --weights: give one weights file per config')
    if args.top < 1 or (args.batch_size is not None and args.batch_size < 1):
        parser.error('--top and --batch-size must be at least 1')
    if not np.isfinite(args.alpha):
        parser.error(f'--alpha {args.alpha}: expected a finite number')
    twice = ensemble.given_twice([('--weights', weights) for weights in args.weights])
    if twice:                                              # its logits fused with themselves: no ensemble at all
        parser.error(f'{twice}: one stream given twice; give each stream its own weights')
    return args


def load_streams(configs, weights, trust_code=False):
    torch.set_num_threads(cpu_threads()[0])            # a busy machine's spare cores (the trainer's choice)
    streams = [trained_model.Stream(c, w, trust_code) for c, w in zip(configs, weights)]
    kinds = {(s.dataset, s.num_class, s.layout.num_node) for s in streams}
    if len(kinds) > 1:
        raise UsageError('the --config files disagree on the dataset, class count or layout: ' +
                         ', '.join(f'{s.config_path}: {s.dataset} with {s.num_class} classes, {s.layout.name} layout'
                                   for s in streams))
    return streams


def fused(logits, alpha):
    """One stream's logits, or the ensemble's weighted sum of the streams'."""
    return logits[0] if len(logits) == 1 else ensemble.fuse(logits, alpha)


def fused_scores(streams, samples, alpha):
    """Scores of `samples`, one row each."""
    return fused([stream.logits(samples) for stream in streams], alpha)


def softmax(scores):
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


class Errors(list):
    """(file, sample name or None, one-line message) of each file or sample not predicted, each shown as it comes
    (above the progress bar)."""

    def __init__(self, bar):
        super().__init__()
        self.bar = bar

    def add(self, path, name, message):
        self.append((path, name, message))
        self.bar.write(f'error: {message}', file=sys.stderr)


def predict(streams, paths, alpha=1.0, batch_size=None, options=trained_model.InputOptions()):
    """(results, errors): a dict per sample predicted (sample, scores) and the Errors of those not."""
    results, spread = [], {}
    batch_size = batch_size or streams[0].batch_size
    bar = tqdm(total=len(paths), desc='predict', unit='file', disable=len(paths) < 2, file=sys.stderr)
    errors = Errors(bar)
    for start in range(0, len(paths), batch_size):
        batch = paths[start:start + batch_size]
        prepared = read_samples(batch, streams, options, errors)
        if prepared:
            logits = [stream.run([inputs[k] for _, inputs in prepared]) for k, stream in enumerate(streams)]
            far = [any(flags) for flags in zip(*[stream.far_outside() or [False] * len(prepared)
                                                  for stream in streams])]
            for (sample, _), outside in zip(prepared, far):
                spread.setdefault(sample.path, []).append(outside)
            for (sample, _), row in zip(prepared, fused(logits, alpha)):
                if np.isfinite(row).all():
                    results.append(dict(sample=sample, scores=row))
                else:
                    errors.add(sample.path, sample.name, f'{sample.where}: the model gives non-finite scores (NaN or '
                                                         f'Inf)')
        bar.update(len(batch))
    bar.close()
    warn_far_outside(spread)
    return results, errors


def warn_far_outside(spread):
    """One warning per file whose samples lie far outside what the model was trained on (trained_model.InputSpread):
    its predictions are not to be trusted, most often because the camera frames people otherwise."""
    for path, flags in spread.items():
        if any(flags):
            which = 'its keypoints lie' if len(flags) == 1 else (
                'every sample lies' if all(flags) else f'{sum(flags)} of its {len(flags)} samples lie')
            print(f'warning: {path}: {which} far outside what the model was trained on (inputs beyond '
                  f'{trained_model.FAR_OUTSIDE:g} standard deviations of its training statistics), so its predictions '
                  f'mean little: another camera framing or scale? 2-D models with `normalise: person` are not '
                  f'affected by framing (docs/custom-data.md)', file=sys.stderr)


def read_samples(paths, streams, options, errors):
    """(sample, its input to each stream) of the samples of `paths` that every stream's test feeder takes; each
    other file or sample is added to `errors`, and the rest go on."""
    prepared = []
    for path in paths:
        try:
            found = streams[0].read(path, options)
        except UsageError as exc:
            errors.add(path, None, str(exc))
            continue
        for sample in found:
            try:
                prepared.append((sample, [stream.prepare(sample) for stream in streams]))
            except UsageError as exc:
                errors.add(path, sample.name, str(exc))
    return prepared


def ranked(scores, names, top):
    """[(class index, name, probability)] of the `top` most likely classes."""
    probability = softmax(scores)
    order = np.argsort(-probability, kind='stable')[:top]
    return [(int(i), names[i], float(probability[i])) for i in order]


def true_name(sample, names):
    label = sample.label
    return names[label] if label is not None and 0 <= label < len(names) else None


def write_table(results, names, top, out):
    for result in results:
        sample = result['sample']
        truth = true_name(sample, names)
        print(sample.where + (f'  (true: {truth})' if truth else ''), file=out)
        for rank, (_, name, probability) in enumerate(ranked(result['scores'], names, top), start=1):
            print(f'  {rank}. {name:<40} {probability * 100:6.2f}%', file=out)


def write_json(results, errors, names, top, out):
    records = [dict(file=r['sample'].path, sample=r['sample'].name, true_label=true_name(r['sample'], names),
                    top=[dict(index=i, name=n, probability=p) for i, n, p in ranked(r['scores'], names, top)],
                    scores=[float(v) for v in r['scores']]) for r in results]
    records += [dict(file=path, sample=name, error=message) for path, name, message in errors]
    json.dump(records, out, indent=1)
    print(file=out)


def write_csv(results, names, top, out):
    writer = csv.writer(out)
    writer.writerow(['file', 'sample', 'true_label', 'rank', 'index', 'name', 'probability'])
    for result in results:
        sample = result['sample']
        truth = true_name(sample, names) or ''
        for rank, (index, name, probability) in enumerate(ranked(result['scores'], names, top), start=1):
            writer.writerow([sample.path, sample.name, truth, rank, index, name, f'{probability:.6f}'])


def main(argv=None):
    args = parse(argv)
    streams = load_streams(args.config, args.weights, args.trust_code)
    paths = trained_model.find_inputs(args.input)
    if not paths:
        raise UsageError(f'--input {" ".join(args.input)}: no {", ".join(trained_model.EXTENSIONS)} files')
    results, errors = predict(streams, paths, args.alpha, args.batch_size, args.options)
    names = streams[0].class_names
    top = min(args.top, len(names))
    if args.format == 'json':
        write_json(results, errors, names, top, sys.stdout)
    elif args.format == 'csv':
        write_csv(results, names, top, sys.stdout)
    else:
        write_table(results, names, top, sys.stdout)
    if errors:
        print(f'could not predict {len(errors)} file(s) or sample(s) (listed above)', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
