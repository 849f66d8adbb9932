"""pyskl's skeleton annotation format: a whole dataset in one pickle, read without running code.

    {'split': {'xsub_train': [frame_dir, ...], 'xsub_val': [...]}, 'annotations': [annotation, ...]}

or the bare list of annotations that pyskl's `tools/data/custom_2d_skeleton.py` writes. An annotation is a dict:

    frame_dir       str, the sample's name (score files are keyed by it)
    label           int, 0-based class
    total_frames    int, T (optional; when given, keypoint's T)
    keypoint        float array M x T x V x C: C = 2 (pixels, 2-D) or 3 (3-D, any unit); M = 0 (nobody found, as
                    in pyskl's files) is read as one person of zeros
    keypoint_score  float array M x T x V, 2-D only (the pose estimator's confidence; without it, 1.0)
    img_shape       (height, width) of the frames the 2-D keypoints are in; original_shape likewise

Coordinates are bounded: 2-D ones within +-IMAGE_SIZES x the image's width (x) and height (y), since pose estimators
place a hidden joint outside the image but not that far; 3-D ones within +-LARGEST_3D, a bound no unit gives (100 km
in metres, 100 m in millimetres). Beyond that the numbers are no skeleton, and their squares overflow float32 in
BatchNorm's statistics: such a file is refused, naming the sample, the coordinate and the bound.

Files are read with the restricted unpickler (containers, numbers, strings, numpy arrays): a file that asks for
anything else is refused with the global it named, and nothing of it runs.
"""
import pickle

import numpy as np

from lstbase.files import atomic_write
from lstbase.safe_load import load_pickle


IMAGE_SIZES = 10
LARGEST_3D = 1e5
AXES = 'xyz'


class AnnotationError(ValueError):
    """A file or annotation that is not in the format above; the message names the file and the sample."""


def load(path):
    """(annotations, split) of an annotation file; split is None for a bare list."""
    data = load_pickle(path, 'annotation file')
    if isinstance(data, list):
        annotations, split = data, None
    elif isinstance(data, dict) and 'annotations' in data:
        annotations, split = data['annotations'], data.get('split')
        if split is not None and not (isinstance(split, dict) and all(
                isinstance(v, (list, tuple)) for v in split.values())):
            raise AnnotationError(f'{path}: "split" must map split names to lists of frame_dir')
    else:
        what = f'a dict with keys {sorted(map(str, data))[:6]}' if isinstance(data, dict) else type(data).__name__
        raise AnnotationError(f'{path}: expected pyskl\'s annotation format ({{"split": {{...}}, "annotations": '
                              f'[...]}} or a list of annotations), got {what}')
    if not isinstance(annotations, (list, tuple)) or not all(isinstance(a, dict) for a in annotations):
        raise AnnotationError(f'{path}: "annotations" must be a list of dicts (frame_dir, label, keypoint, ...)')
    return list(annotations), split


def select(annotations, split, name, path):
    """The annotations of split `name` in the split's order (all of them, in file order, when `name` is None)."""
    by_name = {}
    for index, annotation in enumerate(annotations):
        frame_dir = annotation.get('frame_dir')
        if not isinstance(frame_dir, str) or not frame_dir:
            raise AnnotationError(f'{path}: annotation {index} has no frame_dir (a non-empty string)')
        if frame_dir in by_name:
            raise AnnotationError(f'{path}: frame_dir {frame_dir!r} appears twice (annotations {by_name[frame_dir][0]} '
                                  f'and {index}); every sample needs a name of its own')
        by_name[frame_dir] = (index, annotation)
    if name is None:
        return [a for _, a in by_name.values()]
    if split is None:
        raise AnnotationError(f'{path}: split {name!r} asked, but the file has no "split" dict (a bare list of '
                              f'annotations): leave `split` out to use every sample')
    if name not in split:
        raise AnnotationError(f'{path}: no split {name!r}; the file has {", ".join(map(repr, split)) or "none"}')
    names = [str(n) for n in split[name]]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise AnnotationError(f'{path}: split {name!r} names {len(missing)} frame_dir without an annotation '
                              f'(e.g. {missing[0]!r})')
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise AnnotationError(f'{path}: split {name!r} lists frame_dir {twice!r} twice')
    if not names:
        raise AnnotationError(f'{path}: split {name!r} is empty')
    return [by_name[n][1] for n in names]


def keypoints(annotation, path, num_node=None, dims=None):
    """The checked (keypoint M x T x V x C, score M x T x V or None) of one annotation, as stored (float16 stays
    float16: a large dataset stays small in memory until a sample is used)."""
    where = f'{path}, frame_dir {annotation.get("frame_dir")!r}'
    if 'keypoint' not in annotation:
        raise AnnotationError(f'{where}: no "keypoint" array')
    keypoint = np.asarray(annotation['keypoint'])
    if keypoint.ndim != 4 or keypoint.shape[-1] not in (2, 3) or 0 in keypoint.shape[1:]:
        raise AnnotationError(f'{where}: keypoint of shape {keypoint.shape}, expected M x T x V x C with C = 2 (2-D) '
                              f'or 3 (3-D)')
    if not np.issubdtype(keypoint.dtype, np.number):
        raise AnnotationError(f'{where}: keypoint of type {keypoint.dtype}, expected numbers')
    if num_node is not None and keypoint.shape[2] != num_node:
        raise AnnotationError(f'{where}: {keypoint.shape[2]} keypoints per person, but the layout has {num_node}: '
                              f'a file of another keypoint set than the config\'s')
    if dims is not None and keypoint.shape[3] != dims:
        raise AnnotationError(f'{where}: {keypoint.shape[3]}-D keypoints, but the config reads {dims}-D ones')
    score = annotation.get('keypoint_score')
    if score is not None:
        score = np.asarray(score)
        if score.shape != keypoint.shape[:3]:
            raise AnnotationError(f'{where}: keypoint_score of shape {score.shape}, expected {keypoint.shape[:3]} '
                                  f'(M x T x V, as keypoint)')
    if score is not None and not np.issubdtype(score.dtype, np.number):
        raise AnnotationError(f'{where}: keypoint_score of type {score.dtype}, expected numbers')
    for name, array in (('keypoint', keypoint), ('keypoint_score', score)):
        if array is not None and not np.isfinite(array).all():
            frame = int(np.argmin(np.isfinite(array).reshape(array.shape[0], array.shape[1], -1).all(-1).all(0)))
            raise AnnotationError(f'{where}: {name} holds NaN or Inf (frame {frame})')
    frames = annotation.get('total_frames', keypoint.shape[1])
    if isinstance(frames, bool) or frames != keypoint.shape[1]:
        raise AnnotationError(f'{where}: total_frames {frames!r}, but keypoint holds {keypoint.shape[1]} frames '
                              f'(M x T x V x C): the two must agree')
    check_range(keypoint, annotation, path)
    if not len(keypoint):                                     # nobody found: one person of zeros
        keypoint = np.zeros((1,) + keypoint.shape[1:], keypoint.dtype)
        score = None if score is None else np.zeros(keypoint.shape[:3], score.dtype)
    return keypoint, score


def notes(annotations, path):
    """Warnings about a file's legal but surprising samples, a line each with their count and a first one: 2-D
    keypoints without scores (1.0 is used: some converters leave them out), and samples where nobody was found
    (M = 0, as in pyskl's files: one person of zeros)."""
    shapes = [np.shape(a['keypoint']) for a in annotations]
    unscored = [a['frame_dir'] for a, shape in zip(annotations, shapes)
                if shape[-1] == 2 and a.get('keypoint_score') is None]
    nobody = [a['frame_dir'] for a, shape in zip(annotations, shapes) if not shape[0]]
    found = []
    if unscored:
        found.append(f'{path}: {len(unscored)} of {len(annotations)} samples have 2-D keypoints without '
                     f'keypoint_score (e.g. frame_dir {unscored[0]!r}): their scores are taken as 1.0')
    if nobody:
        found.append(f'{path}: {len(nobody)} of {len(annotations)} samples hold nobody (keypoint M = 0, e.g. '
                     f'frame_dir {nobody[0]!r}): each is read as one person of zeros')
    return found


def check_range(keypoint, annotation, path):
    """Coordinates within the bounds of the module's docstring; AnnotationError naming the first beyond them."""
    bounds, words = coordinate_bounds(annotation, keypoint.shape[-1], path)
    far = np.argwhere(np.abs(keypoint) > np.array(bounds))
    if len(far):
        person, frame, joint, axis = far[0]
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: keypoint '
                              f'{float(keypoint[person, frame, joint, axis]):g} (person {person}, frame {frame}, '
                              f'joint {joint}, {AXES[axis]}) is beyond {words[axis]}: expected a skeleton\'s '
                              f'coordinates')


def coordinate_bounds(annotation, dims, path):
    """(the largest |coordinate| per axis, how each is said) for keypoints of `dims` dimensions."""
    if dims == 3:
        return [LARGEST_3D] * 3, [f'+-{LARGEST_3D:g} (100 km in metres, 100 m in millimetres)'] * 3
    height, width = image_shape(annotation, path)
    bounds = [IMAGE_SIZES * width, IMAGE_SIZES * height]
    return bounds, [f'+-{IMAGE_SIZES} x the image {side} ({bound:g} px; img_shape ({height:g}, {width:g}))'
                    for side, bound in (('width', bounds[0]), ('height', bounds[1]))]


def label(annotation, path, num_class=None):
    value = annotation.get('label')
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: label {value!r}, expected an '
                              f'integer class index')
    if num_class is not None and not 0 <= value < num_class:
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: label {int(value)} outside '
                              f'0..{num_class - 1} (model_args num_class {num_class})')
    if value < 0:
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: label {int(value)}, expected a '
                              f'class index >= 0')
    return int(value)


def image_shape(annotation, path):
    """(height, width) that 2-D keypoints are normalised by (img_shape, else original_shape)."""
    shape = annotation.get('img_shape', annotation.get('original_shape'))
    try:
        height, width = (float(v) for v in shape)
    except (TypeError, ValueError):
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: 2-D keypoints need img_shape '
                              f'(height, width), got {shape!r}') from None
    if not (height > 0 and width > 0):
        raise AnnotationError(f'{path}, frame_dir {annotation.get("frame_dir")!r}: img_shape {shape!r} must be '
                              f'positive')
    return height, width


def save(path, annotations, split=None):
    """Write annotations (and a split dict) atomically: checked first, so a bad annotation writes nothing."""
    checked = select(annotations, None, None, path)
    for annotation in checked:
        keypoints(annotation, path)
        label(annotation, path)
    if split is not None:
        for name in split:
            select(annotations, split, name, path)
    data = {'split': {k: list(v) for k, v in split.items()}, 'annotations': list(annotations)} if split is not None \
        else list(annotations)
    atomic_write(path, lambda f: pickle.dump(data, f, protocol=4))
