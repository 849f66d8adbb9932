"""Synthetic raw skeleton data for the demo, the tests and the benchmarks.

NTU RGB+D `.skeleton` files and NW-UCLA JSON files for a chosen number of classes. Each class moves one body part
in its own way (which part, along which axis, how fast), so a model can learn it; NTU files also carry the quirks
the denoiser exists for: short-lived extra bodies, wide noisy bodies, dropped frames, second persons, and (optionally)
files without any skeleton.

    python -m preprocess.synthetic ntu --out data/demo/raw --classes 10 --per-class 40
    python -m preprocess.synthetic ucla --out data/demo/all_sqe --classes 10 --per-class 20
"""
import argparse
import json
import os

import numpy as np
from tqdm import tqdm

from lstbase.arguments import ArgumentParser
from lstbase.files import check_writable

# A standing person (metres, y up), NTU joint order; NW-UCLA uses the first 20 joints of the same layout.
POSE = np.array([
    [0.0, 0.0, 3.0], [0.0, 0.3, 3.0], [0.0, 0.6, 3.0], [0.0, 0.75, 3.0],       # spine base, mid, neck, head
    [-0.2, 0.5, 3.0], [-0.25, 0.25, 3.0], [-0.27, 0.0, 3.0], [-0.28, -0.08, 3.0],   # left arm
    [0.2, 0.5, 3.0], [0.25, 0.25, 3.0], [0.27, 0.0, 3.0], [0.28, -0.08, 3.0],      # right arm
    [-0.1, -0.05, 3.0], [-0.1, -0.45, 3.0], [-0.1, -0.85, 3.0], [-0.1, -0.9, 2.9],  # left leg
    [0.1, -0.05, 3.0], [0.1, -0.45, 3.0], [0.1, -0.85, 3.0], [0.1, -0.9, 2.9],     # right leg
    [0.0, 0.52, 3.0], [-0.29, -0.12, 3.0], [-0.25, -0.06, 3.0], [0.29, -0.12, 3.0], [0.25, -0.06, 3.0],
], dtype=np.float64)
PARTS = [[3, 2], [5, 6, 7, 21, 22], [9, 10, 11, 23, 24], [13, 14, 15], [17, 18, 19]]   # head, arms, legs
UCLA_ACTIONS = (1, 2, 3, 4, 5, 6, 8, 9, 11, 12)


def class_motion(label, frames, rng, num_joints=25):
    """frames x joints x 3 displacement: class `label` moves one part along one axis at its own pace."""
    part = PARTS[label % len(PARTS)]
    axis = (label // len(PARTS)) % 3
    speed = 1 + (label // (3 * len(PARTS))) % 4
    t = np.linspace(0, 2 * np.pi, frames) * speed + rng.uniform(0, 2 * np.pi)
    offset = np.zeros((frames, num_joints, 3))
    for depth, joint in enumerate(part):
        if joint < num_joints:
            offset[:, joint, axis] = 0.25 * (1 + 0.3 * depth) * np.sin(t)
    return offset


def person(label, frames, rng, shift=0.0, num_joints=25):
    body = POSE[:num_joints] + class_motion(label, frames, rng, num_joints)
    body += rng.normal(scale=0.01, size=body.shape)                   # tracking jitter
    body[..., 0] += shift + rng.normal(scale=0.05)
    return body


def body_lines(body_id, joints):
    lines = [f'{body_id} 0 1 1 1 1 0 0.1 0.1 2', str(len(joints))]
    for x, y, z in joints:
        lines.append(f'{x:.7f} {y:.7f} {z:.7f} 260.1 210.2 1000.3 560.4 0.1 0.2 0.3 0.9 2')
    return lines


def skeleton_text(bodies_per_frame):
    """The NTU text format: frame count, then per frame the body count and each body's 25 joint lines."""
    lines = [str(len(bodies_per_frame))]
    for bodies in bodies_per_frame:
        lines.append(str(len(bodies)))
        for body_id, joints in bodies:
            lines += body_lines(body_id, joints)
    return '\n'.join(lines) + '\n'


def ntu_sequence(label, rng, two_person, frames=None):
    """Per frame, the list of (body id, 25 x 3 joints) with the raw data's quirks drawn at random."""
    frames = frames or int(rng.integers(50, 90))
    main_id, other_id = 72057594037930000 + int(rng.integers(1000)), 72057594037940000 + int(rng.integers(1000))
    actors = [(main_id, person(label, frames, rng))]
    if two_person:
        partner = person(label, frames, rng, shift=0.8)
        partner = partner[:1] + 0.5 * (partner - partner[:1])    # the partner answers with half the motion
        actors.append((other_id, partner))
    sequence = [[(body_id, joints[f]) for body_id, joints in actors] for f in range(frames)]
    quirk = rng.random()
    if quirk < 0.15:                                   # a short-lived extra body (<= 11 frames)
        start = int(rng.integers(0, frames - 10))
        for f in range(start, start + int(rng.integers(3, 11))):
            sequence[f].append((99, POSE + rng.normal(scale=0.3, size=POSE.shape)))
    elif quirk < 0.3:                                  # a wide noisy body (x-spread > 0.8 y-spread)
        wide = POSE[:, [1, 0, 2]] * [2.0, 0.2, 1.0] + [0.0, 0.0, 1.0]
        for f in range(frames // 4, frames):
            sequence[f].append((98, wide + rng.normal(scale=0.01, size=POSE.shape)))
    elif quirk < 0.4:                                  # dropped frames
        for f in rng.choice(frames, size=3, replace=False):
            sequence[f] = []
    return sequence


def ntu_names(num_classes, per_class, rng, max_setup=17, max_performer=40):
    """Distinct file names spread over setups, cameras, performers and replications."""
    combos = [(s, c, p, r) for s in range(1, max_setup + 1) for c in (1, 2, 3)
              for p in range(1, max_performer + 1) for r in (1, 2)]
    for label in range(num_classes):
        for index in rng.choice(len(combos), size=per_class, replace=False):
            s, c, p, r = combos[index]
            yield label, f'S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{label + 1:03d}'


def write_ntu(out, num_classes=10, per_class=20, two_person_classes=2, empty_files=0, seed=0, ntu120=False):
    """Write NTU `.skeleton` files; the last `two_person_classes` classes have a second person."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    names = list(ntu_names(num_classes, per_class, rng, 32 if ntu120 else 17, 106 if ntu120 else 40))
    for label, name in tqdm(names, desc='synthetic NTU', unit='file'):
        sequence = ntu_sequence(label, rng, label >= num_classes - two_person_classes)
        with open(os.path.join(out, name + '.skeleton'), 'w') as f:
            f.write(skeleton_text(sequence))
    for i in range(empty_files):                       # the dataset's "missing skeleton" samples
        with open(os.path.join(out, f'S001C001P{40 - i:03d}R002A001.skeleton'), 'w') as f:
            f.write('5\n' + '0\n' * 5)
    return [n for _, n in names]


def write_ucla(out, num_classes=10, per_class=12, seed=0):
    """Write NW-UCLA JSON files (views 1-3 so both splits get samples)."""
    rng = np.random.default_rng(seed)
    os.makedirs(out, exist_ok=True)
    names = []
    for label in range(min(num_classes, len(UCLA_ACTIONS))):
        for i in range(per_class):
            name = f'a{UCLA_ACTIONS[label]:02d}_s{1 + (i // 3) % 10:02d}_e{i // 30:02d}_v{1 + i % 3:02d}'
            frames = int(rng.integers(20, 60))
            skeleton = person(label, frames, rng, num_joints=20)
            with open(os.path.join(out, name + '.json'), 'w') as f:
                json.dump({'file_name': name, 'skeletons': np.round(skeleton, 6).tolist(),
                           'label': label + 1}, f)
            names.append(name)
    return names


def write_dataset(spec, root, num_classes=10, per_class=12, seed=0):
    """A small generated copy of a released dataset, ready for its feeder in `root`: NW-UCLA's JSON files (`ucla`)
    or NTU's preprocessed splits (`ntu60`, `ntu120`: raw files generated beside `root`, then the three steps)."""
    if spec == 'ucla':
        write_ucla(root, num_classes, per_class, seed)
        return root
    from preprocess import ntu
    raw = f'{root}_raw'
    write_ntu(raw, num_classes=num_classes, per_class=per_class, seed=seed, ntu120=spec == 'ntu120')
    ntu.parse_all([raw], root, spec, workers=1)
    ntu.denoise_all(root, workers=1)
    ntu.write_splits(root)
    return root


def main(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('format', choices=['ntu', 'ucla'])
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--classes', type=int, default=10)
    parser.add_argument('--per-class', type=int, default=20)
    parser.add_argument('--two-person-classes', type=int, default=2, help='NTU: classes with a second person')
    parser.add_argument('--empty-files', type=int, default=0, help='NTU: files without any skeleton')
    parser.add_argument('--ntu120', action='store_true', help='NTU: use setups and performers of NTU120')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    most = len(UCLA_ACTIONS) if args.format == 'ucla' else 120 if args.ntu120 else 60
    if not 1 <= args.classes <= most:                     # more NW-UCLA classes were cut to 10 without a word
        parser.error(f'--classes {args.classes}: {args.format} data has 1 to {most} classes')
    if args.per_class < 1:
        parser.error(f'--per-class {args.per_class}: expected at least 1')
    check_writable(args.out, '--out')
    if args.format == 'ntu':
        names = write_ntu(args.out, args.classes, args.per_class, args.two_person_classes, args.empty_files,
                          args.seed, args.ntu120)
    else:
        names = write_ucla(args.out, args.classes, args.per_class, args.seed)
    empty = args.empty_files if args.format == 'ntu' else 0
    print(f'wrote {len(names)} files to {args.out}' + (f' (and {empty} without any skeleton)' if empty else ''))


if __name__ == '__main__':
    from lstbase.errors import run
    run(main)
