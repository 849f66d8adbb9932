"""tools/timeline.py --stream: the action timeline of frames as they come, in bounded memory.

Sources (--input): a camera index (`0`), a URL OpenCV opens (rtsp://, http://), or a video file read at its own frame
rate as if it were live. Only the newest frame is taken: when estimating people falls behind the stream, the frames
in between are skipped (counted, and said in each line), so the delay behind the stream stays that of one frame's
work instead of growing. A camera or URL is read on a thread of its own (its driver would otherwise hand out stale
frames); a file is read on demand, the frames due by then decoded and all but the last skipped.

People are tracked as in tools/extract_pose.py; the last --window frames of the stream are kept (nothing older), and
every --stride frames each subject (tools/timeline.py's `subjects`) in view in at least half of the processed
frames of the window is decided: one line per window, as it is decided, with its delay behind the stream (the
time from the arrival of the window's last frame to its decision). The timeline (tools/segments.py: a frame is
settled once no later window holds it) is written at the end of the stream or on Ctrl-C.
"""
import collections
import os
import sys
import threading
import time

import numpy as np

import segments as timeline_segments
import timeline
from trained_model import UsageError

from preprocess import video


class PacedFile:
    """A video file read as a live stream at its own frame rate: next() gives the newest frame due by now (decoding
    the ones before it, skipped). `clock`: a function -> seconds (time.monotonic; tests give a virtual one)."""

    def __init__(self, path, clock=time.monotonic, sleep=time.sleep):
        cv2 = video.import_cv2()
        try:
            self.capture = video.open_video(path)
        except video.VideoError as exc:
            raise UsageError(str(exc)) from None
        rate = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = rate if rate and np.isfinite(rate) and rate > 0 else timeline.SKELETON_FPS
        self.expected = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.clock, self.sleep, self.start = clock, sleep, None
        self.read = self.skipped = 0
        self.stopped_early = None

    def next(self):
        """(frame index, time it arrived, BGR frame), or None at the end of the stream."""
        now = self.clock()
        if self.start is None:
            self.start = now
        due = int((now - self.start) * self.fps)
        if due < self.read:                                    # ahead of the stream: wait for the next frame
            self.sleep(self.start + self.read / self.fps - now)
            due = self.read
        while self.read < due:                                  # behind: the frames in between are skipped
            if not self.capture.grab():
                return self._end()
            self.read += 1
            self.skipped += 1
        ok, frame = self.capture.read()
        if not ok:
            return self._end()
        self.read += 1
        return self.read - 1, self.start + (self.read - 1) / self.fps, frame

    def _end(self):
        if self.expected > 0 and self.read < self.expected - 1:
            self.stopped_early = f'it stopped after {self.read} of the {self.expected} frames its header announces'
        return None

    def close(self):
        self.capture.release()


class LiveCapture:
    """A camera or URL read on a thread of its own; next() waits for a frame newer than the last one given."""

    def __init__(self, source, what):
        cv2 = video.import_cv2()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)    # its warnings on a missing camera: ours
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            raise UsageError(f'--input {what}: cannot be opened (no such camera, or busy; or a URL OpenCV cannot '
                             f'read)')
        rate = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = rate if rate and np.isfinite(rate) and 0 < rate < 1000 else timeline.SKELETON_FPS
        self.read = self.skipped = self.given = 0
        self.clock = time.monotonic
        self.stopped_early, self.newest, self.ended = None, None, False
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read_all, daemon=True)
        self.thread.start()

    def _read_all(self):
        while not self.ended:
            ok, frame = self.capture.read()
            with self.changed:
                if not ok:
                    if not self.ended:                               # not closed by us
                        self.stopped_early = f'the stream ended after {self.read} frames'
                    self.ended = True
                else:
                    if self.newest is not None and self.newest[0] >= self.given:
                        self.skipped += 1                           # never given: overwritten by a newer one
                    self.newest = (self.read, time.monotonic(), frame)
                    self.read += 1
                self.changed.notify_all()

    def next(self):
        with self.changed:
            self.changed.wait_for(lambda: self.ended or (self.newest and self.newest[0] >= self.given))
            if self.newest is None or self.newest[0] < self.given:
                return None
            self.given = self.newest[0] + 1
            return self.newest

    def close(self):
        with self.changed:
            self.ended = True
        self.capture.release()


def open_source(spec):
    if spec.isdigit():
        return LiveCapture(int(spec), spec)
    if os.path.exists(spec):
        return PacedFile(spec)
    if '://' in spec:
        return LiveCapture(spec, spec)
    raise UsageError(f'--input {spec}: expected a camera index, a URL or a video file')


class RecentPeople:
    """The people found in the processed frames among the stream's last `window` frames."""

    def __init__(self, layout, window):
        self.layout, self.window = layout, window
        self.frames = collections.deque()                       # (frame index, [(person id, keypoint, score)])
        self.shape = None

    def add(self, index, found, height, width):
        people = [(person, *video.frame_keypoints(landmarks, self.layout, height, width)) for person, landmarks in found]
        self.frames.append((index, people))
        self.shape = (height, width)
        while self.frames[0][0] <= index - self.window:
            self.frames.popleft()

    def people(self, name, fps):
        """timeline.People of the kept frames (their ids in `ids`, in slot order)."""
        ids = sorted({person for _, people in self.frames for person, _, _ in people})
        joints, dims = video.LAYOUTS[self.layout]
        keypoint = np.zeros((len(ids), len(self.frames), joints, dims), np.float32)
        score = np.zeros(keypoint.shape[:3], np.float32) if self.layout == 'coco' else None
        for t, (_, people) in enumerate(self.frames):
            for person, point, confidence in people:
                keypoint[ids.index(person), t] = point
                if score is not None:
                    score[ids.index(person), t] = confidence
        shape = self.shape if self.layout == 'coco' else None
        return timeline.People(name, keypoint, score, shape, fps), ids


def decide(recent, scorer, name, fps):
    """[(person name, class probabilities)] of the subjects in view in at least half the kept frames."""
    people, ids = recent.people(name, fps)
    presence = people.presence()
    chosen = [(person, slots) for person, slots in timeline.subjects(presence, scorer.num_person)
              if presence[list(slots)].any(axis=0).mean() >= 0.5]
    if not chosen:
        return []
    decided = scorer([people.window(slots, 0, presence.shape[1]) for _, slots in chosen])
    return [('+'.join(str(ids[s]) for s in slots), row) for (_, slots), row in zip(chosen, decided)]


def run_stream(source, people_finder, scorer, window, stride, names, layout, name, log=print):
    """Read `source` to its end (or Ctrl-C); returns (segments, statistics)."""
    import cv2
    recent, line = RecentPeople(layout, window), timeline_segments.Timeline(names, min_frames=window // 2)
    due, delays, processed, interrupted = window - 1, [], 0, False
    try:
        while True:
            frame = source.next()
            if frame is None:
                break
            index, arrived, bgr = frame
            recent.add(index, people_finder(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)), *bgr.shape[:2])
            processed += 1
            if index < due:
                continue
            due = index + stride
            start = max(0, index + 1 - window)
            for person, probabilities in decide(recent, scorer, name, source.fps):
                line.add((name, person), start, index + 1, probabilities)
                delays.append(source.clock() - arrived)
                label = int(probabilities.argmax())
                log(f'{(index + 1) / source.fps:8.2f} s  person {person:<5} {names[label]:<32} '
                    f'{probabilities[label]:5.2f}  (frames {start}-{index + 1}, {delays[-1]:.2f} s behind, '
                    f'{source.skipped} skipped so far)')
    except KeyboardInterrupt:
        interrupted = True
    finally:
        source.close()
    return line.close(), dict(read=source.read, processed=processed, skipped=source.skipped, delays=delays,
                              interrupted=interrupted, stopped_early=source.stopped_early)


def warm_up(scorer, joints, window):
    """One window of made-up keypoints through the networks: their first call costs seconds (memory, kernels), which
    the stream's first decision would otherwise pay for in skipped frames."""
    rng = np.random.default_rng(0)
    keypoint = rng.random((1, window, joints, 2 if scorer.streams[0].video_layout == 'coco' else 3), np.float32)
    scorer([dict(frame_dir='warm-up', total_frames=window, keypoint=keypoint, img_shape=(1, 1), original_shape=(1, 1),
                 keypoint_score=np.ones(keypoint.shape[:3], np.float32))])


def main(args, scorer, window, stride, names):
    """The --stream mode of tools/timeline.py."""
    stream = scorer.streams[0]
    video.check_installed(args.options.max_persons)
    source = open_source(args.input)
    name = os.path.splitext(os.path.basename(args.input))[0] if os.path.exists(args.input) else args.input
    print(f'reading {args.input} at {source.fps:g} frames/s: a decision every {stride} frames over the last {window} '
          f'(Ctrl-C ends it)', file=sys.stderr)
    warm_up(scorer, stream.layout.num_node, window)
    with video.people_finder(args.options.max_persons) as finder:
        found, stats = run_stream(source, finder, scorer, window, stride, names, stream.video_layout, name)
    return report(args, found, stats, source.fps, window, stride)


def report(args, found, stats, fps, window, stride):
    delays = stats['delays']
    summary = (f'{stats["read"]} frames, {stats["processed"]} estimated, {stats["skipped"]} skipped; '
               f'{len(delays)} windows decided')
    if delays:
        summary += f', {np.median(delays):.2f} s behind the stream (median; at most {max(delays):.2f} s)'
    print(summary, file=sys.stderr)
    if args.out:
        csv_path = timeline.write_outputs(args.out, found, fps, dict(input=args.input, config=args.config,
                                                                    weights=args.weights, window=window,
                                                                    stride=stride, stream=True))
        print(f'wrote {args.out} and {csv_path}: {len(found)} segments', file=sys.stderr)
    if stats['stopped_early'] and not stats['interrupted']:
        print(f'warning: --input {args.input}: {stats["stopped_early"]}; the timeline holds what was decided before',
              file=sys.stderr)
        return 1
    if not delays:
        print(f'error: --input {args.input}: nobody in view long enough to decide a window in {stats["read"]} frames',
              file=sys.stderr)
        return 1
    return 0
