"""People followed from frame to frame: each keeps one id while in view, and a few frames after it was last seen.

Per frame (`PoseTracker.__call__`):
1. every person seen in the previous frame is looked for where its landmarks say it moved (the region its landmark
   model gave for the next frame, as MediaPipe's own tracker does), so a person the detector misses (two bodies
   overlapping in a hug, a turned head) is still followed;
2. while fewer than `max_persons` people are followed, the detector looks for others, in the first frame, every
   `search_every` frames and right after someone was lost (the detector costs as much as the landmark model, and
   several times that in a wide frame); a detection centred on a region already looked at is that person;
3. two results that are one body (their keypoints' boxes overlap by more than DUPLICATE_IOU and their torsos lie
   close) keep the older track: a region that slid onto a neighbour does not make a person twice;
4. a newly found person takes the id of a recently lost track (lost for at most `max_missed` frames) whose last box
   overlaps its box by more than REFIND_IOU or whose torso was last seen within REFIND_DISTANCE body heights of
   its own, the nearest first; else a new id. (A person hidden behind another in a hug is lost for a second or two
   and found again a step away from where he was last seen, his box then overlapping his old one little.)
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from preprocess.blazepose import Landmarks, Region, iou

SAME_CENTRE = 0.1       # a detection centred this close to a followed person's region (x its size) is that person
DUPLICATE_IOU = 0.6     # two results overlapping this much, torsos close, are one body
DUPLICATE_TORSO = 0.1   # torsos this close (mean distance of shoulders and hips, x the body's height) are one body
REFIND_IOU = 0.3        # a new person overlapping a lost track's last box this much is that track's person,
REFIND_DISTANCE = 0.5   # or one whose torso is this close to the track's last (x the body's height)
TORSO = [11, 12, 23, 24]  # BlazePose's shoulders and hips


@dataclass
class Track:
    id: int
    region: Region                 # where to look in the next frame
    box: tuple                     # last keypoint box, pixels
    torso: np.ndarray              # last shoulders and hips, 4 x 2 pixels
    last_seen: int
    frames: int = 1


@dataclass
class _Found:
    landmarks: Landmarks
    region: Region
    box: tuple
    torso: np.ndarray
    track: Optional[Track] = None


def _keypoint_box(landmarks, width, height):
    points = landmarks.image[:, :2] * (width, height)
    return (*points.min(axis=0), *points.max(axis=0)), points[TORSO]


def _near(a, b):
    """Two regions centred on one body."""
    return np.hypot(a.cx - b.cx, a.cy - b.cy) < SAME_CENTRE * (a.size + b.size) / 2


def _same_body(a, b):
    """Two results of one body: boxes overlapping much, torsos lying on each other."""
    if iou(np.asarray(a.box), np.asarray([b.box]))[0] <= DUPLICATE_IOU:
        return False
    height = max(a.box[3] - a.box[1], b.box[3] - b.box[1], 1.0)
    return float(np.linalg.norm(a.torso - b.torso, axis=1).mean()) < DUPLICATE_TORSO * height


def _refind_distance(found, track):
    """How far a newly found person is from a lost track's last sight (torso distance over body height; 0 when
    their boxes overlap by more than REFIND_IOU), or None when too far to be that person."""
    if iou(np.asarray(found.box), np.asarray([track.box]))[0] > REFIND_IOU:
        return 0.0
    height = max(found.box[3] - found.box[1], track.box[3] - track.box[1], 1.0)
    distance = float(np.linalg.norm(found.torso - track.torso, axis=1).mean()) / height
    return distance if distance < REFIND_DISTANCE else None


class PoseTracker:
    """Call with each RGB frame in order; returns [(track id, Landmarks)] of the people found in it, ids from 0. A
    lost person keeps its id for `max_missed` frames (3 s at 30 frames/s: a hug hides one man that long).

    estimator: an object with detect(rgb) -> [Region] and landmarks(rgb, region) -> Person or None
    (preprocess.blazepose.BlazePose)."""

    def __init__(self, estimator, max_persons=4, max_missed=90, search_every=5):
        if max_persons < 1:
            raise ValueError(f'--max-persons {max_persons}: expected at least 1')
        self.estimator, self.max_persons, self.max_missed = estimator, max_persons, max_missed
        self.search_every = search_every
        self.tracks, self.frame, self.next_id, self.last_search = [], -1, 0, None

    def __call__(self, rgb):
        self.frame += 1
        height, width = rgb.shape[:2]
        followed = [t for t in self.tracks if t.last_seen == self.frame - 1]
        found = [f for f in (self._look(rgb, t.region, t, width, height) for t in followed) if f]
        if len(found) < self.max_persons and self._time_to_search(len(found) < len(followed)):
            self.last_search = self.frame
            looked = [t.region for t in followed]
            for region in self.estimator.detect(rgb):
                if any(_near(region, other) for other in looked):
                    continue
                looked.append(region)
                result = self._look(rgb, region, None, width, height)
                if result:
                    found.append(result)
        kept = self._without_duplicates(found)
        self._assign(kept)
        return [(f.track.id, f.landmarks) for f in sorted(kept, key=lambda f: f.track.id)]

    def _time_to_search(self, someone_lost):
        return self.last_search is None or someone_lost or self.frame - self.last_search >= self.search_every

    def _look(self, rgb, region, track, width, height):
        person = self.estimator.landmarks(rgb, region)
        if person is None:
            return None
        box, torso = _keypoint_box(person.landmarks, width, height)
        return _Found(person.landmarks, person.next_region, box, torso, track)

    @staticmethod
    def _without_duplicates(found):
        """Results of distinct bodies: followed people first (oldest track first), then new ones."""
        order = sorted(found, key=lambda f: (f.track is None, -(f.track.frames if f.track else 0)))
        kept = []
        for candidate in order:
            if not any(_same_body(candidate, other) for other in kept):
                kept.append(candidate)
        return kept

    def _assign(self, kept):
        new = [f for f in kept if f.track is None]
        lost = [t for t in self.tracks if self.frame - self.max_missed - 1 <= t.last_seen < self.frame - 1]
        pairs = [(_refind_distance(f, t), i, j) for i, f in enumerate(new) for j, t in enumerate(lost)]
        taken_new, taken_lost = set(), set()
        for distance, i, j in sorted(pair for pair in pairs if pair[0] is not None):
            if i not in taken_new and j not in taken_lost:
                new[i].track = lost[j]
                taken_new.add(i)
                taken_lost.add(j)
        active = sum(f.track is not None for f in kept)
        for result in new:
            if result.track is None and active < self.max_persons:
                result.track = Track(self.next_id, result.region, result.box, result.torso, self.frame, 0)
                self.tracks.append(result.track)
                self.next_id += 1
                active += 1
        kept[:] = [f for f in kept if f.track is not None]
        for result in kept:
            track = result.track
            track.region, track.box, track.torso = result.region, result.box, result.torso
            track.last_seen, track.frames = self.frame, track.frames + 1
