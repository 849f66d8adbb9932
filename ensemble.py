#!/usr/bin/env python
"""Fuse the saved test scores of several streams (joint, bone, joint motion, bone motion) and report Top-1/Top-5.

    python ensemble.py --datasets ntu120/xsub --joint-dir work_dir/ntu120/csub/lst_joint \\
        --bone-dir work_dir/ntu120/csub/lst_bone --joint-motion-dir ... --bone-motion-dir ...

Fusion weights as released: two streams joint + alpha * bone; three streams 0.6, 0.6, 0.4; four streams
0.8, 0.8, 0.2, 0.2; or your own with --weights. Scores are matched to labels by sample name; labels are read from
the dataset files (under --data-dir) without loading the skeleton arrays. Without --datasets, the test split of the
joint stream's config.yaml is used: any dataset, e.g. your own annotation file.
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

import specs  # noqa: E402
from lstbase.arguments import ArgumentParser  # noqa: E402
from lstbase.errors import run  # noqa: E402
from lstbase.files import same_file  # noqa: E402
from lstbase.safe_load import load_pickle  # noqa: E402
from lstbase.scores import top_k  # noqa: E402

DATA_FOLDERS = ', '.join(sorted({b.data.split(os.sep)[0] + '/' for b in specs.BENCHMARKS.values()}))
WEIGHTS = {3: [0.6, 0.6, 0.4], 4: [0.8, 0.8, 0.2, 0.2]}
SCORE_FILE = 'epoch1_test_score.pkl'
STREAM_NAMES = ('joint', 'bone', 'joint motion', 'bone motion')
STREAM_FLAGS = ('--joint-dir', '--bone-dir', '--joint-motion-dir', '--bone-motion-dir')


def dataset_labels(dataset, data_dir):
    """(sample names, labels) of a released benchmark's test split, its data under `data_dir`."""
    benchmark = specs.BENCHMARKS[dataset]
    try:
        return benchmark.test_labels(data_dir)
    except FileNotFoundError:
        raise FileNotFoundError(f'{os.path.join(data_dir, benchmark.data)} not found: --data-dir is the folder that '
                                f'holds {DATA_FOLDERS} (default data); run the preprocessing first (see README)') from None


def config_labels(directory):
    """(sample names, labels, spec name) of the test split that <directory>/config.yaml names."""
    from engine.args import load_config
    path = os.path.join(directory, 'config.yaml')
    config = load_config(path)
    spec = specs.of_config(config.get('dataset'), config.get('feeder'), (config.get('model_args') or {}).get('num_class'))
    try:
        names, labels = spec.split_labels(config.get('test_feeder_args') or {})
    except TypeError as exc:                                # a feeder argument the split needs is missing
        raise ValueError(f'{path}: test_feeder_args do not name the test split ({exc})') from None
    return names, labels, spec.name


def load_scores(directory, names, positional=True):
    """Score rows of a stream's folder in the order of `names`."""
    path = os.path.join(directory, SCORE_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f'{path} not found: run the test phase with --save-score True for this stream')
    return load_scores_file(path, names, positional)


def load_scores_file(path, names, positional=True):
    """Score rows in the order of `names`; with `positional`, the release's NTU files keyed by position ('test_<i>'
    or integers, in the npz's order) also work. Read without running code (score files are what people share)."""
    scores = load_pickle(path, 'score file')
    if not isinstance(scores, dict) or not scores:
        raise ValueError(f'{path}: expected a dict of sample name -> class scores, got '
                         f'{"an empty dict" if isinstance(scores, dict) else type(scores).__name__}')
    keys = [str(k) for k in scores]
    table = dict(zip(keys, scores.values()))
    if set(names) <= set(table):
        extra = sorted(set(table) - set(names))
        if extra:
            raise ValueError(f'{path}: {len(extra)} of its {len(table)} scores are of samples outside this test split '
                             f'(e.g. {extra[:3]}): the scores of another split or dataset?')
        rows = [table[n] for n in names]
    elif len(table) == len(names) and all(k.isdigit() or k.startswith('test_') for k in keys):
        if not positional:
            raise ValueError(f'{path}: keyed by position, in the release\'s own validation order, which is not '
                             f'the order of the files: run the test phase here (--phase test --save-score True) for '
                             f'scores keyed by sample name')
        rows = list(scores.values())                    # the release's positional keys (NTU: the npz's order)
    else:
        missing = sorted(set(names) - set(table))
        raise ValueError(f'{path}: {len(missing)} test samples have no score (e.g. {missing[:3]}); '
                         f'it holds {len(table)} scores for a test split of {len(names)}')
    try:
        score = np.stack([np.asarray(row, dtype=np.float64) for row in rows])
    except (ValueError, TypeError) as exc:
        raise ValueError(f'{path}: score rows are not vectors of one length ({exc})') from None
    if score.ndim != 2:
        raise ValueError(f'{path}: a score of shape {score.shape[1:]} per sample; expected a vector of class scores')
    bad = ~np.isfinite(score).all(axis=1)
    if bad.any():
        raise ValueError(f'{path}: {int(bad.sum())} of {len(score)} samples have non-finite scores (NaN or Inf); '
                         f'this stream cannot be fused')
    return score


def weights_for(count, alpha=1.0):
    """The released fusion weights of `count` streams (two streams: joint + alpha * bone)."""
    return WEIGHTS.get(count, [1.0, alpha])


def fuse(streams, alpha=1.0, weights=None):
    classes = {s.shape[1] for s in streams}
    if len(classes) > 1:
        raise ValueError(f'score files disagree on the number of classes: {sorted(classes)}')
    weights = weights or weights_for(len(streams), alpha)
    return sum(w * s for w, s in zip(weights, streams))


def given_twice(given):
    """'flag folder is flag folder' for the first folder of (flag, folder) pairs that another names, else None."""
    for k, (flag, folder) in enumerate(given):
        for earlier, other in given[:k]:
            if same_file(folder, other):
                return f'{flag} {folder} is {earlier} {other}'
    return None


def parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--datasets', '--dataset', dest='dataset', default=None, choices=sorted(specs.BENCHMARKS),
                   help='the benchmark the scores are of (default: the test split of <joint-dir>/config.yaml)')
    p.add_argument('--joint-dir', required=True, help=f'folder holding {SCORE_FILE} of the joint stream')
    p.add_argument('--bone-dir', required=True, help=f'folder holding {SCORE_FILE} of the bone stream')
    p.add_argument('--joint-motion-dir', default=None, help='third stream (joint motion), optional')
    p.add_argument('--bone-motion-dir', default=None, help='fourth stream (bone motion), optional')
    p.add_argument('--alpha', default=1, type=float, help='bone weight in the two-stream fusion (default 1)')
    p.add_argument('--weights', type=float, nargs='+', default=None, metavar='W',
                   help='one weight per stream given, in the order joint, bone, joint motion, bone motion '
                        '(default: the release\'s fusion weights)')
    p.add_argument('--data-dir', default='data',
                   help=f'with --datasets: the folder holding {DATA_FOLDERS} (the labels are read from there; '
                        f'default: data)')
    return p


def main(argv=None):
    p = parser()
    arg = p.parse_args(argv)
    if arg.bone_motion_dir and not arg.joint_motion_dir:
        p.error('--bone-motion-dir needs --joint-motion-dir (three streams are joint, bone, joint motion)')
    given = [(flag, d) for flag, d in zip(STREAM_FLAGS, (arg.joint_dir, arg.bone_dir, arg.joint_motion_dir,
                                                         arg.bone_motion_dir)) if d]
    twice = given_twice(given)
    if twice:                                              # its scores fused with themselves: no ensemble at all
        p.error(f'{twice}: one stream given twice; give each stream\'s own folder')
    dirs = [d for _, d in given]
    if arg.weights is not None and len(arg.weights) != len(dirs):
        p.error(f'--weights: {len(arg.weights)} weights for {len(dirs)} streams')
    weights = arg.weights or weights_for(len(dirs), arg.alpha)
    if not np.isfinite(weights).all():
        p.error(f'--alpha / --weights: expected finite numbers, got {weights}')
    if not np.any(weights):                                # all-zero scores: every sample would be "class 0"
        p.error(f'--weights {" ".join(map(str, weights))}: every stream weighs 0; give at least one weight')
    if arg.dataset:
        names, labels = dataset_labels(arg.dataset, arg.data_dir)
        spec, title = specs.BENCHMARKS[arg.dataset].spec, arg.dataset
    else:
        names, labels, spec = config_labels(arg.joint_dir)
        title = f'{spec} (the test split of {os.path.join(arg.joint_dir, "config.yaml")})'
    streams = [load_scores(d, names, positional=specs.get(spec).positional_scores) for d in dirs]
    for directory, stream in zip(dirs, streams):
        if stream.shape[1] <= max(labels):
            raise ValueError(f'{os.path.join(directory, SCORE_FILE)}: scores for {stream.shape[1]} classes, but '
                             f'{title} has labels up to {max(labels)}: the scores of another dataset?')
    score = fuse(streams, weights=weights)
    top1, top5 = top_k(score, labels, 1), top_k(score, labels, 5)
    fused = ' + '.join(f'{w:g} x {name}' for w, name in zip(weights, STREAM_NAMES))
    print(f'{title}, {len(dirs)} streams fused as {fused} ({len(labels)} test samples):')
    print(f'Top1 Acc: {top1 * 100:.4f}%')
    print(f'Top5 Acc: {top5 * 100:.4f}%')
    return top1, top5


if __name__ == '__main__':
    run(main)
