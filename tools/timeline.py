#!/usr/bin/env python
"""An action timeline per person: what each person does when, over a long video or skeleton file, or a live stream.

    python tools/timeline.py --config <work_dir>/config.yaml --weights <work_dir>/best.pt --input long.mp4 \\
        --out long_timeline.json                       # also long_timeline.csv
    python tools/timeline.py --config C --weights W --input 0 --stream --out live.json       # camera 0, a URL, a file

The people of a video are found and tracked (tools/extract_pose.py's estimator, --max-persons); those of a skeleton
file (.skeleton, .json, .npy, an annotation .pkl: each of its samples) are its person slots. Windows of --window
frames (default: the model's input length) every --stride frames (default a quarter window) go over each person's
frames, each window through the test phase's path (tools/predict.py's); each frame takes the mean probabilities of
the windows holding it, and runs of one label are merged into segments (tools/segments.py says how, and what is
done with short runs): sample, person, start and end (frame, and seconds), label, score (the label's mean
probability). A window where the person is in view in fewer than half its frames is not decided. A model of two person
slots (NTU RGB+D, pyskl's files) is given the two people together in view the longest as one subject ("0+1"), so
two-person actions are recognised as such; everyone else alone.

--stream reads frames as they come (a file at its own frame rate, a camera index, a URL OpenCV opens), prints one
line per decided window as it is decided, and writes the timeline at the end of the stream or on Ctrl-C; memory
stays bounded (tools/live.py). Several --config/--weights pairs are fused as in tools/predict.py.
"""
import argparse
import os
import sys
from dataclasses import dataclass
from typing import Optional

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import predict  # noqa: E402
import segments as timeline_segments  # noqa: E402
import trained_model  # noqa: E402
from trained_model import UsageError  # noqa: E402

from lstbase.arguments import ArgumentParser  # noqa: E402  (trained_model puts the project root on the path)
from lstbase.errors import run  # noqa: E402
from lstbase.files import atomic_write, check_output_file, refuse_writing_inputs  # noqa: E402
from preprocess import video  # noqa: E402

SKELETON_FPS = 30.0       # NTU RGB+D's Kinect, and the default for files that carry no frame rate


def parse(argv=None):
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--config', action='append', required=True, help='a training config; repeat for an ensemble')
    parser.add_argument('--weights', action='append', required=True, help='its weights (one per --config)')
    parser.add_argument('--input', required=True,
                        help='a video, .skeleton, .json, .npy or annotation file; with --stream also a camera index '
                             'or a URL')
    parser.add_argument('--out', help='the timeline to write, as .json with a .csv beside it (default: print only)')
    parser.add_argument('--window', type=int, help='frames per window (default: the model\'s input length)')
    parser.add_argument('--stride', type=int, help='frames between windows (default: a quarter window)')
    parser.add_argument('--fps', type=float,
                        help=f'frames per second of a skeleton file (default {SKELETON_FPS:g}); a video has its own')
    parser.add_argument('--stream', action='store_true', help='read the input as a live stream (see above)')
    parser.add_argument('--alpha', type=float, default=1.0, help='bone weight when fusing two streams (ensemble.py)')
    parser.add_argument('--trust-code', action='store_true', help='load TorchScript --weights (runs their code)')
    trained_model.add_input_options(parser)
    args = parser.parse_args(argv)
    args.options = trained_model.input_options(parser, args)
    if len(args.config) != len(args.weights):
        parser.error(f'{len(args.config)} --config but {len(args.weights)} --weights: give one weights file per config')
    for name in ('window', 'stride'):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} {getattr(args, name)}: expected at least 1')
    if args.fps is not None and not args.fps > 0:
        parser.error(f'--fps {args.fps}: expected a positive number of frames per second')
    if args.out and not args.out.lower().endswith('.json'):
        parser.error(f'--out {args.out}: expected a .json name (the .csv is written beside it)')
    return args


# ------------------------------------------------------------------------------------------------ people
@dataclass
class People:
    """The people of one sample: keypoint M x T x V x C (zeros where a person is out of view), score M x T x V
    (2-D) or None, the frame's (height, width) for 2-D keypoints."""
    name: str
    keypoint: np.ndarray
    score: Optional[np.ndarray]
    shape: Optional[tuple]
    fps: float

    def presence(self):
        return self.keypoint.any(axis=(2, 3))                            # M x T

    def window(self, slots, start, end):
        """The annotation of the people in `slots` over frames [start, end)."""
        found = dict(frame_dir=f'{self.name}@{start}', total_frames=end - start,
                     keypoint=self.keypoint[list(slots), start:end])
        if self.score is not None:
            found['keypoint_score'] = self.score[list(slots), start:end]
        if self.shape is not None:
            found['img_shape'] = found['original_shape'] = self.shape
        return found


def read_people(path, stream, options=trained_model.InputOptions(), fps=None):
    """[People] of an input file: a video's tracked people (one sample), or each sample of a skeleton file (those
    `options` pick)."""
    if path.lower().endswith(video.VIDEO_EXTENSIONS):
        try:
            video.check_installed(options.max_persons)
            skeleton = video.extract(path, stream.video_layout, max_persons=options.max_persons)
        except (video.VideoError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        name = os.path.splitext(os.path.basename(path))[0]
        return [People(name, skeleton.keypoint, skeleton.score, skeleton.shape, fps or video_fps(path))]
    found = []
    for sample in stream.read(path, options):
        stream.check(sample)
        annotation = sample.annotation
        keypoint = np.asarray(annotation['keypoint'], np.float32)
        score = annotation.get('keypoint_score')
        shape = annotation.get('img_shape') or annotation.get('original_shape')
        found.append(People(sample.name, keypoint, None if score is None else np.asarray(score, np.float32),
                            None if shape is None else tuple(shape), fps or SKELETON_FPS))
    return found


def video_fps(path):
    cv2 = video.import_cv2()
    capture = cv2.VideoCapture(path)
    rate = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return rate if rate and np.isfinite(rate) and rate > 0 else SKELETON_FPS


def subjects(presence, num_person):
    """[(person name, slots)]: everyone in view alone, or for a model of two person slots the two together in view
    the longest as one subject ("0+1", the lower slot first) and the others alone."""
    seen = [m for m in range(len(presence)) if presence[m].any()]
    if num_person >= 2 and len(seen) >= 2:
        together, a, b = max(((presence[a] & presence[b]).sum(), -a, -b) for i, a in enumerate(seen)
                             for b in seen[i + 1:])
        a, b = -a, -b
        if together > 0:
            return [(f'{a}+{b}', (a, b))] + [(str(m), (m,)) for m in seen if m not in (a, b)]
    return [(str(m), (m,)) for m in seen]


def windows(people, num_person, window, stride):
    """[(subject, start, end, annotation)]: each subject's windows in order, over the frames from its first to its
    last in view, those where it is in view at least half the time."""
    presence = people.presence()
    found = []
    for person, slots in subjects(presence, num_person):
        in_view = presence[list(slots)].any(axis=0)
        first, last = (int(frame) for frame in np.flatnonzero(in_view)[[0, -1]])
        for start in timeline_segments.window_starts(last + 1 - first, window, stride):
            start += first
            end = min(start + window, last + 1)
            if in_view[start:end].mean() >= 0.5:
                found.append(((people.name, person), start, end, people.window(slots, start, end)))
    return found


# ------------------------------------------------------------------------------------------------ scoring
class Scorer:
    """Windows (annotations) -> class probabilities (N x classes) through the streams' test feeders and networks,
    fused."""

    def __init__(self, streams, path, alpha=1.0):
        self.streams, self.path, self.alpha = streams, path, alpha
        self.num_person = max(stream.num_person for stream in streams)
        self.far_outside = 0

    def __call__(self, annotations):
        samples = [trained_model.Sample(self.path, annotation) for annotation in annotations]
        logits = [stream.run([stream.prepare(sample) for sample in samples]) for stream in self.streams]
        self.far_outside += sum(any(flags) for flags in zip(*[s.far_outside() or [False] * len(samples)
                                                               for s in self.streams]))
        probabilities = predict.softmax(predict.fused(logits, self.alpha))
        if not np.isfinite(probabilities).all():
            raise UsageError(f'{self.path}: the model gives non-finite scores (NaN or Inf)')
        return probabilities


def timeline_of(all_people, scorer, window, stride, names, batch_size=64):
    """The segments of every sample's people."""
    timeline = timeline_segments.Timeline(names, min_frames=window // 2)
    found = [w for people in all_people for w in windows(people, scorer.num_person, window, stride)]
    for begin in range(0, len(found), batch_size):
        batch = found[begin:begin + batch_size]
        for (subject, start, end, _), probabilities in zip(batch, scorer([w[3] for w in batch])):
            timeline.add(subject, start, end, probabilities)
    return timeline.close()


# ------------------------------------------------------------------------------------------------ output
def write_outputs(out, segments, fps, about):
    csv_path = os.path.splitext(out)[0] + '.csv'
    atomic_write(out, lambda f: timeline_segments.write_json(f, segments, fps, **about), mode='w')
    atomic_write(csv_path, lambda f: timeline_segments.write_csv(f, segments, fps), mode='w')
    return csv_path


def table(segments, fps):
    lines = [f'{"sample":<20} {"person":>6} {"frames":>13} {"seconds":>15}  {"label":<32} {"score":>6}']
    for s in segments:
        lines.append(f'{s.sample:<20} {s.person:>6} {s.start:>6}-{s.end:<6} {s.start / fps:>7.2f}-{s.end / fps:<7.2f}'
                     f'  {s.name:<32} {s.score:6.2f}')
    return '\n'.join(lines)


def check_outputs(args):
    if not args.out:
        return
    csv_path = os.path.splitext(args.out)[0] + '.csv'
    for name, path in (('--out', args.out), ('the .csv beside --out', csv_path)):
        check_output_file(path, name)
    inputs = [('--input', args.input)] if os.path.exists(args.input) else []
    refuse_writing_inputs([('--out', args.out), ('the .csv beside --out', csv_path)],
                          inputs + [('--config', c) for c in args.config] + [('--weights', w) for w in args.weights])


def settings(args, streams):
    window = args.window or streams[0].input_frames
    return window, args.stride or max(1, window // 4)


def main(argv=None):
    args = parse(argv)
    check_outputs(args)
    streams = predict.load_streams(args.config, args.weights, args.trust_code)
    window, stride = settings(args, streams)
    scorer = Scorer(streams, args.input, args.alpha)
    if args.stream:
        import live
        return live.main(args, scorer, window, stride, streams[0].class_names)
    if not os.path.isfile(args.input):
        raise UsageError(f'--input {args.input}: file not found')
    all_people = read_people(args.input, streams[0], args.options, args.fps)
    if not any(people.presence().any() for people in all_people):
        raise UsageError(f'{args.input}: nobody in any frame')
    segments = timeline_of(all_people, scorer, window, stride, streams[0].class_names)
    fps = all_people[0].fps
    print(table(segments, fps))
    if scorer.far_outside:
        predict.warn_far_outside({args.input: [True] * scorer.far_outside})
    if args.out:
        csv_path = write_outputs(args.out, segments, fps, dict(input=args.input, config=args.config,
                                                                 weights=args.weights, window=window, stride=stride))
        print(f'wrote {args.out} and {csv_path}: {len(segments)} segments', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(run(main))
