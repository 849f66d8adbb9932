"""2-D COCO-17 keypoints made from real motion, for the tests of the annotation format and `custom` datasets.

NW-UCLA's Kinect skeletons (3-D, 20 joints) are seen by a pinhole camera and their joints mapped to COCO-17; COCO's
face keypoints, which Kinect lacks, are put around the head joint. Two framings (FRAMINGS): `close`, 640 x 480 with
the person about 60% of the frame's height, and `far`, 1920 x 1080 with a wide lens, the person about 15% of the
height and off centre (the same motion as a distant camera sees it). The classes get names and
descriptions of our own (not NW-UCLA's), written as a user would for `--text-dir`.
"""
import json
import os

import numpy as np

from preprocess import annotations

WIDTH, HEIGHT, FOCAL = 640, 480, 525.0
# framing -> (width, height, focal length, principal point x, y), pixels
FRAMINGS = {'close': (WIDTH, HEIGHT, FOCAL, WIDTH / 2, HEIGHT / 2), 'far': (1920, 1080, 330.0, 700.0, 620.0)}
# COCO-17 keypoint <- NW-UCLA joint (0-based): nose, eyes and ears from the head (offsets below), then shoulders,
# elbows, wrists, hips, knees, ankles (left first)
COCO_FROM_UCLA = [3, 3, 3, 3, 3, 4, 8, 5, 9, 6, 10, 12, 16, 13, 17, 14, 18]
FACE_OFFSETS = np.array([[0, -0.02, -0.08], [0.03, 0.02, -0.06], [-0.03, 0.02, -0.06], [0.07, 0, 0], [-0.07, 0, 0],
                         *[[0, 0, 0]] * 12])                      # metres, added to the head for COCO's face points
CLASSES = ['grab one', 'grab both', 'bin it', 'stroll', 'take a seat', 'rise', 'jacket on', 'jacket off', 'toss',
           'haul']
SYNONYMS = ['grab one,pick a thing up with a hand', 'grab both,lift with both hands', 'bin it,drop rubbish',
            'stroll,walk about', 'take a seat,sit', 'rise,get up', 'jacket on,put a coat on',
            'jacket off,take a coat off', 'toss,throw', 'haul,carry a box']
PARTS = [
    'looks down;one hand closes on an object;arm reaches to the floor;bends forward;knees bend a little;feet stay',
    'looks down;both hands hold an object;both arms lift;bends forward deeply;knees bend;feet apart',
    'looks at the bin;hand lets go;arm stretches over the bin;bends slightly;one step;feet still',
    'looks ahead;hands swing;arms swing;sways;legs step in turn;feet walk',
    'looks ahead;hands on thighs;arms relaxed;lowers onto a seat;knees bend;feet planted',
    'looks ahead;hands push off;arms push;rises from a seat;knees straighten;feet planted',
    'turns to the sleeve;hands pull a coat up;arms slide into sleeves;steady;legs still;feet still',
    'turns to the sleeve;hands pull a coat down;arms slide out of sleeves;steady;legs still;feet still',
    'follows the throw;hand releases;arm swings forward fast;turns;front leg braces;feet planted',
    'looks ahead;hands grip a box;arms hold it at the waist;upright;legs walk;feet step',
]


def project(skeleton, framing='close'):
    """T x 20 x 3 Kinect coordinates (metres, y up, z away from the camera) -> T x 17 x 2 COCO pixels."""
    _, _, focal, centre_x, centre_y = FRAMINGS[framing]
    joints = skeleton[:, COCO_FROM_UCLA] + FACE_OFFSETS
    depth = np.maximum(joints[..., 2], 0.5)
    u = focal * joints[..., 0] / depth + centre_x
    v = -focal * joints[..., 1] / depth + centre_y
    return np.stack([u, v], axis=-1)


def write_coco_from_ucla(ucla_root, out, per_class=None, framing='close'):
    """An annotation file of NW-UCLA seen as 2-D COCO-17 keypoints in a framing, splits 'train' (views 1, 2) and
    'val' (view 3); `per_class` keeps the first sequences of each class and split. Returns the path."""
    width, height = FRAMINGS[framing][:2]
    from feeders import feeder_ucla
    samples, split = [], {}
    for name in ('train', 'val'):
        stems, labels = feeder_ucla.split_files(ucla_root, name)
        seen, kept = {}, []
        for stem, label in zip(stems, labels):
            seen[label] = seen.get(label, 0) + 1
            if per_class is None or seen[label] <= per_class:
                kept.append((stem, label))
        split[name] = [s for s, _ in kept]
        for stem, label in kept:
            with open(os.path.join(ucla_root, stem + '.json')) as f:
                skeleton = np.asarray(json.load(f)['skeletons'], dtype=np.float64)
            keypoint = project(skeleton, framing)[None].astype(np.float32)
            samples.append(dict(frame_dir=stem, label=label, total_frames=len(skeleton), img_shape=(height, width),
                                original_shape=(height, width), keypoint=keypoint,
                                keypoint_score=np.full(keypoint.shape[:3], 0.9, np.float32)))
    annotations.save(out, samples, split)
    return out


def write_descriptions(folder):
    """custom_label_map.txt, custom_synonyms.txt, custom_parts.txt for the classes above."""
    os.makedirs(folder, exist_ok=True)
    files = {'label_map': CLASSES, 'synonyms': SYNONYMS,
             'parts': [f'{name};{parts}' for name, parts in zip(CLASSES, PARTS)]}
    for kind, lines in files.items():
        with open(os.path.join(folder, f'custom_{kind}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return folder
