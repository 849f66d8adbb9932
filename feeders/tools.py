"""Vectorised skeleton transforms, shared by the per-sample feeders and the whole-batch (GPU) augmentation.

Every function takes a batch laid out N, C, T, V, M (a torch tensor on any device); a single sample is a batch of one.
"""
import math

import numpy as np
import torch
from torch.utils.data import Dataset

from lstbase.scores import top_k


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
