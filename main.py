#!/usr/bin/env python
"""Train or test LST (or CTR-GCN) on any dataset: the config says which (`dataset`, else its feeder).

    python main.py --config config/custom/lst_joint_2d.yaml --work-dir work_dir/mine \\
        --train-feeder-args "{'ann_file': 'my.pkl', 'split': 'train'}" \\
        --test-feeder-args "{'ann_file': 'my.pkl', 'split': 'val'}" --text-dir my_text

main_multipart_ntu.py and main_multipart_ucla.py are the released entry points of NTU RGB+D and NW-UCLA.
"""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'torchlight')]

if __name__ == '__main__':
    from engine import main
    from lstbase.errors import run
    run(main, None)
