"""Command lines of the NTU preprocessing: the three original scripts and one command for all three steps.

    python -m preprocess.ntu --dataset ntu60 --raw-dir data/nturgbd_raw/nturgb+d_skeletons --out-dir data/ntu
"""
import argparse
import logging

from lstbase import errors
from lstbase.arguments import ArgumentParser
from lstbase.files import check_writable, made_folder
from preprocess import ntu

# Run from data/ntu or data/ntu120, the original scripts read ../nturgbd_raw/ and write to ./
DEFAULT_RAW = {'ntu60': ['../nturgbd_raw/nturgb+d_skeletons/'],
               'ntu120': ['../nturgbd_raw/nturgb+d_skeletons/', '../nturgbd_raw/nturgb+d_skeletons120/']}
STEPS = {1: 'parse the raw .skeleton files', 2: 'denoise, pick two actors, move the origin',
         3: 'pad and write the benchmark splits'}


def parser_for(dataset, step):
    p = ArgumentParser(description=f'NTU RGB+D preprocessing, step {step}: {STEPS[step]}' if step
                       else 'NTU RGB+D preprocessing: all three steps')
    if dataset is None:
        p.add_argument('--dataset', required=True, choices=sorted(ntu.DATASETS))
    if step in (None, 1):
        p.add_argument('--raw-dir', nargs='+', default=None,
                       help='folder(s) of .skeleton files; files are found by name in any of them')
    p.add_argument('--out-dir', default='./', help='where intermediates and the final files go')
    if step in (None, 1, 2):
        p.add_argument('--workers', type=int, default=None, help='parallel processes (default: all cores)')
        p.add_argument('--strict', action='store_true', help='stop at the first bad file instead of skipping it')
    if step in (None, 3):
        p.add_argument('--format', choices=['npz', 'npy', 'both'], default='npz',
                       help="npz (as released), npy (memory-mappable, for use_mmap: True) or both")
    return p


def run(dataset, step, args):
    formats = {'npz': ('npz',), 'npy': ('npy',), 'both': ('npz', 'npy')}
    check_writable(args.out_dir, '--out-dir')
    with made_folder(args.out_dir):
        if step in (None, 1):
            ntu.parse_all(args.raw_dir or DEFAULT_RAW[dataset], args.out_dir, dataset, args.workers, args.strict)
        if step in (None, 2):
            ntu.denoise_all(args.out_dir, args.workers, args.strict)
        if step in (None, 3):
            ntu.write_splits(args.out_dir, formats[args.format])       # logs the files it wrote


def main(dataset=None, step=None, argv=None):
    """A bad file or folder ends in one line, `error: ...`, with exit status 2 (LST_DEBUG=1: the traceback)."""
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    args = parser_for(dataset, step).parse_args(argv)
    errors.run(run, dataset or args.dataset, step, args)


if __name__ == '__main__':
    main()
