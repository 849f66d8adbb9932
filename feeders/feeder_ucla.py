"""NW-UCLA feeder: reads the `all_sqe/*.json` sequences; the split and labels come from the file names."""
import json
import os
import re

import numpy as np

from feeders import tools
from specs import layouts

DEFAULT_ROOT = 'data/NW-UCLA/all_sqe'
ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)          # file-name action ids of labels 0..9
SPLIT_VIEWS = {'train': (1, 2), 'val': (3,)}
FILE_NAME = re.compile(r'^a(\d{2})_s(\d{2})_e(\d{2})_v(\d{2})$')
NUM_JOINTS, WINDOW = 20, 52
# the feeder arguments of each stream for a model that takes them from the feeder (CTR-GCN)
STREAM_ARGS = {'joint': {'data_path': 'joint'}, 'bone': {'data_path': 'bone'},
               'joint_vel': {'data_path': 'joint_motion'}, 'bone_vel': {'data_path': 'bone_motion'}}


def relocate(feeder_args, folder):
    """The feeder arguments that read the JSON files from `folder` (the all_sqe folder itself)."""
    return dict(root=folder)


def parse_name(stem):
    """(action, subject, episode, view) from a name like 'a05_s04_e02_v03'."""
    match = FILE_NAME.match(stem)
    if not match:
        raise ValueError(f'NW-UCLA file name {stem!r} is not of the form aXX_sYY_eZZ_vWW')
    return tuple(int(g) for g in match.groups())


def label_from_name(stem):
    """The label an NW-UCLA file name (`a05_s01_e00_v03`) encodes, or None for another name."""
    try:
        action = parse_name(stem)[0]
    except ValueError:
        return None
    return ACTIONS.index(action) if action in ACTIONS else None


def from_annotation(annotation):
    """The T x 20 x 3 sequence (as load_sequence reads it) of an annotation of one person's 3-D NW-UCLA joints."""
    keypoint = np.asarray(annotation['keypoint'])
    if keypoint.ndim != 4 or keypoint.shape[2:] != (NUM_JOINTS, 3):
        raise ValueError(f'keypoints of shape {keypoint.shape}, expected M x T x {NUM_JOINTS} x 3 (NW-UCLA\'s joints)')
    return keypoint[0].astype(np.float64)


def input_frames(feeder_args):
    """The number of frames the feeder gives the model."""
    return WINDOW


def split_files(root, split):
    """Sorted file stems of a split ('train': views 1 and 2, 'val': view 3) and their labels."""
    if split not in SPLIT_VIEWS:
        raise ValueError(f"NW-UCLA label_path {split!r}: expected 'train' or 'val'")
    if not os.path.isdir(root):
        raise FileNotFoundError(f'NW-UCLA folder {root!r} not found: put the `all_sqe` folder of JSON files there '
                                f'(see README) or set the feeder argument `root`')
    stems, labels = [], []
    for name in sorted(os.listdir(root)):
        if not name.endswith('.json'):
            continue
        stem = name[:-5]
        action, _, _, view = parse_name(stem)
        if view in SPLIT_VIEWS[split]:
            if action not in ACTIONS:
                raise ValueError(f'{os.path.join(root, name)}: action {action} is not an NW-UCLA action {ACTIONS}')
            stems.append(stem)
            labels.append(ACTIONS.index(action))
    if not stems:
        raise FileNotFoundError(f'no NW-UCLA {split} files (views {SPLIT_VIEWS[split]}) in {root!r}')
    return stems, labels


def split_labels(label_path='val', root=DEFAULT_ROOT, **feeder_args):
    """(file stems, labels) of a split, of the samples the feeder arguments select (tools.Selection), from the file
    names alone (ensemble.py, tools/reproduce.py)."""
    if label_path not in SPLIT_VIEWS:
        raise ValueError(f'NW-UCLA feeder label_path {label_path!r}: expected train or val (the split)')
    return tools.selected(tools.Selection.of(feeder_args), *split_files(root, label_path))


def train_split_for_test(train_args, test_args):
    """Feeder arguments that read the training split's files as the test split's are read (no random view)."""
    return dict(test_args, root=train_args.get('root', DEFAULT_ROOT), label_path='train', random_view=False)


def load_sequence(path):
    try:
        with open(path) as f:
            skeletons = np.asarray(json.load(f)['skeletons'], dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f'{path}: cannot read NW-UCLA skeletons ({exc}); expected JSON with "skeletons": T x 20 x 3')
    if skeletons.ndim != 3 or skeletons.shape[1:] != (NUM_JOINTS, 3) or len(skeletons) == 0:
        raise ValueError(f'{path}: "skeletons" has shape {skeletons.shape}, expected T x 20 x 3 with T > 0')
    if not np.isfinite(skeletons).all():
        frame = int(np.argmin(np.isfinite(skeletons).all(axis=(1, 2))))
        raise ValueError(f'{path}: frame {frame} holds NaN or Inf values')
    flat = np.ptp(skeletons, axis=(0, 1)) == 0
    if flat.any():                                         # each axis is scaled by its range: 0/0 otherwise
        raise ValueError(f'{path}: every joint has the same {"xyz"[int(np.argmax(flat))]} in every frame; expected '
                         f'3-D skeletons')
    return skeletons


MODALITIES = {'joint': (False, False), 'bone': (True, False), 'motion': (False, True),      # name: (bone, motion)
              'joint_motion': (False, True), 'bone_motion': (True, True)}


class Feeder(tools.LabelledDataset):
    """Samples as C, T, V, M = 3, 52, 20, 1.

    `data_path` names the modality ('joint', 'bone', 'joint_motion'/'motion', 'bone_motion'), `label_path` the split
    ('train' or 'val', as in the release). Train: centre on joint 1 of the first frame, random view transform
    (integer angles in [-60, 60] degrees about x and y, scale in [0.5, 1.5]), per-axis min-max to [-1, 1], 52 frame
    indices drawn with replacement and sorted. Val: the same without the random view, evenly spaced indices.
    `random_view` (default: for the training split) chooses between the two; `classes`, `hold_out`, `held_out_only`,
    `shots` and `shots_seed` pick the files to read by their names (tools.Selection). Other released arguments
    (random_choose, window_size, normalization, use_mmap...) are accepted; the release ignores them too. `samples` = (sequences T x 20 x 3, labels, names) feeds sequences held in memory instead of
    `root`'s files (tools/predict.py: a trained model on single files).
    """

    layout = layouts.NAMED['ucla']

    def __init__(self, data_path, label_path, repeat=1, random_choose=False, random_shift=False, random_move=False,
                 window_size=-1, normalization=False, debug=False, use_mmap=True, root=DEFAULT_ROOT, samples=None,
                 random_view=None, **selection):
        # the release matched substrings ('val' in label_path): a typo then trained or tested on the wrong thing
        if data_path not in MODALITIES:
            raise ValueError(f'NW-UCLA feeder data_path {data_path!r}: expected one of {", ".join(MODALITIES)}')
        if label_path not in ('train', 'val'):
            raise ValueError(f'NW-UCLA feeder label_path {label_path!r}: expected train or val (the split)')
        self.data_path = data_path
        self.split = label_path
        self.repeat = repeat
        self.random_view = self.split == 'train' if random_view is None else random_view
        self.bone, self.motion = MODALITIES[data_path]
        selection = tools.Selection.of(selection, only=True)
        if samples is not None:
            self.data, self.label, self.sample_name = samples
            return
        self.sample_name, self.label = tools.selected(selection, *split_files(root, self.split))
        if debug:
            self.sample_name, self.label = self.sample_name[:100], self.label[:100]
        self.data = [load_sequence(os.path.join(root, stem + '.json')) for stem in self.sample_name]

    def __len__(self):
        return len(self.data) * self.repeat

    def __getitem__(self, index):
        sequence = self.data[index % len(self.data)]
        label = self.label[index % len(self.data)]
        data = tools.ucla_normalise(sequence, self.random_view, WINDOW)             # C, T, V, M
        if self.bone:
            data = tools.to_bone(data, self.layout.bone_pairs)
        if self.motion:
            data = tools.to_motion(data)
        return data.astype(np.float32), label, index
