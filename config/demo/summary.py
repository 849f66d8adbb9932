"""The demo's last table: each stream's best top-1 and the two streams fused by ensemble.py.

    python config/demo/summary.py work_dir/demo data/demo
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import ensemble  # noqa: E402

STREAMS = ('joint', 'bone')


def main(work, demo):
    names, labels = ensemble.dataset_labels('ntu/xview', demo)
    streams = [ensemble.load_scores(os.path.join(work, f'lst_{s}'), names) for s in STREAMS]
    fused = ensemble.top_k(ensemble.fuse(streams, 1.0), labels, 1)
    print(f'\nDemo results (X-View split of the synthetic set: {len(labels)} test samples, 10 classes, chance 10%)')
    print(f'{"":32s} top-1    best epoch')
    for stream in STREAMS:
        with open(os.path.join(work, f'lst_{stream}', 'metrics.json')) as f:
            metrics = json.load(f)
        print(f'LST {stream:28s} {100 * metrics["best_acc"]:6.2f}%  {metrics["best_epoch"]} of {metrics["num_epoch"]}')
    print(f'{"ensemble, 1 x joint + 1 x bone":32s} {100 * fused:6.2f}%  (fusion weights as in the release\'s '
          f'ensemble.py)')
    print(f'\nFiles: {work}/lst_joint and {work}/lst_bone (log.txt, best.pt, epoch1_test_score.pkl, '
          f'training_curves.png, confusion_matrix.png); data in {demo}')


if __name__ == '__main__':
    main(*sys.argv[1:3])
