"""Generated skeletons whose classes share motions of body parts that their descriptions name, for the zero-shot
tests: a stick figure of seven keypoints whose arms rest, rise or swing while its legs stand, march or kick (nine
classes, every pair). Seen classes teach each part's motions with their words; an unseen class is a new pair of them.
"""
import os

import numpy as np

from preprocess import annotations

# head, neck (the centre), hip, left hand, right hand, left foot, right foot (metres, y up)
POSE = np.array([[0, 0.7, 0], [0, 0.5, 0], [0, 0, 0], [-0.3, 0.1, 0], [0.3, 0.1, 0], [-0.15, -0.8, 0],
                 [0.15, -0.8, 0]], dtype=np.float64)
HANDS, FEET = [3, 4], [5, 6]
LAYOUT = dict(edges=[[0, 1], [2, 1], [3, 1], [4, 1], [5, 2], [6, 2]], center=1,
              groups=dict(head=[0], hand=[3, 4], hip=[1, 2], foot=[5, 6]))
ARMS = {'rest': ('hand hangs at the side', 'arm hangs down and stays'),
        'raise': ('hand goes up above the head and comes down', 'arm lifts up high and lowers again'),
        'swing': ('hand swings forward and back', 'arm swings to the front and to the back')}
LEGS = {'stand': ('leg stays straight', 'foot stays on the floor'),
        'march': ('leg lifts the knee up and puts it down', 'foot rises off the floor and lands'),
        'kick': ('leg kicks forward and back', 'foot kicks out to the front')}
CLASSES = [(arm, leg) for arm in ARMS for leg in LEGS]
# a Latin square: each motion of each part is in one unseen class and in two seen ones
UNSEEN = [CLASSES.index(pair) for pair in (('rest', 'march'), ('raise', 'kick'), ('swing', 'stand'))]


def class_name(arm, leg):
    return f'{arm} arms and {leg}'


def motion(arm, leg, frames, rng):
    """frames x 7 x 3 displacement of one sample of the class (arm, leg)."""
    t = np.linspace(0, 2 * np.pi * rng.uniform(1.5, 2.5), frames) + rng.uniform(0, 2 * np.pi)
    offset = np.zeros((frames, len(POSE), 3))
    if arm == 'raise':
        offset[:, HANDS, 1] = 0.35 * (1 - np.cos(t))[:, None]
    elif arm == 'swing':
        offset[:, HANDS, 2] = 0.4 * np.stack([np.sin(t), -np.sin(t)], 1)
    if leg == 'march':
        offset[:, FEET, 1] = 0.25 * np.maximum(0, np.stack([np.sin(t), -np.sin(t)], 1))
    elif leg == 'kick':
        offset[:, FEET, 2] = 0.4 * np.stack([np.sin(t), -np.sin(t)], 1)
    return offset


def sample(label, index, split, rng, frames=32):
    arm, leg = CLASSES[label]
    body = POSE * rng.uniform(0.9, 1.1) + motion(arm, leg, frames, rng)
    body += rng.normal(scale=0.02, size=body.shape) + rng.normal(scale=0.05, size=(1, 1, 3))
    return dict(frame_dir=f'{split}_{label}_{index}', label=label, total_frames=frames,
                keypoint=body[None].astype(np.float32))


def write_dataset(out, train=12, test=8, seed=0):
    """An annotation file of every class, splits 'train' and 'val' (`train`, `test` samples per class)."""
    rng = np.random.default_rng(seed)
    found, split = [], {}
    for name, count in (('train', train), ('val', test)):
        made = [sample(label, i, name, rng) for label in range(len(CLASSES)) for i in range(count)]
        split[name] = [a['frame_dir'] for a in made]
        found += made
    annotations.save(out, found, split)
    return out


def write_descriptions(folder, classes=range(len(CLASSES)), prefix='custom'):
    """<prefix>_label_map.txt, _synonyms.txt, _parts.txt of `classes` (indexes of CLASSES)."""
    os.makedirs(folder, exist_ok=True)
    names, synonyms, parts = [], [], []
    for arm, leg in (CLASSES[c] for c in classes):
        name = class_name(arm, leg)
        names.append(name)
        synonyms.append(f'{name},{leg} while the arms {arm}')
        parts.append(';'.join([name, 'head stays level', *ARMS[arm], 'hip stays upright',
                               *LEGS[leg]]))
    for kind, lines in (('label_map', names), ('synonyms', synonyms), ('parts', parts)):
        with open(os.path.join(folder, f'{prefix}_{kind}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return folder


def config(path, ann_file, text_dir, cache_dir, **extra):
    """A config of LST on the stick figure (16-frame windows, small batches), `extra` keys over it."""
    import yaml
    feeder = dict(ann_file=str(ann_file), num_person=1, window_size=16, layout=LAYOUT)
    content = dict(
        dataset='custom', feeder='feeders.feeder_pose.Feeder',
        train_feeder_args=dict(feeder, split='train', p_interval=[0.7, 1]),
        test_feeder_args=dict(feeder, split='val', p_interval=[0.95]),
        model='model.ctrgcn.LSTModel',
        model_args=dict(num_class=len(CLASSES), num_point=len(POSE), num_person=1, graph='graph.skeleton.Graph',
                        graph_args=dict(layout=LAYOUT), head=['all-MiniLM-L6-v2']),
        base_lr=0.05, step=[12], warm_up_epoch=1, num_epoch=15, batch_size=16, test_batch_size=64,
        weight_decay=0.0005, nesterov=True, device=['cpu'], num_worker=0, save_epoch=0, text_dir=str(text_dir),
        text_cache_dir=str(cache_dir))
    content.update(extra)
    with open(path, 'w') as f:
        yaml.safe_dump(content, f)
    return str(path)
