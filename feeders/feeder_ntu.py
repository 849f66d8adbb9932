"""NTU RGB+D 60/120 feeder over the preprocessed `.npz` files (or their memory-mappable `.npy` copies)."""
import os

import numpy as np
import torch
from torch.utils.data import Dataset

from feeders import tools
from feeders.bone_pairs import ntu_pairs

NUM_JOINTS, NUM_PERSONS = 25, 2


def load_split(data_path, split, use_mmap=False):
    """(x N x T x 150, labels, sample names) of one split; mmap'ed from `<stem>_x_<split>.npy` when asked and present."""
    if split not in ('train', 'test'):
        raise ValueError(f"feeder argument split={split!r}: expected 'train' or 'test'")
    if not os.path.exists(data_path):
        raise FileNotFoundError(f'NTU data file {data_path!r} not found: run the preprocessing in data/ntu or '
                                f'data/ntu120 (see README), or fix `data_path` in the config')
    stem = os.path.splitext(data_path)[0]
    npy = {key: f'{stem}_{key}_{split}.npy' for key in ('x', 'y', 'sample_name')}
    if use_mmap and os.path.exists(npy['x']):
        x = np.load(npy['x'], mmap_mode='r')
        y = np.load(npy['y'])
        names = np.load(npy['sample_name']) if os.path.exists(npy['sample_name']) else None
    else:
        with np.load(data_path) as npz:
            missing = [k for k in (f'x_{split}', f'y_{split}') if k not in npz.files]
            if missing:
                raise KeyError(f'{data_path}: missing arrays {missing}; it has {npz.files}')
            x, y = npz[f'x_{split}'], npz[f'y_{split}']
            names = npz[f'sample_name_{split}'] if f'sample_name_{split}' in npz.files else None
    if x.ndim != 3 or x.shape[2] != NUM_PERSONS * NUM_JOINTS * 3:
        raise ValueError(f'{data_path}: x_{split} has shape {x.shape}, expected N x T x 150 (2 persons x 25 joints x 3)')
    labels = np.argmax(y, axis=1) if y.ndim == 2 else np.asarray(y, dtype=np.int64)
    names = [str(n) for n in names] if names is not None else [f'{split}_{i}' for i in range(len(x))]
    return x, labels, names


class Feeder(Dataset):
    """Samples as C, T, V, M float32 with their label and index.

    Train: random crop of the valid frames (ratio in p_interval, at least 64 frames), linear resize to
    window_size, random rotation; test: centre crop (p_interval [0.95]). `bone` and `vel` derive the other
    modalities after that. With `batch_augment`, samples come out uncropped and `batch_transform` does the same
    work on a whole batch on the training device (e.g. the GPU).

    random_choose, random_shift, random_move and normalization are accepted for the released configs; the
    release does not use them in this feeder either.
    """

    def __init__(self, data_path, label_path=None, p_interval=1, split='train', random_choose=False,
                 random_shift=False, random_move=False, random_rot=False, window_size=-1, normalization=False,
                 debug=False, use_mmap=False, bone=False, vel=False, batch_augment=False):
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
        x, self.label, self.sample_name = load_split(data_path, split, use_mmap)
        if debug:
            x, self.label, self.sample_name = x[:100], self.label[:100], self.sample_name[:100]
        N, T, _ = x.shape
        # N, T, M, V, C -> N, C, T, V, M (a view: memory-mapped data stays on disk)
        self.data = x.reshape(N, T, NUM_PERSONS, NUM_JOINTS, 3).transpose(0, 4, 1, 3, 2)
        self.batch_transform = self.transform if batch_augment else None

    def __len__(self):
        return len(self.label)

    def __getitem__(self, index):
        data = torch.from_numpy(np.array(self.data[index], dtype=np.float32))[None]
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
            batch = tools.to_bone(batch, ntu_pairs)
        if self.vel:
            batch = tools.to_motion(batch)
        return batch

    def top_k(self, score, top_k):
        rank = np.argsort(score, axis=1)[:, -top_k:]
        return float(np.mean([label in row for label, row in zip(self.label, rank)]))
