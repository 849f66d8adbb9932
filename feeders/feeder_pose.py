"""Feeder for pyskl's annotation format: any dataset, 2-D or 3-D keypoints of any layout (`preprocess.annotations`).

    train_feeder_args: {ann_file: my.pkl, split: train, layout: coco, window_size: 64, p_interval: [0.5, 1]}
    test_feeder_args:  {ann_file: my.pkl, split: val, layout: coco, window_size: 64, p_interval: [0.95]}

Coordinates are first normalised (`normalise`):
  image   (2-D default) by the image size, as pyskl does: x -> (x - w/2) / (w/2), y likewise with h. A model learns
          where in the picture and how large people are: one trained on close-ups fails on people far away.
  person  by the people themselves: minus the centre of all their keypoints in the sample, divided by their body
          scale (the median over persons and frames of the root-mean-square distance of a person's keypoints from
          their mean). Any framing of the same motion gives the same numbers: the choice of the configs that videos
          feed (config/custom/*_2d.yaml), and usable on 3-D keypoints too.
  none    (3-D default) as they are.
Keypoints at (0, 0[, 0]) are missing (a person out of view) and stay zero. With 2-D keypoints the score becomes the
third channel. Persons are padded with zeros or cut to `num_person`. Then the transforms of a pipeline:
  ntu   (default) the NTU feeder's: a crop of the frames (p_interval: one ratio = centred, [low, high] = random),
        resized linearly to window_size; random rotation (3-D only, `random_rot`); bone and motion after that.
  ucla  NW-UCLA's: centred on joint 1 of the first frame, with `random_view` (training) a random view and frames
        drawn at random, else evenly spaced; each axis scaled to [-1, 1]; window_size frames (3-D, one person).
Bones come from the layout's edges; with 2-D keypoints the score channel of a bone (or of a motion) is the mean of
the two joints' (frames') scores, as pyskl's JointToBone and ToMotion do.
"""
import os

import numpy as np
import torch

from feeders import tools
from preprocess import annotations
from specs import layouts

PIPELINES = ('ntu', 'ucla')
NORMALISATIONS = ('image', 'person', 'none')
SCORE = 2                          # the channel that holds 2-D keypoints' scores
# the feeder arguments of each stream for a model that takes them from the feeder (CTR-GCN)
STREAM_ARGS = {'joint': {}, 'bone': {'bone': True}, 'joint_vel': {'vel': True}, 'bone_vel': {'bone': True, 'vel': True}}


def relocate(feeder_args, folder):
    """The feeder arguments that read the same annotation file from another folder."""
    return dict(ann_file=os.path.join(folder, os.path.basename(feeder_args['ann_file'])))


def split_labels(ann_file, split=None, **feeder_args):
    """(frame_dir, labels) of a split of an annotation file, of the samples the feeder arguments select
    (tools.Selection) (ensemble.py, tools/reproduce.py)."""
    samples, splits = annotations.load(ann_file)
    chosen = annotations.select(samples, splits, split, ann_file)
    names, labels = [a['frame_dir'] for a in chosen], [annotations.label(a, ann_file) for a in chosen]
    return tools.selected(tools.Selection.of(feeder_args), names, labels)


def train_split_for_test(train_args, test_args):
    """Feeder arguments that read the training split's samples as the test split's are read."""
    return dict(test_args, ann_file=train_args['ann_file'], split=train_args.get('split'))


def from_annotation(annotation):
    """The feeder reads annotations as they are."""
    return annotation


def input_frames(feeder_args):
    """The number of frames the feeder gives the model."""
    return feeder_args.get('window_size', 64)


def person_normalise(keypoint):
    """M x T x V x C keypoints minus their centre, over their body scale (see the module's docstring); missing
    keypoints (all zero) stay zero. A sample where no person has two keypoints keeps its scale."""
    present = (keypoint != 0).any(axis=-1)                                  # M x T x V
    if not present.any():
        return keypoint
    centre = keypoint[present].mean(axis=0)
    counts = present.sum(axis=-1)                                           # M x T
    means = (keypoint * present[..., None]).sum(axis=2) / np.maximum(counts, 1)[..., None]
    spread = (((keypoint - means[:, :, None]) ** 2).sum(axis=-1) * present).sum(axis=-1) / np.maximum(counts, 1)
    scales = np.sqrt(spread[counts > 1])
    scale = float(np.median(scales)) if scales.size and np.median(scales) > 0 else 1.0
    return np.where(present[..., None], (keypoint - centre) / keypoint.dtype.type(scale), 0).astype(keypoint.dtype)


def model_input(keypoint, score, image_shape, num_person, normalise=None):
    """C, T, V, M from an annotation's keypoint (M x T x V x C) and score (M x T x V): coordinates normalised
    (`normalise`: image, person or none; None: image for 2-D, none for 3-D), 2-D scores as a third channel; persons
    padded with zeros or cut. float64 keypoints stay float64 until the end of the transforms (NW-UCLA's JSON
    coordinates then give the NW-UCLA feeder's values)."""
    dtype = np.float64 if np.asarray(keypoint).dtype == np.float64 else np.float32
    keypoint = np.asarray(keypoint, dtype=dtype)
    normalise = normalise or ('image' if keypoint.shape[-1] == 2 else 'none')
    if normalise == 'person':
        keypoint = person_normalise(keypoint)
    if keypoint.shape[-1] == 2:
        if normalise == 'image':
            height, width = image_shape
            half = np.array([width / 2, height / 2], dtype)
            keypoint = (keypoint - half) / half
        score = np.ones(keypoint.shape[:3], dtype) if score is None else np.asarray(score, dtype=dtype)
        keypoint = np.concatenate([keypoint, score[..., None]], axis=-1)
    persons = np.zeros((num_person,) + keypoint.shape[1:], dtype)
    persons[:min(num_person, len(keypoint))] = keypoint[:num_person]
    return persons.transpose(3, 1, 2, 0)


class Feeder(tools.LabelledDataset):
    """Samples as C, T, V, M float32 with their label and index; `sample_name` is each annotation's frame_dir.

    `samples` = (annotations, labels, names) feeds annotations held in memory instead of `ann_file`'s
    (tools/predict.py: a trained model on new files). `classes`, `hold_out`, `held_out_only`, `shots` and
    `shots_seed` pick the samples by their names and labels before they are read (tools.Selection).
    """

    def __init__(self, ann_file=None, split=None, layout='coco', num_person=2, dims=None, pipeline='ntu',
                 window_size=64, p_interval=1, random_rot=False, random_view=False, bone=False, vel=False, repeat=1,
                 debug=False, samples=None, normalise=None, **selection):
        if pipeline not in PIPELINES:
            raise ValueError(f'feeder argument pipeline={pipeline!r}: expected one of {", ".join(PIPELINES)}')
        if normalise not in (None,) + NORMALISATIONS:
            raise ValueError(f'feeder argument normalise={normalise!r}: expected one of {", ".join(NORMALISATIONS)}')
        self.normalise = normalise
        if dims not in (None, 2, 3):
            raise ValueError(f'feeder argument dims={dims!r}: expected 2 (x, y and a score) or 3 (x, y, z)')
        if window_size is None or window_size <= 0:
            raise ValueError(f'feeder argument window_size={window_size!r}: expected a positive number of frames')
        self.p_interval = list(p_interval) if isinstance(p_interval, (list, tuple)) else [p_interval]
        if len(self.p_interval) not in (1, 2):
            raise ValueError(f'feeder argument p_interval={p_interval!r}: expected [p] or [low, high]')
        self.layout = layouts.get(layout, 'feeder argument layout')
        self.split, self.pipeline, self.window_size, self.num_person = split, pipeline, window_size, num_person
        self.random_rot, self.random_view, self.bone, self.vel = random_rot, random_view, bone, vel
        self.repeat = repeat
        self.ann_file = ann_file if samples is None else '<inputs>'
        selection = tools.Selection.of(selection, only=True)
        if samples is not None:
            chosen, self.label, self.sample_name = samples
        elif ann_file is None:
            raise ValueError('feeder argument ann_file: the annotation file (pyskl\'s format) is needed')
        else:
            data, splits = annotations.load(ann_file)
            chosen = annotations.select(data, splits, split, ann_file)
            keep, self.label = selection.apply([a['frame_dir'] for a in chosen],
                                               [annotations.label(a, ann_file) for a in chosen])
            chosen = [chosen[i] for i in keep]
            if debug:
                chosen, self.label = chosen[:100], self.label[:100]
            self.sample_name = [a['frame_dir'] for a in chosen]
        self.samples = [self.read(a, dims) for a in chosen]
        self.notes = annotations.notes(data, ann_file) if samples is None else []
        self.dims = self.samples[0][0].shape[-1] if self.samples else dims
        self.check_settings()

    def read(self, annotation, dims):
        """(keypoint, score, image shape) of an annotation, checked; the arrays stay as stored (float16 stays)."""
        keypoint, score = annotations.keypoints(annotation, self.ann_file, self.layout.num_node, dims)
        by_image = keypoint.shape[-1] == 2 and self.normalise in (None, 'image')
        shape = annotations.image_shape(annotation, self.ann_file) if by_image else None
        return keypoint, score, shape

    def check_settings(self):
        dims = {s[0].shape[-1] for s in self.samples}
        if len(dims) > 1:
            raise ValueError(f'{self.ann_file}: 2-D and 3-D keypoints mixed; one dataset holds one kind')
        if self.dims == 3 and self.normalise == 'image':
            raise ValueError(f'{self.ann_file}: 3-D keypoints have no image to be normalised by: set normalise to '
                             f'person or none')
        if self.dims == 2 and (self.random_rot or self.pipeline == 'ucla'):
            raise ValueError(f'{self.ann_file}: 2-D keypoints, but random_rot and the ucla pipeline rotate in 3-D')
        if self.random_view and self.pipeline != 'ucla':
            raise ValueError('feeder argument random_view belongs to the ucla pipeline (the ntu one has random_rot)')
        if self.pipeline == 'ucla' and self.num_person != 1:
            raise ValueError(f'feeder argument pipeline=ucla is NW-UCLA\'s single-person recipe: set num_person 1')

    def __len__(self):
        return len(self.samples) * self.repeat

    def __getitem__(self, index):
        keypoint, score, shape = self.samples[index % len(self.samples)]
        data = model_input(keypoint, score, shape, self.num_person, self.normalise)
        data = self.transform(data)
        return data.astype(np.float32), int(self.label[index % len(self.samples)]), index

    def transform(self, data):
        """The pipeline's transforms, then bone and motion, for one sample C, T, V, M."""
        if self.pipeline == 'ucla':
            data = tools.ucla_normalise(data[..., 0].transpose(1, 2, 0), self.random_view, self.window_size)
        else:
            batch = torch.from_numpy(data)[None]
            length = torch.tensor([batch.shape[2]])
            begin, length = tools.crop_windows(length, self.p_interval)
            batch = tools.crop_resize(batch, begin, length, self.window_size)
            if self.random_rot:
                batch = tools.random_rotate(batch)
            data = batch[0].numpy()
        score = SCORE if self.dims == 2 else None
        if self.bone:
            data = tools.to_bone(data, self.layout.bone_pairs, score)
        if self.vel:
            data = tools.to_motion(data, score)
        return data
