"""Convert the released datasets into pyskl's annotation format (`preprocess.annotations`).

    python -m preprocess.convert ucla --input data/NW-UCLA/all_sqe --out data/NW-UCLA/ucla_3d.pkl
    python -m preprocess.convert ntu-npz --input data/ntu/NTU60_CS.npz --out data/ntu/ntu60_xsub_3d.pkl
    python -m preprocess.convert ntu-raw --dataset ntu60 --input data/nturgbd_raw/nturgb+d_skeletons \\
        --out data/ntu/ntu60_3d.pkl

NW-UCLA: the JSON coordinates as they are (one person, 20 joints), splits `train` (views 1 and 2) and `val` (view 3),
in the NW-UCLA feeder's order; a file that cannot be read is one `error:` line and the others go on (exit status
1). NTU from a preprocessed file: its two splits (`xsub_train`/`xsub_val`, `xview_*` or `xset_*`, pyskl's names),
each sample's frames up to the zero padding, both person slots as the NTU feeder reads them. NTU from the raw
`.skeleton` files: the three preprocessing steps per file and every benchmark's splits in one file (as pyskl's
ntu60_3danno.pkl); unreadable files are skipped, each named on its own line, and the exit status is then 1.
"""
import argparse
import glob
import logging
import os
import sys
import zipfile

import numpy as np
import torch
from tqdm import tqdm

from lstbase.arguments import ArgumentParser
from lstbase.files import check_output_file, not_a_regular_file, refuse_writing_inputs
from preprocess import annotations, ntu, video

# preprocessed file stem -> pyskl's benchmark name
NPZ_BENCHMARKS = {'NTU60_CS': 'xsub', 'NTU60_CV': 'xview', 'NTU120_CSub': 'xsub', 'NTU120_CSet': 'xset'}
RAW_BENCHMARKS = {'CS': 'xsub', 'CV': 'xview', 'CSub': 'xsub', 'CSet': 'xset'}

log = logging.getLogger('preprocess.convert')


def ntu_annotation(name, joints, label=None):
    """One NTU sample (T x 150: two persons x 25 joints x xyz) as an annotation (2 x T x 25 x 3), labelled when a
    label is given."""
    keypoint = np.asarray(joints, dtype=np.float32).reshape(len(joints), 2, ntu.NUM_JOINTS, 3).transpose(1, 0, 2, 3)
    annotation = dict(frame_dir=name, total_frames=len(joints), keypoint=keypoint)
    if label is not None:
        annotation['label'] = int(label)
    return annotation


def from_ucla(root, failures=None):
    """(annotations, split) of an NW-UCLA folder of JSON files. A file that cannot be read is left out, its one-line
    reason added to the list `failures`; without one, it stops the conversion."""
    from feeders import feeder_ucla
    result, split = [], {}
    for name in ('train', 'val'):
        stems, labels = feeder_ucla.split_files(root, name)
        split[name] = []
        for stem, label in zip(stems, tqdm(labels, desc=f'NW-UCLA {name}', leave=False)):
            try:
                sequence = feeder_ucla.load_sequence(os.path.join(root, stem + '.json'))
            except ValueError as exc:
                if failures is None:
                    raise
                failures.append(str(exc))
                continue
            # float64 as read: through the pose feeder's ucla pipeline they give the NW-UCLA feeder's values
            result.append(dict(frame_dir=stem, label=label, total_frames=len(sequence), keypoint=sequence[None]))
            split[name].append(stem)
    return result, split


def from_ntu_npz(path):
    """(annotations, split) of a preprocessed NTU file (.npz or its .npy copies)."""
    from feeders import feeder_ntu, tools
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem not in NPZ_BENCHMARKS:
        raise ValueError(f'{path}: expected one of {", ".join(f"{s}.npz" for s in NPZ_BENCHMARKS)} (the benchmark '
                         f'is told by the name)')
    benchmark, result, split = NPZ_BENCHMARKS[stem], [], {}
    for source, target in (('train', 'train'), ('test', 'val')):
        x, labels, names = feeder_ntu.load_split(path, source, use_mmap=True)
        split[f'{benchmark}_{target}'] = list(names)
        for i in tqdm(range(len(x)), desc=f'{stem} {source}', leave=False):
            sample = np.asarray(x[i])
            valid = int(tools.valid_frames(torch.from_numpy(feeder_ntu.model_layout(sample[None]))).item())
            result.append(ntu_annotation(names[i], sample[:valid], labels[i]))
    return result, split


def from_ntu_raw(raw_dirs, dataset, strict=False):
    """(annotations, split, skipped files) of raw `.skeleton` files, with every benchmark split of `dataset`."""
    files, skipped = ntu.find_raw_files(raw_dirs, dataset)
    result = []
    for name, path in tqdm(files.items(), desc=f'{dataset} raw files'):
        try:
            joints = ntu.preprocess_file(path, dataset)
        except ValueError as exc:
            if strict:
                raise
            skipped.append(str(exc))
            continue
        result.append(ntu_annotation(name, joints, ntu.parse_name(name)['action'] - 1))
    names = [a['frame_dir'] for a in result]
    split = {}
    for benchmark in ntu.BENCHMARKS[dataset]:
        _, train, test = ntu.split_order(names, benchmark, dataset)
        split[f'{RAW_BENCHMARKS[benchmark]}_train'] = [names[i] for i in train]
        split[f'{RAW_BENCHMARKS[benchmark]}_val'] = [names[i] for i in test]
    return result, split, skipped


# ------------------------------------------------------------------------------------------------ single files
INPUT_EXTENSIONS = ('.skeleton', '.json', '.npy', '.pkl') + video.VIDEO_EXTENSIONS


def read_input(path, dataset=None, layout='coco', split=None, max_persons=video.DEFAULT_MAX_PERSONS):
    """(annotations, the dataset the file's format implies or None) of one input file: an NTU `.skeleton` file (the
    three preprocessing steps; `dataset` 'ntu120' pads a lone actor with a copy, as NTU120's files), an NW-UCLA
    `.json` file, a `.npy` array C,T,V,M (a sample as a feeder holds it), an annotation file (`.pkl`: the samples of
    its `split`, all of them without), or a video (its keypoints estimated offline in `layout`, 'coco' or 'ntu', up to
    `max_persons` people followed: preprocess.video). Labels are an annotation file's own, unless they are
    placeholders (`without_placeholders`); the label an NTU or NW-UCLA file name encodes is left to the reader, which
    knows the model it is for."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in INPUT_EXTENSIONS:
        raise ValueError(f'{path}: unknown input type {extension!r}; expected {", ".join(INPUT_EXTENSIONS)}')
    if not os.path.isfile(path):
        raise not_a_regular_file(path, 'an input file') or FileNotFoundError(f'{path}: file not found')
    stem = os.path.splitext(os.path.basename(path))[0]
    if extension == '.pkl':
        samples, splits = annotations.load(path)
        return annotations.select(without_placeholders(samples), splits, split, path), None
    if extension in video.VIDEO_EXTENSIONS:
        video.check_installed(max_persons)
        found = video.annotation(video.Video(path, stem), video.extract(path, layout, max_persons=max_persons))
        del found['label']                                  # the extractor's placeholder: the class is unknown
        return [found], None
    if extension == '.skeleton':
        dataset = dataset if dataset in ntu.DATASETS else 'ntu60'
        return [ntu_annotation(stem, ntu.preprocess_file(path, dataset))], 'ntu120'
    if extension == '.json':
        from feeders import feeder_ucla
        sequence = feeder_ucla.load_sequence(path)
        return [dict(frame_dir=stem, total_frames=len(sequence), keypoint=sequence[None])], 'ucla'
    return [array_annotation(path, stem)], None


def without_placeholders(samples):
    """The annotations, their labels dropped where every one is 0: what tools/extract_pose.py writes without
    --labels-from-folders, a placeholder the format needs, not a class (one class alone trains nothing)."""
    if samples and all(isinstance(a.get('label'), (int, np.integer)) and a['label'] == 0 for a in samples):
        return [{key: value for key, value in a.items() if key != 'label'} for a in samples]
    return samples


def array_annotation(path, stem):
    """A .npy sample C,T,V,M as an annotation: C = 3 is read as 3-D coordinates here, a 2-D model reads it as x, y
    and score (tools/trained_model.py)."""
    try:
        joints = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:        # empty, cut short, another format
        raise ValueError(f'{path}: not a numpy array file ({exc})') from None
    if not isinstance(joints, np.ndarray):                                      # an .npz archive named .npy
        joints.close()
        raise ValueError(f'{path}: an .npz archive, expected a .npy array C,T,V,M')
    if joints.ndim != 4 or joints.shape[0] not in (2, 3) or not joints.shape[1]:
        raise ValueError(f'{path}: array of shape {joints.shape}, expected C,T,V,M with C = 2 or 3')
    if not np.issubdtype(joints.dtype, np.floating):
        raise ValueError(f'{path}: array of type {joints.dtype}, expected floating-point coordinates')
    return dict(frame_dir=stem, total_frames=joints.shape[1], keypoint=joints.transpose(3, 1, 2, 0))


def parser():
    p = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('source', choices=['ucla', 'ntu-npz', 'ntu-raw'])
    p.add_argument('--input', nargs='+', required=True,
                   help='ucla: the all_sqe folder; ntu-npz: a preprocessed .npz; ntu-raw: folder(s) of .skeleton files')
    p.add_argument('--out', required=True, help='the annotation file to write (.pkl)')
    p.add_argument('--dataset', choices=sorted(ntu.DATASETS), help='ntu-raw: which NTU RGB+D')
    p.add_argument('--strict', action='store_true', help='ntu-raw: stop at the first unreadable file')
    return p


def files_read(paths):
    """The files the --input paths stand for: a file (with a preprocessed file's .npy copies), or a folder's files."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found += [os.path.join(path, name) for name in sorted(os.listdir(path))]
        else:
            found += [path] + glob.glob(glob.escape(os.path.splitext(path)[0]) + '_*.npy')
    return found


def main(argv=None):
    p = parser()
    args = p.parse_args(argv)
    if args.source != 'ntu-raw' and len(args.input) != 1:
        p.error(f'{args.source}: one --input')
    if args.source == 'ntu-raw' and not args.dataset:
        p.error('ntu-raw needs --dataset ntu60 or ntu120')
    if not args.out.lower().endswith('.pkl'):
        p.error(f'--out {args.out}: expected an annotation file name ending in .pkl')
    check_output_file(args.out, '--out')
    refuse_writing_inputs([('--out', args.out)], [('--input', path) for path in files_read(args.input)])
    skipped, failures = [], []
    if args.source == 'ucla':
        result, split = from_ucla(args.input[0], failures)
    elif args.source == 'ntu-npz':
        result, split = from_ntu_npz(args.input[0])
    else:
        result, split, skipped = from_ntu_raw(args.input, args.dataset, args.strict)
    annotations.save(args.out, result, split)
    for line in skipped:
        print(f'skipped: {line}', file=sys.stderr)
    for line in failures:
        print(f'error: {line}', file=sys.stderr)
    print(f'{args.out}: {len(result)} samples, splits ' + ', '.join(f'{k} ({len(v)})' for k, v in split.items()))
    if skipped:
        print(f'{len(skipped)} of {len(result) + len(skipped)} files skipped (listed above)', file=sys.stderr)
    return 1 if skipped or failures else 0


if __name__ == '__main__':
    from lstbase.errors import run
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    sys.exit(run(main))
