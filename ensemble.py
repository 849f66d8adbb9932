#!/usr/bin/env python
"""Fuse the saved test scores of several streams (joint, bone, joint motion, bone motion) and report Top-1/Top-5.

    python ensemble.py --datasets ntu120/xsub --joint-dir work_dir/ntu120/csub/lst_joint \
        --bone-dir work_dir/ntu120/csub/lst_bone --joint-motion-dir ... --bone-motion-dir ...

Fusion weights as released: two streams joint + alpha * bone; three streams 0.6, 0.6, 0.4; four streams
0.8, 0.8, 0.2, 0.2. Scores are matched to labels by sample name; labels are read from the dataset files without
loading the skeleton arrays.
"""
import argparse
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

NTU_FILES = {'ntu/xsub': 'ntu/NTU60_CS.npz', 'ntu/xview': 'ntu/NTU60_CV.npz',
             'ntu120/xsub': 'ntu120/NTU120_CSub.npz', 'ntu120/xset': 'ntu120/NTU120_CSet.npz'}
DATASETS = sorted(NTU_FILES) + ['NW-UCLA']
WEIGHTS = {3: [0.6, 0.6, 0.4], 4: [0.8, 0.8, 0.2, 0.2]}
SCORE_FILE = 'epoch1_test_score.pkl'


def ntu_labels(path):
    """(sample names, labels) of the test split of a preprocessed NTU file, without loading the skeletons."""
    if not os.path.exists(path):
        raise SystemExit(f'{path} not found: run the preprocessing (see README) or pass --data-dir')
    with np.load(path) as npz:                          # reads only the members asked for
        labels = npz['y_test'].argmax(1).tolist()
        names = [str(n) for n in npz['sample_name_test']] if 'sample_name_test' in npz.files else None
    return names or [f'test_{i}' for i in range(len(labels))], labels


def dataset_labels(dataset, data_dir):
    """(sample names, labels) of the test split."""
    if dataset == 'NW-UCLA':
        from feeders.feeder_ucla import split_files
        return split_files(os.path.join(data_dir, 'NW-UCLA', 'all_sqe'), 'val')
    return ntu_labels(os.path.join(data_dir, NTU_FILES[dataset]))


def load_scores(directory, names):
    """Score rows of a stream's folder in the order of `names`."""
    path = os.path.join(directory, SCORE_FILE)
    if not os.path.exists(path):
        raise SystemExit(f'{path} not found: run the test phase with --save-score True for this stream')
    return load_scores_file(path, names)


def load_scores_file(path, names):
    """Score rows in the order of `names`; released files keyed by position ('test_<i>' or integers) also work."""
    with open(path, 'rb') as f:
        scores = pickle.load(f)
    keys = [str(k) for k in scores]
    table = dict(zip(keys, scores.values()))
    if set(names) <= set(table):
        rows = [table[n] for n in names]
    elif len(table) == len(names) and all(k.isdigit() or k.startswith('test_') for k in keys):
        rows = list(scores.values())                    # the release's positional keys
    else:
        missing = sorted(set(names) - set(table))
        raise SystemExit(f'{path}: {len(missing)} test samples have no score (e.g. {missing[:3]}); '
                         f'it holds {len(table)} scores for a test split of {len(names)}')
    return np.stack(rows).astype(np.float64)


def weights_for(count, alpha=1.0):
    """The released fusion weights of `count` streams (two streams: joint + alpha * bone)."""
    return WEIGHTS.get(count, [1.0, alpha])


def fuse(streams, alpha):
    classes = {s.shape[1] for s in streams}
    if len(classes) > 1:
        raise SystemExit(f'score files disagree on the number of classes: {sorted(classes)}')
    return sum(w * s for w, s in zip(weights_for(len(streams), alpha), streams))


def top_k(score, labels, k):
    rank = np.argsort(score, axis=1)[:, -k:]
    return float(np.mean([label in row for label, row in zip(labels, rank)]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--datasets', '--dataset', dest='dataset', required=True, choices=DATASETS)
    parser.add_argument('--alpha', default=1, type=float, help='bone weight in the two-stream fusion')
    parser.add_argument('--joint-dir', required=True, help=f'folder holding {SCORE_FILE} of the joint stream')
    parser.add_argument('--bone-dir', required=True, help=f'folder holding {SCORE_FILE} of the bone stream')
    parser.add_argument('--joint-motion-dir', default=None)
    parser.add_argument('--bone-motion-dir', default=None)
    parser.add_argument('--data-dir', default='data', help='the data folder (NTU npz files, NW-UCLA/all_sqe)')
    arg = parser.parse_args(argv)
    if arg.bone_motion_dir and not arg.joint_motion_dir:
        parser.error('--bone-motion-dir needs --joint-motion-dir (three streams are joint, bone, joint motion)')

    names, labels = dataset_labels(arg.dataset, arg.data_dir)
    dirs = [d for d in (arg.joint_dir, arg.bone_dir, arg.joint_motion_dir, arg.bone_motion_dir) if d]
    score = fuse([load_scores(d, names) for d in dirs], arg.alpha)
    top1, top5 = top_k(score, labels, 1), top_k(score, labels, 5)
    print(f'Top1 Acc: {top1 * 100:.4f}%')
    print(f'Top5 Acc: {top5 * 100:.4f}%')
    return top1, top5


if __name__ == '__main__':
    main()
