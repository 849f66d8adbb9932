"""NTU RGB+D 60/120 feeder over the preprocessed `.npz` files (or their memory-mappable `.npy` copies)."""
import os
import zipfile

import numpy as np
import torch

from feeders import tools
from specs import layouts

NUM_JOINTS, NUM_PERSONS = 25, 2
# the feeder arguments of each stream for a model that takes them from the feeder (CTR-GCN)
STREAM_ARGS = {'joint': {}, 'bone': {'bone': True}, 'joint_vel': {'vel': True}, 'bone_vel': {'bone': True, 'vel': True}}


def relocate(feeder_args, folder):
    """The feeder arguments that read the same file from another folder."""
    return dict(data_path=os.path.join(folder, os.path.basename(feeder_args['data_path'])))


def label_from_name(stem):
    """The label an NTU file name (`S001C001P001R001A013`) encodes, or None for another name."""
    from preprocess import ntu
    try:
        return ntu.parse_name(stem)['action'] - 1
    except ValueError:
        return None


def from_annotation(annotation):
    """C, T, V, M (2 persons, zeros for a missing one) of an annotation of 3-D NTU RGB+D joints."""
    keypoint = np.asarray(annotation['keypoint'], dtype=np.float32)
    if keypoint.ndim != 4 or keypoint.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f'keypoints of shape {keypoint.shape}, expected M x T x {NUM_JOINTS} x 3 (NTU RGB+D\'s joints)')
    data = np.zeros((3, keypoint.shape[1], NUM_JOINTS, NUM_PERSONS), np.float32)
    persons = keypoint[:NUM_PERSONS]
    data[..., :len(persons)] = persons.transpose(3, 1, 2, 0)
    return data


def input_frames(feeder_args):
    """The number of frames the feeder gives the model."""
    return feeder_args['window_size']


def load_split(data_path, split, use_mmap=False, selection=tools.Selection()):
    """(x N x T x 150, labels, sample names) of one split, of the samples `selection` keeps (before their values are
    checked; memory-mapped, the others are never read), from the .npz file or its .npy copies (memory-mapped with
    use_mmap, used alone when step 3 wrote only npy). Copies that disagree with the npz are refused."""
    if split not in ('train', 'test'):
        raise ValueError(f"feeder argument split={split!r}: expected 'train' or 'test'")
    stem = os.path.splitext(data_path)[0]
    npy = {key: f'{stem}_{key}_{split}.npy' for key in ('x', 'y', 'sample_name')}
    has_npz, has_npy = os.path.exists(data_path), os.path.exists(npy['x']) and os.path.exists(npy['y'])
    if not has_npz and not has_npy:
        raise FileNotFoundError(f'NTU data file {data_path} not found (nor its .npy copies): run the preprocessing '
                                f'in data/ntu or data/ntu120 (see README), or fix `data_path` in the config')
    try:
        if has_npy and (use_mmap or not has_npz):
            x = np.load(npy['x'], mmap_mode='r' if use_mmap else None)
            y = np.load(npy['y'])
            names = np.load(npy['sample_name']) if os.path.exists(npy['sample_name']) else None
            if has_npz:
                _check_copies_match(data_path, npy['x'], split, x.shape, names)
        else:
            x, y, names = _read_npz(data_path, split)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f'{data_path} ({split}): not a readable preprocessed file ({exc})') from None
    if x.ndim != 3 or x.shape[2] != NUM_PERSONS * NUM_JOINTS * 3:
        raise ValueError(f'{data_path}: x_{split} has shape {x.shape}, expected N x T x 150 (2 persons x 25 joints x 3)')
    labels = np.argmax(y, axis=1) if y.ndim == 2 else np.asarray(y, dtype=np.int64)
    names = [str(n) for n in names] if names is not None else [f'{split}_{i}' for i in range(len(x))]
    if not len(x) == len(labels) == len(names):       # zip() downstream would drop samples silently
        raise ValueError(f'{data_path}: {split} split has {len(x)} samples, {len(labels)} labels and {len(names)} '
                         f'names; preprocess again')
    if selection != tools.Selection():
        keep, labels = selection.apply(names, labels)
        x, names = x[keep], [names[i] for i in keep]
    if not isinstance(x, np.memmap):                 # a memory-mapped split is checked sample by sample instead
        bad = sum(int((~np.isfinite(x[i:i + 1000])).any(axis=(1, 2)).sum()) for i in range(0, len(x), 1000))
        if bad:
            raise ValueError(f'{data_path}: {bad} {split} samples hold NaN or Inf values; preprocess again')
    return x, labels, names


def split_labels(data_path, split='train', **feeder_args):
    """(sample names, labels) of a split, of the samples the feeder arguments select (tools.Selection), without
    reading the skeletons (ensemble.py, tools/reproduce.py)."""
    if split not in ('train', 'test'):
        raise ValueError(f"feeder argument split={split!r}: expected 'train' or 'test'")
    stem = os.path.splitext(data_path)[0]
    try:
        if os.path.exists(data_path):
            with np.load(data_path) as npz:                      # reads only the members asked for
                y = npz[f'y_{split}']
                names = npz[f'sample_name_{split}'] if f'sample_name_{split}' in npz.files else None
        elif os.path.exists(f'{stem}_y_{split}.npy'):
            y = np.load(f'{stem}_y_{split}.npy')
            names_path = f'{stem}_sample_name_{split}.npy'
            names = np.load(names_path) if os.path.exists(names_path) else None
        else:
            raise FileNotFoundError(f'{data_path} not found: run the preprocessing first (see README), or point '
                                    f'--data-dir / data_path to the folder that holds it')
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise ValueError(f'{data_path}: not a readable preprocessed NTU file ({exc})') from None
    labels = (np.argmax(y, axis=1) if y.ndim == 2 else np.asarray(y, dtype=np.int64)).tolist()
    names = [str(n) for n in names] if names is not None else [f'{split}_{i}' for i in range(len(labels))]
    return tools.selected(tools.Selection.of(feeder_args), names, labels)


def train_split_for_test(train_args, test_args):
    """Feeder arguments that read the training split's samples as the test split's are read (its crop, no
    rotation)."""
    return dict(test_args, data_path=train_args['data_path'], split=train_args.get('split', 'train'))


def _read_npz(data_path, split):
    with np.load(data_path) as npz:
        missing = [k for k in (f'x_{split}', f'y_{split}') if k not in npz.files]
        if missing:
            raise ValueError(f'missing arrays {missing}; it has {npz.files}')
        names = npz[f'sample_name_{split}'] if f'sample_name_{split}' in npz.files else None
        return npz[f'x_{split}'], npz[f'y_{split}'], names


def _check_copies_match(data_path, x_path, split, shape, names):
    """The .npy copies must hold the npz's samples (a re-run of step 3 with --format npz leaves stale copies)."""
    with np.load(data_path) as npz:
        with npz.zip.open(f'x_{split}.npy') as member:
            version = np.lib.format.read_magic(member)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            npz_shape = read_header(member)[0]
        npz_names = npz[f'sample_name_{split}'] if f'sample_name_{split}' in npz.files else None
    same_names = npz_names is None or names is None or np.array_equal(npz_names, names)
    if tuple(npz_shape) != tuple(shape) or not same_names:
        what = f'shape {tuple(shape)} vs {tuple(npz_shape)}' if tuple(npz_shape) != tuple(shape) else \
            'other sample names'
        older = x_path if os.path.getmtime(x_path) < os.path.getmtime(data_path) else data_path
        raise ValueError(f'{x_path} does not hold the samples of {data_path} ({what}): they come from different '
                         f'preprocessing runs ({older} is the older); run step 3 again with --format both, or delete '
                         f'the stale one')


def model_layout(x):
    """N x T x 150 (the preprocessed files' layout) -> N, C, T, V, M (a view: memory-mapped data stays on disk)."""
    N, T, _ = x.shape
    return x.reshape(N, T, NUM_PERSONS, NUM_JOINTS, 3).transpose(0, 4, 1, 3, 2)


class Feeder(tools.LabelledDataset):
    """Samples as C, T, V, M float32 with their label and index.

    Train: random crop of the valid frames (ratio in p_interval, at least 64 frames), linear resize to
    window_size, random rotation; test: centre crop (p_interval [0.95]). `bone` and `vel` derive the other
    modalities after that. With `batch_augment`, samples come out uncropped and `batch_transform` does the same
    work on a whole batch on the training device (e.g. the GPU). `classes`, `hold_out`, `held_out_only`, `shots`
    and `shots_seed` pick the samples by their names and labels (tools.Selection); `repeat` repeats them per epoch.

    random_choose, random_shift, random_move and normalization are accepted for the released configs; the
    release does not use them in this feeder either. `samples` = (data: N samples C, T, V, M, labels, names) feeds
    samples held in memory instead of `data_path`'s (tools/predict.py: a trained model on single files).
    """

    layout = layouts.NAMED['ntu']

    def __init__(self, data_path, label_path=None, p_interval=1, split='train', random_choose=False,
                 random_shift=False, random_move=False, random_rot=False, window_size=-1, normalization=False,
                 debug=False, use_mmap=False, bone=False, vel=False, batch_augment=False, samples=None, repeat=1,
                 **selection):
        self.data_path = data_path
        self.split = split
        self.p_interval = list(p_interval) if isinstance(p_interval, (list, tuple)) else [p_interval]
        if len(self.p_interval) not in (1, 2):
            raise ValueError(f'feeder argument p_interval={p_interval!r}: expected [p] or [low, high]')
        if window_size is None or window_size <= 0:
            raise ValueError(f'feeder argument window_size={window_size!r}: expected a positive number of frames')
        self.window_size = window_size
        self.random_rot = random_rot
        self.bone = bone
        self.vel = vel
        self.debug = debug
        self.repeat = repeat
        selection = tools.Selection.of(selection, only=True)
        if samples is not None:
            self.data, self.label, self.sample_name = samples
        else:
            x, self.label, self.sample_name = load_split(data_path, split, use_mmap, selection)
            if debug:
                x, self.label, self.sample_name = x[:100], self.label[:100], self.sample_name[:100]
            self.data = model_layout(x)
        self.batch_transform = self.transform if batch_augment else None

    def __len__(self):
        return len(self.label) * self.repeat

    def __getitem__(self, index):
        index %= len(self.label)
        data = torch.from_numpy(np.array(self.data[index], dtype=np.float32))[None]
        if not torch.isfinite(data).all():
            raise ValueError(f'{self.data_path}: {self.split} sample {self.sample_name[index]} holds NaN or Inf values')
        if self.batch_transform is None:
            data = self.transform(data)
        return data[0].numpy(), int(self.label[index]), index

    def transform(self, batch):
        """Crop, resize, rotate, then bone/motion, for a batch N, C, T, V, M on any device."""
        valid = tools.valid_frames(batch)
        if (valid == 0).any():
            raise ValueError(f'{self.data_path}: a {self.split} sample has no non-zero frame')
        begin, length = tools.crop_windows(valid.cpu(), self.p_interval)
        batch = tools.crop_resize(batch, begin, length, self.window_size)
        if self.random_rot:
            batch = tools.random_rotate(batch)
        if self.bone:
            batch = tools.to_bone(batch, self.layout.bone_pairs)
        if self.vel:
            batch = tools.to_motion(batch)
        return batch
