"""NTU RGB+D 60/120 preprocessing, shared by data/ntu and data/ntu120 (CTR-GCN's pipeline, from SGN/HCN).

Three steps, as the original scripts: (1) parse the raw `.skeleton` files, (2) denoise and pick two actors,
(3) translate to the spine of the first frame, pad to the longest sequence and write the benchmark splits.
Values equal the reference scripts'; the work is vectorised per file, files run in parallel, intermediates are
written in chunks, and each split is written as soon as it is built (peak memory: one split).
"""
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np
from tqdm import tqdm

from lstbase.files import atomic_write
from lstbase.safe_load import load_pickle

NAME = re.compile(r'^S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})$')
NUM_JOINTS = 25
CHUNK = 500                               # samples per intermediate file

# Denoising thresholds of the reference.
NOISE_LEN = 11
NOISE_SPREAD_XY = 0.8
NOISE_SPREAD_RATIO = 0.69754

CS60_TRAIN = [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38]
CS120_TRAIN = CS60_TRAIN + [45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85,
                            86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103]
# benchmark -> (file stem, name field that splits it, train ids in order, test ids in order)
BENCHMARKS = {
    'ntu60': {'CS': ('NTU60_CS', 'performer', CS60_TRAIN, [i for i in range(1, 41) if i not in CS60_TRAIN]),
              'CV': ('NTU60_CV', 'camera', [2, 3], [1])},
    'ntu120': {'CSub': ('NTU120_CSub', 'performer', CS120_TRAIN, [i for i in range(1, 107) if i not in CS120_TRAIN]),
               'CSet': ('NTU120_CSet', 'setup', list(range(2, 33, 2)), list(range(1, 33, 2)))},
}
DATASETS = {'ntu60': dict(num_class=60, max_setup=17, pad_with_copy=False),
            'ntu120': dict(num_class=120, max_setup=32, pad_with_copy=True)}

log = logging.getLogger('preprocess.ntu')


class SkeletonFileError(ValueError):
    """A raw file that cannot be used; the message names the file, the line and what was expected."""


def parse_name(name):
    """{'setup', 'camera', 'performer', 'replication', 'action'} from 'S001C002P003R002A013'."""
    match = NAME.match(name)
    if not match:
        raise SkeletonFileError(f'{name}: file name is not of the form SsssCcccPpppRrrrAaaa.skeleton')
    return dict(zip(('setup', 'camera', 'performer', 'replication', 'action'), map(int, match.groups())))


# ------------------------------------------------------------------------------------------------ step 1: parse
@dataclass
class Body:
    joints: np.ndarray        # frames x 25 x 3, float32, in the order seen
    start: int                # index of the first valid frame the body appears in
    motion: float = None      # summed per-joint variance (set when the sequence has several bodies)

    @property
    def length(self):
        return len(self.joints)

    @property
    def end(self):
        # the reference counts a body's frames from its first one, contiguously, even across gaps
        return self.start + self.length - 1


@dataclass
class RawSequence:
    name: str
    num_frames: int                               # frames with at least one body
    path: str = ''                                # the raw file, for messages
    bodies: dict = field(default_factory=dict)    # body id -> Body, in order of first appearance
    dropped_frames: list = field(default_factory=list)


def _number(text, path, line, what):
    try:
        return int(text)
    except ValueError:
        raise SkeletonFileError(f'{path}, line {line}: expected {what}, got {text!r}') from None


def parse_skeleton(path):
    """Read one `.skeleton` file. Joint lines are parsed in one vectorised pass."""
    name = os.path.basename(path)[:-len('.skeleton')]
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
    except UnicodeDecodeError as exc:
        raise SkeletonFileError(f'{path}: not text ({exc.reason} at byte {exc.start}); expected a Kinect .skeleton '
                                f'file of numbers') from None
    while lines and not lines[-1].strip():        # trailing newlines are not lines a frame can use
        lines.pop()
    if not lines or not lines[0].strip():
        raise SkeletonFileError(f'{path}, line 1: expected the number of frames, the file is empty')
    num_frames = _number(lines[0].strip(), path, 1, 'the number of frames')
    index, valid = 1, -1
    spans, owners, frames, dropped = [], [], [], []   # per body and frame: joint lines, body id, valid frame
    try:
        for frame in range(num_frames):
            num_bodies = _number(lines[index].strip(), path, index + 1, 'the number of bodies')
            index += 1
            if num_bodies == 0:
                dropped.append(frame)
                continue
            valid += 1
            for _ in range(num_bodies):
                body_id = lines[index].split()[0]
                num_joints = _number(lines[index + 1].strip(), path, index + 2, 'the number of joints')
                if num_joints != NUM_JOINTS:
                    raise SkeletonFileError(f'{path}, line {index + 2}: {num_joints} joints, expected {NUM_JOINTS}')
                spans.append((index + 2, index + 2 + NUM_JOINTS))
                owners.append(body_id)
                frames.append(valid)
                index += 2 + NUM_JOINTS
    except IndexError:
        raise SkeletonFileError(f'{path}: truncated at line {index + 1} (the header promises {num_frames} frames)')
    if len(lines) < index or (spans and spans[-1][1] > len(lines)):
        raise SkeletonFileError(f'{path}: truncated at line {len(lines)} (the header promises {num_frames} frames)')
    if len(lines) > index:
        raise SkeletonFileError(f'{path}, line {index + 1}: more lines than the {num_frames} frames the header '
                                f'promises (a wrong frame count)')
    if not spans:
        raise SkeletonFileError(f'{path}: no body in any of its {num_frames} frames (a missing skeleton)')
    joints = _parse_joint_lines(lines, spans, path)
    sequence = RawSequence(name, valid + 1, path=path, dropped_frames=dropped)
    rows_of, first_frame = {}, {}
    for row, (body_id, frame) in enumerate(zip(owners, frames)):
        rows_of.setdefault(body_id, []).append(row)
        first_frame.setdefault(body_id, frame)
    for body_id, rows in rows_of.items():
        sequence.bodies[body_id] = Body(joints[rows], first_frame[body_id])
    if len(sequence.bodies) > 1:
        for body in sequence.bodies.values():
            body.motion = float(np.sum(np.var(body.joints.reshape(-1, 3), axis=0)))
    return sequence


def _parse_joint_lines(lines, spans, path):
    text = [lines[i] for a, b in spans for i in range(a, b)]
    try:
        # numpy's C text reader; float64 then float32, as numpy converts strings, so the values equal the
        # reference's bit for bit
        joints = np.loadtxt(text, usecols=(0, 1, 2), dtype=np.float64, comments=None, ndmin=2).astype(np.float32)
        if len(joints) != len(text):                   # loadtxt skips blank lines
            raise ValueError('blank joint line')
    except ValueError:
        joints = _xyz_any_spacing(text, lines, spans, path)
    finite = np.isfinite(joints).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        number = [i for a, b in spans for i in range(a, b)][row] + 1
        raise SkeletonFileError(f'{path}, line {number}: joint values are not finite ({lines[number - 1].strip()!r})')
    return joints.reshape(len(spans), NUM_JOINTS, 3)


def _xyz_any_spacing(text, lines, spans, path):
    """The slow path: a line that is not numbers is reported with its line number."""
    try:
        return np.array([row.split()[:3] for row in text], dtype=np.float32)
    except ValueError:
        for (a, b) in spans:
            for i in range(a, b):
                fields = lines[i].split()
                try:
                    np.array(fields[:3], dtype=np.float32)
                    if len(fields) < 3:
                        raise ValueError
                except ValueError:
                    raise SkeletonFileError(f'{path}, line {i + 1}: expected joint values "x y z ...", '
                                            f'got {lines[i].strip()!r}') from None
        raise


# ------------------------------------------------------------------------------------------------ step 2: denoise
def _spread_valid(joints):
    """Frames whose x-spread is at most 0.8 times the y-spread."""
    x, y = joints[..., 0], joints[..., 1]
    return np.nonzero((x.max(1) - x.min(1)) <= NOISE_SPREAD_XY * (y.max(1) - y.min(1)))[0]


def denoise_bodies(bodies):
    """Bodies kept after the length and spread filters, by decreasing motion (ties keep their order)."""
    bodies = {k: v for k, v in bodies.items() if v.length > NOISE_LEN}
    if len(bodies) > 1:
        for body_id in list(bodies):
            if len(bodies) == 1:
                break
            body = bodies[body_id]
            valid = _spread_valid(body.joints)
            noise = body.length - len(valid)
            if noise == 0:
                continue
            if noise / float(body.length) >= NOISE_SPREAD_RATIO:
                del bodies[body_id]
            else:
                body.motion = min(body.motion, float(np.sum(np.var(body.joints[valid].reshape(-1, 3), axis=0))))
    if len(bodies) <= 1:
        return list(bodies.values())
    return sorted(bodies.values(), key=lambda b: b.motion, reverse=True)


def _one_actor(body, num_frames):
    joints = np.zeros((num_frames, 75), dtype=np.float32)
    joints[body.start:body.end + 1] = body.joints.reshape(-1, 75)
    return joints


def denoise(sequence):
    """Joints of the (at most two) actors: num_frames x 75 for one actor, x 150 for two."""
    if len(sequence.bodies) == 1:
        joints = _one_actor(next(iter(sequence.bodies.values())), sequence.num_frames)
        if not joints.any():                # kept by the release: an all-zero sample that stops training later
            raise SkeletonFileError(f'{sequence.path or sequence.name}: its one body has no non-zero joint')
        return joints
    bodies = denoise_bodies(sequence.bodies)
    if not bodies:
        raise SkeletonFileError(f'{sequence.path or sequence.name}: every body is shorter than {NOISE_LEN + 1} frames')
    if len(bodies) == 1:
        joints = _one_actor(bodies[0], sequence.num_frames)
    else:
        joints = np.zeros((sequence.num_frames, 150), dtype=np.float32)
        actor1 = bodies[0]
        start1, end1 = actor1.start, actor1.end
        joints[start1:end1 + 1, :75] = actor1.joints.reshape(-1, 75)
        start2, end2 = 0, 0
        for body in bodies[1:]:
            if min(end1, body.end) - max(start1, body.start) <= 0:          # no overlap with actor 1
                joints[body.start:body.end + 1, :75] = body.joints.reshape(-1, 75)
                start1, end1 = min(body.start, start1), max(body.end, end1)
            elif min(end2, body.end) - max(start2, body.start) <= 0:        # no overlap with actor 2
                joints[body.start:body.end + 1, 75:] = body.joints.reshape(-1, 75)
                start2, end2 = min(body.start, start2), max(body.end, end2)
    return joints[joints.sum(axis=1) != 0]                                  # cut frames without any actor


# ------------------------------------------------------------------------------------------------ step 3
def translate(joints):
    """Move the origin to joint 2 of actor 1 in its first non-zero frame; missing actor frames stay zero."""
    joints = joints.copy()
    missing = [np.nonzero(joints[:, a:a + 75].sum(axis=1) == 0)[0] for a in range(0, joints.shape[1], 75)]
    nonzero = np.nonzero((joints[:, :75] != 0).any(axis=1))[0]
    first = nonzero[0] if len(nonzero) else len(joints) - 1
    origin = joints[first, 3:6].copy()
    joints -= np.tile(origin, joints.shape[1] // 3)
    if joints.shape[1] == 150:
        for a, frames in zip((0, 75), missing):
            joints[frames, a:a + 75] = 0
    return joints


def pad_actors(joints, copy_lone_actor):
    """T x 150: a lone actor is followed by zeros (NTU60) or by a copy of itself (NTU120, as the reference)."""
    if joints.shape[1] == 150:
        return joints
    return np.hstack([joints, joints if copy_lone_actor else np.zeros_like(joints)])


def preprocess_file(path, dataset):
    """Steps 1 to 3 for one `.skeleton` file: its T x 150 sample as the written splits hold it, without the zero
    frames that pad every sample to the longest one (the feeders crop within the non-zero frames)."""
    return pad_actors(translate(denoise(parse_skeleton(path))), DATASETS[dataset]['pad_with_copy'])


def split_order(names, benchmark, dataset):
    """Indices of the train and test samples, grouped by split id in the listed order, then by name."""
    stem, key, train_ids, test_ids = BENCHMARKS[dataset][benchmark]
    values = np.array([parse_name(n)[key] for n in names])
    order = lambda ids: np.concatenate([np.nonzero(values == i)[0] for i in ids] + [np.zeros(0, int)]).astype(int)
    return stem, order(train_ids), order(test_ids)


# ------------------------------------------------------------------------------------------------ files
def find_raw_files(raw_dirs, dataset):
    """{name: path} of the dataset's `.skeleton` files in any of `raw_dirs`, sorted by name."""
    missing = [d for d in raw_dirs if not os.path.isdir(d)]
    if missing:
        raise FileNotFoundError(f'raw skeleton folder(s) not found: {", ".join(missing)} (see README: put the '
                                f'extracted .skeleton files under data/nturgbd_raw/ or pass --raw-dir)')
    files, bad = {}, []
    for directory in raw_dirs:
        for entry in os.listdir(directory):
            if not entry.endswith('.skeleton'):
                continue
            name, path = entry[:-len('.skeleton')], os.path.join(directory, entry)
            try:
                fields = parse_name(name)
            except SkeletonFileError as exc:
                bad.append(f'{path}: {str(exc).split(": ", 1)[1]}')
                continue
            if fields['setup'] > DATASETS[dataset]['max_setup'] or fields['action'] > DATASETS[dataset]['num_class']:
                continue
            if name in files and os.path.realpath(files[name]) != os.path.realpath(path):
                raise SkeletonFileError(f'{name}.skeleton is in two --raw-dir folders: {files[name]} and {path}; '
                                        f'keep one copy (which one is right cannot be told)')
            files[name] = path
    return dict(sorted(files.items())), bad


def _pool_map(function, tasks, workers, desc):
    """Run `function` over `tasks` in `workers` processes (in this one for 1), with a progress bar."""
    workers = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    if workers == 1:
        yield from tqdm(map(function, tasks), total=len(tasks), desc=desc, unit='chunk')
        return
    with get_context('fork').Pool(workers) as pool:
        yield from tqdm(pool.imap(function, tasks), total=len(tasks), desc=desc, unit='chunk')


def _save_pickle(path, obj):
    atomic_write(path, lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def _load_pickle(path):
    """An intermediate of steps 1 and 2, read without running code: only these classes and plain data."""
    return load_pickle(path, 'preprocessing intermediate', {(__name__, 'Body'), (__name__, 'RawSequence')})


def _parse_chunk(task):
    """Worker of step 1: parse a chunk of files, write it, return (file, names, errors)."""
    path, files, strict = task
    sequences, errors = [], []
    for file in files:
        try:
            sequences.append(parse_skeleton(file))
        except (SkeletonFileError, OSError) as exc:
            if strict:
                raise
            errors.append(str(exc))
    _save_pickle(path, sequences)
    return os.path.basename(path), [s.name for s in sequences], errors


def parse_all(raw_dirs, out_dir, dataset, workers=None, strict=False):
    """Step 1: raw `.skeleton` files -> <out_dir>/raw_data/raw_XXXXX.pkl chunks and index.pkl."""
    files, errors = find_raw_files(raw_dirs, dataset)
    if not files:
        raise FileNotFoundError(f'no {dataset} .skeleton files in {", ".join(raw_dirs)}')
    if errors and strict:
        raise SkeletonFileError(errors[0])
    target = os.path.join(out_dir, 'raw_data')
    paths = list(files.values())
    tasks = [(os.path.join(target, f'raw_{i // CHUNK:05d}.pkl'), paths[i:i + CHUNK], strict)
             for i in range(0, len(paths), CHUNK)]
    os.makedirs(target, exist_ok=True)
    chunks = []
    for chunk, names, chunk_errors in _pool_map(_parse_chunk, tasks, workers, 'parse'):
        chunks.append(dict(file=chunk, names=names))
        errors += chunk_errors
    _save_pickle(os.path.join(target, 'index.pkl'), dict(dataset=dataset, chunks=chunks, errors=errors))
    return _report(target, 'step 1', sum(len(c['names']) for c in chunks), errors)


def _denoise_chunk(task):
    """Worker of step 2: denoise and translate every sequence of a raw chunk."""
    source, target, strict = task
    names, sequences, errors = [], [], []
    for raw in _load_pickle(source):
        try:
            sequences.append(translate(denoise(raw)))
            names.append(raw.name)
        except SkeletonFileError as exc:
            if strict:
                raise
            errors.append(str(exc))
    _save_pickle(target, sequences)
    return os.path.basename(target), names, [len(s) for s in sequences], errors


def denoise_all(out_dir, workers=None, strict=False):
    """Step 2: raw chunks -> <out_dir>/denoised_data/denoised_XXXXX.pkl (actors picked, origin moved)."""
    source = os.path.join(out_dir, 'raw_data')
    index_path = os.path.join(source, 'index.pkl')
    if not os.path.exists(index_path):
        raise FileNotFoundError(f'{index_path} not found: run step 1 (get_raw_skes_data.py) first')
    index = _load_pickle(index_path)
    target = os.path.join(out_dir, 'denoised_data')
    os.makedirs(target, exist_ok=True)
    tasks = [(os.path.join(source, c['file']), os.path.join(target, c['file'].replace('raw_', 'denoised_')), strict)
             for c in index['chunks']]
    chunks, errors = [], list(index['errors'])
    for chunk, names, frames, chunk_errors in _pool_map(_denoise_chunk, tasks, workers, 'denoise'):
        chunks.append(dict(file=chunk, names=names, frames=frames))
        errors += chunk_errors
    _save_pickle(os.path.join(target, 'index.pkl'), dict(dataset=index['dataset'], chunks=chunks, errors=errors))
    return _report(target, 'step 2', sum(len(c['names']) for c in chunks), errors)


def write_splits(out_dir, formats=('npz',)):
    """Step 3: pad every sequence to the longest one and write each benchmark split, one split in memory at a time."""
    source = os.path.join(out_dir, 'denoised_data')
    index_path = os.path.join(source, 'index.pkl')
    if not os.path.exists(index_path):
        raise FileNotFoundError(f'{index_path} not found: run step 2 (get_raw_denoised_data.py) first')
    index = _load_pickle(index_path)
    dataset = index['dataset']
    spec = DATASETS[dataset]
    names = [n for c in index['chunks'] for n in c['names']]
    if not names:
        raise ValueError(f'{index_path}: no usable sample')
    max_frames = max(f for c in index['chunks'] for f in c['frames'])
    labels = np.array([parse_name(n)['action'] - 1 for n in names])
    written = []
    for benchmark in BENCHMARKS[dataset]:
        stem, train, test = split_order(names, benchmark, dataset)
        arrays = {}
        for split, order in (('train', train), ('test', test)):
            arrays[f'x_{split}'] = _gather(source, index['chunks'], order, max_frames, spec['pad_with_copy'])
            arrays[f'y_{split}'] = np.eye(spec['num_class'])[labels[order]]
            arrays[f'sample_name_{split}'] = np.array([names[i] for i in order])
        written += _write_benchmark(out_dir, stem, arrays, formats)
    log.info('wrote %s', ', '.join(written))
    return written


def _gather(source, chunks, order, max_frames, copy_lone_actor):
    """N x max_frames x 150 float32 of the samples in `order`, read chunk by chunk."""
    x = np.zeros((len(order), max_frames, 150), dtype=np.float32)
    position = {sample: row for row, sample in enumerate(order)}
    offset = 0
    for chunk in chunks:
        wanted = [i for i in range(len(chunk['names'])) if offset + i in position]
        if wanted:
            sequences = _load_pickle(os.path.join(source, chunk['file']))
            for i in wanted:
                joints = pad_actors(sequences[i], copy_lone_actor)
                x[position[offset + i], :len(joints)] = joints
        offset += len(chunk['names'])
    return x


def _write_benchmark(out_dir, stem, arrays, formats):
    # the format not written now would be left from an earlier run, disagreeing with this one: it goes
    others = ([] if 'npz' in formats else [f'{stem}.npz']) + \
        ([] if 'npy' in formats else [f'{stem}_{key.rsplit("_", 1)[0]}_{key.rsplit("_", 1)[1]}.npy' for key in arrays])
    for name in others:
        if os.path.exists(os.path.join(out_dir, name)):
            os.remove(os.path.join(out_dir, name))
            log.info('removed %s (an earlier run\'s; this one writes %s)', name, ' and '.join(formats))
    written = []
    if 'npz' in formats:
        path = os.path.join(out_dir, f'{stem}.npz')
        atomic_write(path, lambda f: np.savez(f, **arrays))
        written.append(path)
    if 'npy' in formats:                       # memory-mappable copies for `use_mmap: True`
        for key, value in arrays.items():
            kind, split = key.rsplit('_', 1)
            path = os.path.join(out_dir, f'{stem}_{kind}_{split}.npy')
            atomic_write(path, lambda f, value=value: np.save(f, value))
            written.append(path)
    return written


def _report(target, step, count, errors):
    path = os.path.join(target, 'skipped_files.log')
    if os.path.exists(path):
        os.remove(path)                                # an earlier run's list would mislead
    if errors:
        atomic_write(path, lambda f: f.write(('\n'.join(errors) + '\n').encode()))
        log.warning('%s: %d files skipped (listed in %s), e.g. %s', step, len(errors), path, errors[0])
    log.info('%s: %d samples', step, count)
    return count, errors


if __name__ == '__main__':
    from preprocess.cli import main
    main()
