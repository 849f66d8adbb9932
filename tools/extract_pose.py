#!/usr/bin/env python
"""Extract skeletons from videos into pyskl's annotation format, offline (BlazePose; `make install-video` first).

    python tools/extract_pose.py --input clip.mp4 --out data/clips/ann.pkl
    python tools/extract_pose.py --input videos/ --out data/videos/ann.pkl --labels-from-folders [--val-fraction 0.2]

--input: video files, or folders walked for .mp4 .avi .mov .mkv .webm (any case). Each video gives one sample named
by its file stem; where stems repeat, by its path below those videos' shared folder without the extension
(`jump/001`; with it where only the extension tells two apart).
--max-persons N (default 2): up to N people found in each frame and followed with one id each; the sample holds every
person tracked (M), the most present first. 1: MediaPipe's own single-person tracker, as earlier versions.
--layout coco: 2-D COCO-17 keypoints in pixels with BlazePose's visibility as score; ntu: 3-D NTU RGB+D 25 joints in
metres (joints BlazePose lacks are made up: see preprocess/video.py).
--labels-from-folders: the class of a video is the folder holding it; classes sorted by name get labels 0..K-1 and
are written to <out stem>_label_map.txt, one per line (an existing one naming other classes is refused, not
replaced). Videos under root/train/<class>/ and root/val/<class>/ get the splits train and val. --val-fraction F
instead puts a seeded share F of each class in val (F x n rounded, ties to train: 0.5 of 3 videos puts 1 in val),
the rest in train.
Without --labels-from-folders every label is 0, a placeholder (the file serves prediction, not accuracy).

An interrupted run resumes: each video's result is kept in a hidden `.<out name>.parts/` folder beside the output
until the output is written. A video that cannot be decoded, or where nobody is found, is reported on one line and
left out; the exit status is then 1. A wrong argument ends with one `error:` line and status 2.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from lstbase.arguments import ArgumentParser  # noqa: E402
from lstbase.errors import run  # noqa: E402
from lstbase.files import refuse_replacing  # noqa: E402
from preprocess import video  # noqa: E402


def parse(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', nargs='+', required=True, help='video files or folders of them')
    parser.add_argument('--out', required=True, help='the annotation file to write (e.g. ann.pkl)')
    parser.add_argument('--layout', choices=sorted(video.LAYOUTS), default='coco',
                        help='coco: 2-D COCO-17 in pixels (default); ntu: 3-D NTU RGB+D 25 joints in metres')
    parser.add_argument('--max-persons', type=int, default=video.DEFAULT_MAX_PERSONS,
                        help=f'people followed at once (default {video.DEFAULT_MAX_PERSONS}); 1: MediaPipe\'s '
                             f'single-person tracker')
    parser.add_argument('--labels-from-folders', action='store_true',
                        help='the class of a video is the name of the folder holding it')
    parser.add_argument('--val-fraction', type=float, help='share of each class put in the val split')
    parser.add_argument('--seed', type=int, default=0, help='seed of the --val-fraction split (default 0)')
    args = parser.parse_args(argv)
    if args.max_persons < 1:
        parser.error(f'--max-persons {args.max_persons}: expected at least 1')
    return args


def main(argv=None):
    args = parse(argv)
    paths = video.find_videos(args.input)
    video.check_output(args.out, args.input, paths)
    videos, classes = video.plan(paths, args.labels_from_folders, args.val_fraction, args.seed)
    if classes:
        refuse_replacing(video.label_map_path(args.out), classes, 'class names',
                         'the labels written would not match it; choose another --out, or move it away')
    extraction = video.extract_all(videos, args.out, args.layout, args.max_persons)
    if not extraction.annotations:
        print(f'none of the {len(videos)} videos gave a skeleton; nothing written', file=sys.stderr)
        return 1
    video.write(args.out, extraction, classes)
    if not args.labels_from_folders:
        print('note: without --labels-from-folders every label is 0 (a placeholder)', file=sys.stderr)
    print(summary(args.out, extraction, classes))
    if extraction.failures:
        print(f'{len(extraction.failures)} of {len(videos)} videos skipped (listed above)', file=sys.stderr)
        return 1
    return 0


def summary(out, extraction, classes):
    count = len(extraction.annotations)
    line = f'wrote {out}: {count} video{"s" if count != 1 else ""}'
    if classes:
        line += f', {len(classes)} classes (label map {video.label_map_path(out)})'
    if extraction.split:
        line += ', ' + ', '.join(f'{name} {len(names)}' for name, names in extraction.split.items())
    if extraction.frames_estimated:
        rate = extraction.frames_estimated / max(extraction.seconds, 1e-9)
        line += (f'; {extraction.frames_estimated} frames decoded and estimated at {rate:.1f} frames/s '
                 f'({1000 / rate:.1f} ms per frame)')
    return line


if __name__ == '__main__':
    sys.exit(run(main))
