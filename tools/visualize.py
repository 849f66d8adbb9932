#!/usr/bin/env python
"""Draw a skeleton sequence, optionally with a trained model's prediction.

    python tools/visualize.py --input data/NW-UCLA/all_sqe/a01_s01_e00_v03.json --out a01.gif
    python tools/visualize.py --input FILE --config <work_dir>/config.yaml --weights W.pt --out x.png

Inputs as tools/predict.py (NTU `.skeleton`, NW-UCLA `.json`, `.npy` C,T,V,M, an annotation file: its first sample).
The sequence is drawn as the preprocessing leaves it (NTU: denoised, the two main actors, centred) in the x-y plane
(2-D keypoints: the image's, y up): bones from the graph's
edges (first person solid, second dashed), joints coloured by LST's four body-part groups (head, hands, hips,
feet; a joint in two groups shows both colours as rings). The title gives the true label when the file name
encodes it and, with --config/--weights (several pairs: an ensemble), the top-3 prediction.
--out: .gif or .mp4 (needs ffmpeg) animate the frames; .png is a strip of --panels frames.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import predict  # noqa: E402
import trained_model  # noqa: E402
from trained_model import UsageError  # noqa: E402

from engine.errors import run  # noqa: E402  (trained_model puts the project root on the path)
from model.ctrgcn import PART_OUTPUT_ORDER  # noqa: E402
from specs import layouts  # noqa: E402

PART_COLOURS = dict(head='tab:red', hand='tab:blue', hip='tab:green', foot='tab:orange')
PART_SIZES = dict(head=40, hand=40, hip=110, foot=40)          # hips drawn first and larger: overlaps show as rings
PERSON_STYLES = [dict(color='0.2', linestyle='-'), dict(color='0.45', linestyle='--')]
FORMATS = ('.gif', '.mp4', '.png')


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True, help='one .skeleton, .json, .npy or annotation (.pkl) file')
    parser.add_argument('--config', action='append', default=[], help='a training config, for the prediction')
    parser.add_argument('--weights', action='append', default=[], help='its weights (one per --config)')
    parser.add_argument('--out', required=True, help='x.gif, x.mp4 or x.png (a strip of frames)')
    parser.add_argument('--fps', type=int, default=15, help='frames per second of a .gif or .mp4')
    parser.add_argument('--step', type=int, default=1, help='draw every step-th frame')
    parser.add_argument('--panels', type=int, default=8, help='frames in a .png strip')
    args = parser.parse_args(argv)
    if len(args.config) != len(args.weights):
        parser.error(f'{len(args.config)} --config but {len(args.weights)} --weights: give one weights file per config')
    if os.path.splitext(args.out)[1].lower() not in FORMATS:
        parser.error(f'--out {args.out}: expected a name ending in {", ".join(FORMATS)}')
    if min(args.fps, args.step, args.panels) < 1:
        parser.error('--fps, --step and --panels must be at least 1')
    return args


def shown_frames(joints, step):
    """Indices of the frames with a skeleton (padding frames are all zero), every step-th one."""
    return np.nonzero(joints.any(axis=(0, 2, 3)))[0][::step]


class SkeletonDrawing:
    """The artists of one skeleton view on matplotlib axes; `show(t)` puts frame t of the sequence in them."""

    def __init__(self, ax, joints, layout, limits):
        from matplotlib.collections import LineCollection
        self.joints = joints                                      # C, T, V, M
        self.edges = np.array(layout.inward)
        self.groups = layout.groups['joint']
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
        ax.set_aspect('equal')
        ax.set_xticks([])
        ax.set_yticks([])
        self.bones = [ax.add_collection(LineCollection([], linewidths=2, **style))
                      for style in PERSON_STYLES[:joints.shape[3]]]
        order = sorted(PART_OUTPUT_ORDER, key=lambda part: -PART_SIZES[part])
        self.points = {part: ax.scatter([], [], s=PART_SIZES[part], c=PART_COLOURS[part], zorder=3)
                       for part in order}
        self.text = ax.text(0.02, 0.02, '', transform=ax.transAxes, fontsize=8)

    def show(self, t):
        frame = self.joints[:2, t]                                # x, y of V joints x M persons
        present = [m for m in range(frame.shape[2]) if frame[..., m].any()]
        for m, bones in enumerate(self.bones):
            xy = frame[..., m].T
            bones.set_segments(xy[self.edges] if m in present else [])
        for part, points in self.points.items():
            xy = [frame[:, self.groups[part], m].T for m in present]
            points.set_offsets(np.concatenate(xy) if xy else np.zeros((0, 2)))
        self.text.set_text(f'frame {t + 1}/{self.joints.shape[1]}')
        return [*self.bones, *self.points.values(), self.text]


def limits_of(joints):
    """Square x and y limits around every drawn joint (all-zero persons and frames are absent, not at 0)."""
    present = joints.any(axis=0)                                  # T, V, M
    x, y = joints[0][present], joints[1][present]
    centre = np.array([(x.min() + x.max()) / 2, (y.min() + y.max()) / 2])
    half = max(x.max() - x.min(), y.max() - y.min()) / 2 * 1.1 + 1e-6
    return [(centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)]


def title_of(sample, prediction, names):
    """'name | true: X | predicted: a 87%, b 9%, c 2%' from what is known."""
    parts = [sample.name]
    if sample.label is not None and 0 <= sample.label < len(names):
        parts.append(f'true: {names[sample.label]}')
    if prediction:
        parts.append('predicted: ' + ', '.join(f'{name} {p:.0%}' for _, name, p in prediction))
    return '\n'.join(parts)


def add_legend(fig, drawing):
    """The four body-part colours, top right, in LST's order."""
    fig.legend([drawing.points[part] for part in PART_OUTPUT_ORDER], PART_OUTPUT_ORDER, loc='upper right',
               fontsize=7, markerscale=0.6, frameon=False)


def render_animation(sample, layout, frames, title, out, fps):
    from matplotlib import animation
    plt = pyplot()
    if out.lower().endswith('.mp4') and not animation.writers.is_available('ffmpeg'):
        raise UsageError(f'--out {out}: writing .mp4 needs ffmpeg on the PATH (not found); write a .gif instead')
    fig, ax = plt.subplots(figsize=(4.2, 4.8), dpi=80)
    drawing = SkeletonDrawing(ax, sample.joints, layout, limits_of(sample.joints))
    add_legend(fig, drawing)
    fig.suptitle(title, fontsize=8, x=0.02, ha='left')
    movie = animation.FuncAnimation(fig, drawing.show, frames=list(frames), blit=False)
    writer = animation.PillowWriter(fps=fps) if out.lower().endswith('.gif') else animation.FFMpegWriter(fps=fps)
    trained_model.write_atomically(out, lambda tmp: movie.save(tmp, writer=writer))
    plt.close(fig)


def render_strip(sample, layout, frames, title, out, panels):
    plt = pyplot()
    picked = frames[np.linspace(0, len(frames) - 1, min(panels, len(frames))).round().astype(int)]
    fig, axes = plt.subplots(1, len(picked), figsize=(2.2 * len(picked), 2.9), dpi=100, squeeze=False)
    limits = limits_of(sample.joints)
    for ax, t in zip(axes[0], picked):
        drawing = SkeletonDrawing(ax, sample.joints, layout, limits)
        drawing.show(t)
    add_legend(fig, drawing)
    fig.suptitle(title, fontsize=9, x=0.01, ha='left')
    fig.tight_layout()
    trained_model.write_atomically(out, lambda tmp: fig.savefig(tmp))
    plt.close(fig)
    return len(picked)


def pyplot():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def visualize(path, out, configs=(), weights=(), fps=15, step=1, panels=8):
    """Draw `path` (its first sample) into `out`; returns the number of frames drawn (panels for a .png)."""
    streams = predict.load_streams(configs, weights) if configs else []
    sample = trained_model.read_samples(path, streams[0].dataset if streams else None)[0]
    prediction = None
    if streams:
        streams[0].check(sample)
        layout, names = streams[0].layout, streams[0].class_names
        prediction = predict.ranked(predict.fused_scores(streams, [sample], 1.0)[0], names, min(3, len(names)))
    else:
        if sample.layout is None:
            raise UsageError(f'{path}: {sample.joints.shape[2]} keypoints per person, a set without a known layout '
                             f'({", ".join(layouts.NAMED)}): give --config and --weights of a model of its layout')
        layout = layouts.get(sample.layout)
        names = trained_model.class_names(sample.dataset) if sample.dataset else []
    frames = shown_frames(sample.joints, step)
    title = title_of(sample, prediction, names)
    if out.lower().endswith('.png'):
        return render_strip(sample, layout, frames, title, out, panels)
    render_animation(sample, layout, frames, title, out, fps)
    return len(frames)


def main(argv=None):
    args = parse(argv)
    count = visualize(args.input, args.out, args.config, args.weights, args.fps, args.step, args.panels)
    print(f'wrote {args.out} ({count} frames)')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
