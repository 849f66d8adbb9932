"""An action timeline: windows over each person's frames, one label per window, runs of one label merged.

Used by tools/timeline.py for files and live streams alike. A window of W frames is decided as a whole, but labels
only the frames around its centre: its stride S of them (the first window of a run also labels the frames before
its centre, the last one those after), so consecutive windows label consecutive frames and a change of action
shows within about one stride of where it happened. Consecutive labelled frames of one label form a segment, whose
score is the mean probability of that label over the windows that labelled it.
"""
import csv
import json
from dataclasses import dataclass


def window_starts(length, window, stride):
    """Where the windows over `length` frames start: every `stride` frames, and a last one flush with the end so that
    no frame is left out; one window of all the frames when there are fewer than `window`."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


@dataclass
class Segment:
    sample: str             # the video or sample the frames are of
    person: str             # the person (its id) or people ("0+1") the windows were of
    start: int              # first frame
    end: int                # the frame after the last
    label: int
    name: str
    total: float = 0.0      # the label's probabilities summed over the windows that labelled the segment
    windows: int = 0

    def take(self, probability):
        self.total += probability
        self.windows += 1

    @property
    def score(self):
        return self.total / self.windows

    def record(self, fps):
        """The segment as a dict, times in seconds at `fps` frames a second."""
        return dict(sample=self.sample, person=self.person, start_frame=self.start, end_frame=self.end,
                    start_s=round(self.start / fps, 3), end_s=round(self.end / fps, 3), label=self.label,
                    name=self.name, score=round(self.score, 4))


class Timeline:
    """Decided windows in, segments out. add() each subject's windows in order of their start; a subject is a
    (sample, person) pair."""

    def __init__(self, stride, names):
        self.stride, self.names = stride, names
        self.segments = []
        self._last = {}        # subject -> (its last segment, the end of its last window)

    def add(self, subject, start, end, label, probability):
        """One window [start, end) decided as `label` with `probability`; returns the segment it extended or began.
        After a gap (windows between not decided), the previous run reaches to the end of its last window and this
        window begins anew."""
        last, last_end = self._last.get(subject, (None, None))
        follows = last is not None and last.end >= start
        if last is not None and not follows:                  # after a gap: the last run reaches its window's end
            last.end = max(last.end, min(last_end, start))
            follows = last.end >= start
        begin = last.end if follows else start
        finish = max(begin, min(end, (start + end) // 2 + (self.stride + 1) // 2))
        if follows and last.label == label:
            last.end = finish
            segment = last
        else:
            segment = Segment(*subject, begin, finish, label, self.names[label])
            self.segments.append(segment)
        segment.take(probability)
        self._last[subject] = (segment, end)
        return segment

    def close(self):
        """The segments, each subject's last one reaching to the end of its last window."""
        for segment, end in self._last.values():
            segment.end = max(segment.end, end)
        self._last = {}
        return sorted((s for s in self.segments if s.end > s.start), key=lambda s: (s.sample, s.start, s.person))


def write_json(path_or_file, segments, fps, **about):
    record = dict(about, fps=fps, segments=[s.record(fps) for s in segments])
    json.dump(record, path_or_file, indent=1)
    path_or_file.write('\n')


CSV_COLUMNS = ['sample', 'person', 'start_frame', 'end_frame', 'start_s', 'end_s', 'label', 'name', 'score']


def write_csv(file, segments, fps):
    writer = csv.DictWriter(file, CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for segment in segments:
        writer.writerow(segment.record(fps))
