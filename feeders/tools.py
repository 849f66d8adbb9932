"""Vectorised skeleton transforms, shared by the per-sample feeders and the whole-batch (GPU) augmentation.

Every function takes a batch laid out N, C, T, V, M (a torch tensor on any device); a single sample is a batch of one.
"""
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from lstbase.scores import top_k


SELECTION_KEYS = ('classes', 'hold_out', 'held_out_only', 'shots', 'shots_seed')


@dataclass(frozen=True)
class Selection:
    """Which samples of a split a feeder reads, decided from their names and labels alone (before any skeleton is
    read), and the labels it gives them:
      classes        the dataset's labels kept, in the order of the new labels (class classes[k] becomes label k);
                     None: every class, labels as they are
      hold_out       the share of each class's samples set aside (the first by the SHA-1 of their names: the same
                     samples whatever the seed or the other classes)
      held_out_only  read the samples set aside instead of the others
      shots          K samples of each class, drawn with `shots_seed` (few-shot training)"""
    classes: tuple = None
    hold_out: float = 0
    held_out_only: bool = False
    shots: int = None
    shots_seed: int = 0

    @classmethod
    def of(cls, feeder_args, only=False):
        """The selection that feeder arguments give, checked; their other keys are left out, or with `only` (a
        feeder's own arguments left over) refused."""
        unknown = sorted(set(feeder_args) - set(SELECTION_KEYS)) if only else []
        if unknown:     # a TypeError, as Python gives for a wrong keyword: the trainer names the feeder class
            raise TypeError(f'unknown feeder argument(s) {", ".join(map(repr, unknown))}')
        chosen = {key: feeder_args[key] for key in SELECTION_KEYS if feeder_args.get(key) is not None}
        if 'classes' in chosen:
            chosen['classes'] = tuple(chosen['classes'])
        selection = cls(**chosen)
        selection.check()
        return selection

    def check(self):
        classes = self.classes
        if classes is not None and (not classes or not all(type(c) is int and c >= 0 for c in classes)
                                    or len(set(classes)) != len(classes)):
            raise ValueError(f'feeder argument classes={list(classes)}: expected distinct class indexes >= 0')
        if not 0 <= self.hold_out < 1:
            raise ValueError(f'feeder argument hold_out={self.hold_out}: expected a share of the samples, 0 to 1 '
                             f'(1 excluded)')
        if self.held_out_only and not self.hold_out:
            raise ValueError('feeder argument held_out_only: no samples are held out (hold_out is 0)')
        if self.shots is not None and (type(self.shots) is not int or self.shots < 1):
            raise ValueError(f'feeder argument shots={self.shots}: expected a number of samples per class, at least 1')

    def apply(self, names, labels):
        """(indexes of the samples kept, in their order, and their labels)."""
        labels = [int(label) for label in labels]
        keep = range(len(labels)) if self.classes is None else [i for i, label in enumerate(labels)
                                                                 if label in self.classes]
        by_class = {}
        for i in keep:
            by_class.setdefault(labels[i], []).append(i)
        kept = sorted(i for label, members in by_class.items() for i in self.per_class(label, members, names))
        new = {c: k for k, c in enumerate(self.classes)} if self.classes is not None else None
        return kept, [labels[i] if new is None else new[labels[i]] for i in kept]

    def per_class(self, label, members, names):
        """The samples of class `label` (indexes `members`) that the selection keeps."""
        if self.hold_out:
            by_hash = sorted(members, key=lambda i: hashlib.sha1(str(names[i]).encode()).hexdigest())
            count = round(self.hold_out * len(members))
            if count == len(members) and not self.held_out_only:
                raise ValueError(f'hold_out {self.hold_out}: class {label} has {len(members)} sample(s), all of them '
                                 f'held out; nothing of it would be trained on')
            members = by_hash[:count] if self.held_out_only else by_hash[count:]
        if self.shots is None:
            return members
        if len(members) < self.shots:
            raise ValueError(f'shots {self.shots}: class {label} has {len(members)} sample(s) in this split')
        order = np.random.default_rng([self.shots_seed, label]).permutation(len(members))
        return [members[i] for i in order[:self.shots]]


def selected(selection, names, labels):
    """(names, labels) of the samples that `selection` keeps."""
    keep, labels = selection.apply(names, labels)
    return [names[i] for i in keep], labels


class LabelledDataset(Dataset):
    """What every feeder shares: `label`, one class index per sample, and the top-k accuracy of scores on them;
    `notes`, warnings about legal but surprising data that the run prints."""

    notes = ()

    def top_k(self, score, k):
        return top_k(score, self.label, k)


def valid_frames(data):
    """Number of frames that are not all zero, per sample (the release's `valid_frame_num`)."""
    return (data != 0).flatten(start_dim=3).any(-1).any(1).sum(-1)          # N, C, T, V*M -> N


def crop_windows(valid, p_interval, generator=None):
    """Begin and length of the crop of each sample's first `valid` frames.

    One ratio p: a centred crop keeping a fraction p. Two values [lo, hi]: a random ratio in [lo, hi), at least 64
    frames (or all of them when fewer), at a random offset. Same rules as the release's `valid_crop_resize`.
    """
    valid = valid.to(torch.long)
    if len(p_interval) == 1:
        bias = ((1 - p_interval[0]) * valid.double() / 2).floor().long()       # int() truncation, valid >= 0
        return bias, valid - 2 * bias
    low, high = p_interval
    p = torch.rand(valid.shape, generator=generator, dtype=torch.float64) * (high - low) + low
    length = torch.minimum((valid.double() * p).floor().long().clamp(min=64), valid)
    begin = (torch.rand(valid.shape, generator=generator, dtype=torch.float64) * (valid - length + 1)).floor().long()
    return begin, length


def crop_resize(data, begin, length, window):
    """Crop frames [begin, begin + length) of each sample and resample them linearly to `window` frames.

    Equals torch's bilinear interpolation with align_corners=False along time (what the release calls per sample).
    """
    N, C, T, V, M = data.shape
    device = data.device
    length = length.to(device)
    scale = length.float() / window                                                   # N
    src = ((torch.arange(window, device=device).float() + 0.5) * scale[:, None] - 0.5).clamp(min=0)   # N, W
    low = src.floor().long()
    lam = (src - low).to(data.dtype)
    high = torch.minimum(low + 1, (length - 1)[:, None])
    begin = begin.to(device)[:, None]
    low, high = (low + begin).clamp(max=T - 1), (high + begin).clamp(max=T - 1)

    def frames(index):
        return torch.gather(data, 2, index.view(N, 1, window, 1, 1).expand(N, C, window, V, M))

    lam = lam.view(N, 1, window, 1, 1)
    return frames(low) * (1 - lam) + frames(high) * lam


def rotation_matrices(angles):
    """Rz @ Ry @ Rx for angles N x 3 (about x, y, z), with the release's sign conventions."""
    cos, sin = angles.cos(), angles.sin()
    zero, one = torch.zeros_like(cos[:, 0]), torch.ones_like(cos[:, 0])

    def matrix(*rows):
        return torch.stack([torch.stack(row, -1) for row in rows], -2)

    rx = matrix((one, zero, zero), (zero, cos[:, 0], sin[:, 0]), (zero, -sin[:, 0], cos[:, 0]))
    ry = matrix((cos[:, 1], zero, -sin[:, 1]), (zero, one, zero), (sin[:, 1], zero, cos[:, 1]))
    rz = matrix((cos[:, 2], sin[:, 2], zero), (-sin[:, 2], cos[:, 2], zero), (zero, zero, one))
    return rz @ ry @ rx


def random_rotate(data, theta=0.3, generator=None):
    """Rotate each sample by uniform random angles in [-theta, theta] about the three axes."""
    angles = (torch.rand(data.shape[0], 3, generator=generator) * 2 - 1) * theta
    rot = rotation_matrices(angles).to(data.device, data.dtype)                          # N, 3, 3
    return torch.einsum('nij,njtvm->nitvm', rot, data)


def channel(index):
    """The index of channel `index` of data laid out (N,) C, T, V, M."""
    return (Ellipsis, index, slice(None), slice(None), slice(None))


def to_bone(data, pairs, score=None):
    """Bone vectors: joint minus its partner, for the 0-based (joint, partner) pairs of a layout; V is axis -2.
    With `score` (the channel of 2-D keypoints' confidence), that channel is the mean of the two joints' scores, as
    pyskl does."""
    joints = [v for v, _ in pairs]
    partners = [u for _, u in pairs]
    bone = torch.zeros_like(data) if torch.is_tensor(data) else np.zeros_like(data)
    bone[..., joints, :] = data[..., joints, :] - data[..., partners, :]
    if score is not None:
        scores = data[channel(score)]
        bone[channel(score)][..., joints, :] = (scores[..., joints, :] + scores[..., partners, :]) / 2
    return bone


def to_motion(data, score=None):
    """Frame differences along time (axis -3), with a zero last frame. With `score`, that channel is the mean of the
    two frames' scores, as pyskl does."""
    motion = torch.zeros_like(data) if torch.is_tensor(data) else np.zeros_like(data)
    motion[..., :-1, :, :] = data[..., 1:, :, :] - data[..., :-1, :, :]
    if score is not None:
        scores = data[channel(score)]
        motion[channel(score)][..., :-1, :, :] = (scores[..., 1:, :, :] + scores[..., :-1, :, :]) / 2
    return motion


def ucla_normalise(points, train, window=52):
    """NW-UCLA's recipe for one person's T x V x 3 sequence, as released: centred on joint 1 of the first frame; when
    training, a random view (integer angles in [-60, 60] degrees about x and y, scale in [0.5, 1.5]) and `window`
    frame indices drawn with replacement and sorted, else evenly spaced ones; each axis min-max scaled to [-1, 1].
    Returns C, T, V, 1. Draws from torch's RNG, which the DataLoader seeds per worker and epoch."""
    points = points - points[0, 1]
    if train:
        angle_x, angle_y = torch.randint(-60, 61, (2,)).tolist()
        points = view_transform(points, angle_x, angle_y, torch.empty(()).uniform_(0.5, 1.5).item())
        frames = torch.randint(len(points), (window,)).sort().values.numpy()
    else:
        frames = np.linspace(0, len(points) - 1, window).astype(np.int64)
    low, high = points.min(axis=(0, 1)), points.max(axis=(0, 1))
    points = (points - low) / (high - low) * 2 - 1
    return points[frames].transpose(2, 0, 1)[..., None]


def view_transform(points, angle_x, angle_y, scale):
    """NW-UCLA's view augmentation: rows of `points` (..., 3) times Ry @ Rx @ S (angles in degrees)."""
    ax, ay = math.radians(angle_x), math.radians(angle_y)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), math.sin(ax)], [0, -math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, -math.sin(ay)], [0, 1, 0], [math.sin(ay), 0, math.cos(ay)]])
    return points @ (ry @ rx @ (np.eye(3) * scale))
