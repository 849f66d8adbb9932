#!/usr/bin/env python
"""Draw a skeleton sequence, optionally with a trained model's prediction.

    python tools/visualize.py --input data/NW-UCLA/all_sqe/a01_s01_e00_v03.json --out a01.gif
    python tools/visualize.py --input FILE --config <work_dir>/config.yaml --weights W.pt --out x.png

Inputs as tools/predict.py (NTU `.skeleton`, NW-UCLA `.json`, `.npy` C,T,V,M, an annotation file: the sample that
--samples names, else the first of --split or of the file).
The sequence is drawn as the preprocessing leaves it (NTU: denoised, the two main actors, centred) in the x-y plane
(2-D keypoints: the image's, y up): bones from the graph's
edges (first person solid, second dashed), joints coloured by LST's four body-part groups (head, hands, hips,
feet; a joint in two groups shows both colours as rings). The title gives the true label when the file name
encodes it and, with --config/--weights (several pairs: an ensemble), the top-3 prediction; TorchScript --weights
need --trust-code (loading one runs its code), as in tools/predict.py.
--out: .gif or .mp4 (needs ffmpeg) animate the frames; .png is a strip of --panels frames. A video (.mp4, .avi, ...)
is drawn as its own frames with every tracked person's COCO-17 skeleton and id on them (--max-persons, as
tools/extract_pose.py) and the top-3 prediction (.mp4 written by OpenCV, no ffmpeg needed; `make install-video`);
with --timeline (and a model) each person's current label instead, from tools/timeline.py's windows (--window,
--stride).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import predict  # noqa: E402
import timeline  # noqa: E402
import trained_model  # noqa: E402
from trained_model import UsageError  # noqa: E402

from lstbase.arguments import ArgumentParser  # noqa: E402  (trained_model puts the project root on the path)
from lstbase.errors import run  # noqa: E402
from lstbase.figures import pyplot  # noqa: E402
from lstbase.files import atomic_path, check_output_file, refuse_writing_inputs  # noqa: E402
from model.ctrgcn import PART_OUTPUT_ORDER  # noqa: E402
from preprocess import video  # noqa: E402
from specs import layouts  # noqa: E402
from text.prompts import class_names  # noqa: E402

PART_COLOURS = dict(head='tab:red', hand='tab:blue', hip='tab:green', foot='tab:orange')
PART_SIZES = dict(head=40, hand=40, hip=110, foot=40)          # hips drawn first and larger: overlaps show as rings
PERSON_STYLES = [dict(color='0.2', linestyle='-'), dict(color='0.45', linestyle='--')]
FORMATS = ('.gif', '.mp4', '.png')


def parse(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', required=True,
                        help='one .skeleton, .json, .npy, annotation (.pkl) or video file (drawn on its frames)')
    parser.add_argument('--config', action='append', default=[], help='a training config, for the prediction')
    parser.add_argument('--weights', action='append', default=[], help='its weights (one per --config)')
    parser.add_argument('--trust-code', action='store_true',
                        help='load TorchScript --weights: this runs the code the file holds (give it only for files '
                             'you trust)')
    parser.add_argument('--out', required=True, help='x.gif, x.mp4 or x.png (a strip of frames)')
    parser.add_argument('--fps', type=int, default=15, help='frames per second of a .gif or .mp4')
    parser.add_argument('--step', type=int, default=1, help='draw every step-th frame')
    parser.add_argument('--panels', type=int, default=8, help='frames in a .png strip')
    parser.add_argument('--timeline', action='store_true',
                        help='a video: draw each person\'s current label (tools/timeline.py) instead of one for all')
    parser.add_argument('--window', type=int, help='--timeline: frames per window (default: the model\'s input)')
    parser.add_argument('--stride', type=int, help='--timeline: frames between windows (default: a quarter window)')
    trained_model.add_input_options(parser)
    args = parser.parse_args(argv)
    args.options = trained_model.input_options(parser, args)
    if len(args.options.samples) > 1:
        parser.error(f'--samples {" ".join(args.samples)}: one sample is drawn; name one')
    if args.timeline and not args.config:
        parser.error('--timeline needs a model: give --config and --weights')
    if len(args.config) != len(args.weights):
        parser.error(f'{len(args.config)} --config but {len(args.weights)} --weights: give one weights file per config')
    if os.path.splitext(args.out)[1].lower() not in FORMATS:
        parser.error(f'--out {args.out}: expected a name ending in {", ".join(FORMATS)}')
    if min(args.fps, args.step, args.panels, args.window or 1, args.stride or 1) < 1:
        parser.error('--fps, --step, --panels, --window and --stride must be at least 1')
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
    with atomic_path(out) as tmp:
        movie.save(tmp, writer=writer)
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
    with atomic_path(out) as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return len(picked)


def render_overlay(path, sample, title, out, fps, step, panels, labels=None):
    """The video's own frames with each person's 2-D COCO skeleton (pixels) and id (and, with `labels`: per frame,
    person slot -> text, that person's label) drawn on them and the title on top: .mp4 (OpenCV's writer, no ffmpeg
    needed), .gif, or a .png strip of `panels` frames. Returns the frames (panels) written."""
    import cv2
    from PIL import Image
    keypoint, score = sample.annotation['keypoint'], sample.annotation['keypoint_score']
    layout = layouts.get('coco')
    drawn = []
    for t, frame in enumerate(video.read_frames(path)):
        if t % step == 0 and t < keypoint.shape[1]:
            texts = {m: labels[t].get(m, '') if labels else '' for m in range(len(keypoint))}
            drawn.append(overlay(cv2, frame, keypoint[:, t], score[:, t], layout, title, texts))
    if out.lower().endswith('.png'):
        drawn = [drawn[i] for i in np.linspace(0, len(drawn) - 1, min(panels, len(drawn))).round().astype(int)]
        strip = np.concatenate([cv2.resize(f, (320, round(320 * f.shape[0] / f.shape[1]))) for f in drawn], axis=1)
        with atomic_path(out) as tmp:
            write_png(cv2, tmp, strip)
    elif out.lower().endswith('.gif'):
        images = [Image.fromarray(cv2.cvtColor(cv2.resize(f, (480, round(480 * f.shape[0] / f.shape[1]))),
                                               cv2.COLOR_BGR2RGB)) for f in drawn]
        with atomic_path(out) as tmp:
            images[0].save(tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    else:
        with atomic_path(out) as tmp:
            write_mp4(cv2, tmp, drawn, fps)
    return len(drawn)


def overlay(cv2, frame, keypoints, scores, layout, title, texts, threshold=0.1):
    """One BGR frame with each person's bones, joints coloured by LST's part groups, id and text above the head, and
    the title."""
    frame = frame.copy()
    thickness = max(2, frame.shape[1] // 400)
    scale = frame.shape[1] / 1200
    for person, (keypoint, score) in enumerate(zip(keypoints, scores)):
        if not score.any():
            continue
        points = [tuple(int(round(v)) for v in xy) for xy in keypoint]
        for joint, neighbour in layout.inward:
            if min(score[joint], score[neighbour]) > threshold:
                cv2.line(frame, points[joint], points[neighbour], (40, 40, 40), thickness + 2)
                cv2.line(frame, points[joint], points[neighbour], (235, 235, 235), thickness)
        for part in PART_OUTPUT_ORDER:
            colour = tuple(int(255 * c) for c in matplotlib_bgr(PART_COLOURS[part]))
            for joint in layout.groups['joint'][part]:
                if score[joint] > threshold:
                    cv2.circle(frame, points[joint], 2 * thickness + 1, colour, -1)
        seen = keypoint[score > threshold] if (score > threshold).any() else keypoint
        top = (int(seen[:, 0].min()), max(int(seen[:, 1].min() - 20 * scale), int(30 * scale)))
        put_text(cv2, frame, f'{person} {texts[person]}'.strip(), top, 0.8 * scale, thickness)
    for row, line in enumerate(title.splitlines()):
        put_text(cv2, frame, line, (10, int(40 * scale * (row + 1))), scale, thickness)
    return frame


def put_text(cv2, frame, text, origin, scale, thickness):
    """White text with a black outline, readable on any background."""
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4 * thickness, cv2.LINE_AA)
    cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def frame_labels(segments, persons, frames):
    """For each frame, person slot -> 'label 87%' of the segment covering it (a pair's label for both)."""
    labels = [{} for _ in range(frames)]
    for segment in segments:
        for slot in map(int, segment.person.split('+')):
            if slot < persons:
                for t in range(segment.start, min(segment.end, frames)):
                    labels[t][slot] = f'{segment.name} {segment.score:.0%}'
    return labels


def matplotlib_bgr(name):
    from matplotlib.colors import to_rgb
    return to_rgb(name)[::-1]


def write_mp4(cv2, path, frames, fps):
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    if not writer.isOpened():
        raise UsageError(f'{path}: OpenCV cannot write .mp4 here; write a .gif instead')
    for frame in frames:
        writer.write(frame)
    writer.release()


def write_png(cv2, path, image):
    if not cv2.imwrite(path, image):
        raise UsageError(f'{path}: OpenCV could not write the image')


def visualize(path, out, configs=(), weights=(), fps=15, step=1, panels=8, trust_code=False,
              options=trained_model.InputOptions(), timeline_windows=None):
    """Draw `path` (its first sample, of those `options` pick) into `out`; returns the number of frames drawn (panels
    for a .png). A video is drawn as its own frames with the people on them; `timeline_windows` = (window or None,
    stride or None) draws each person's label of the moment (needs a model)."""
    check_output_file(out, '--out')
    refuse_writing_inputs([('--out', out)], [('--input', path)] + [('--config', c) for c in configs]
                          + [('--weights', w) for w in weights])
    streams = predict.load_streams(configs, weights, trust_code) if configs else []
    is_video = path.lower().endswith(video.VIDEO_EXTENSIONS)
    sample = (streams[0].read(path, options) if streams else trained_model.read_samples(path, options=options))[0]
    prediction = None
    if streams:
        streams[0].check(sample)
        layout, names = streams[0].layout, streams[0].class_names
        prediction = predict.ranked(predict.fused_scores(streams, [sample], 1.0)[0], names, min(3, len(names)))
    else:
        trained_model.check_sample(sample)
        if sample.layout is None:
            raise UsageError(f'{path}: {sample.joints.shape[2]} keypoints per person, a set without a known layout '
                             f'({", ".join(layouts.NAMED)}): give --config and --weights of a model of its layout')
        layout = layouts.get(sample.layout)
        names = class_names(sample.dataset) if sample.dataset else []
    title = title_of(sample, prediction, names)
    if is_video:
        drawn = sample if sample.layout == 'coco' else trained_model.read_samples(path, options=options)[0]
        labels = None
        if timeline_windows and streams:
            labels = people_labels(path, sample, streams, names, *timeline_windows)
            title = sample.name
        return render_overlay(path, drawn, title, out, fps, step, panels, labels)
    frames = shown_frames(sample.joints, step)
    if out.lower().endswith('.png'):
        return render_strip(sample, layout, frames, title, out, panels)
    render_animation(sample, layout, frames, title, out, fps)
    return len(frames)


def people_labels(path, sample, streams, names, window=None, stride=None):
    """Per frame, person slot -> its label of the moment (tools/timeline.py's segments)."""
    keypoint = np.asarray(sample.annotation['keypoint'], np.float32)
    score = sample.annotation.get('keypoint_score')
    people = timeline.People(sample.name, keypoint, score, sample.annotation.get('img_shape'), timeline.video_fps(path))
    window = window or streams[0].input_frames
    segments = timeline.timeline_of([people], timeline.Scorer(streams, path), window, stride or max(1, window // 4),
                                    names)
    return frame_labels(segments, keypoint.shape[0], keypoint.shape[1])


def main(argv=None):
    args = parse(argv)
    count = visualize(args.input, args.out, args.config, args.weights, args.fps, args.step, args.panels,
                      args.trust_code, args.options, (args.window, args.stride) if args.timeline else None)
    print(f'wrote {args.out} ({count} frames)')
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
