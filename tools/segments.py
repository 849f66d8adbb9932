"""An action timeline: windows over each person's frames, class probabilities per window, segments of one label.

Each frame takes the weighted mean class probabilities of the windows that hold it, each window weighted by its top
probability squared, and its label is the most probable class; consecutive frames of one label form a run. A window
that straddles two actions is a sample the model never saw in training: its label is often a third class, and it is
usually less sure of it than of a window inside one action, hence the weights. Runs of a third class that remain are
short, so a run shorter than `min_frames` (default half a window) is given to its neighbours: to the one of the same
label on both sides, else split between them at its middle (the first and last runs of a stretch go to their only
neighbour). Measured on real NW-UCLA sequences of three classes joined end to end (docs/results.md, 100 rows), this
puts both segment boundaries within one stride of the joins in 65 rows and within half a window in 89, against 63
and 86 for the plain mean of the windows on the same rows (66 and 94 against 64 and 92 on the rows the plain mean's
test drew; 115 and 164 against 105 and 160 on 200 other rows), where labelling each window's centre alone does half
as well. Moving each boundary to the cut that best separates its two segments' classes did not help (the same rates
on 100 rows, fewer within a stride on 200): the offsets left are the model's.

A segment's score is the mean, over its frames, of its label's (weighted mean) probability. A window is added once
all windows that start before it are (the order a stream gives them in); frames no later window can reach are settled
as it comes, so a live stream keeps at most a window of frames per person.
"""
import csv
import json
from dataclasses import dataclass

import numpy as np


def window_starts(length, window, stride):
    """Where the windows over `length` frames start: every `stride` frames, and a last one flush with the end so that
    no frame is left out; one window of all the frames when there are fewer than `window`."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] + window < length:
        starts.append(length - window)
    return starts


def window_weight(probabilities):
    """How much a window counts in the frames it holds: its top probability, squared. A window across two actions
    is one the model never saw in training and is usually less sure of; weighted so, the windows wholly inside one
    action decide the frames near a boundary (the module's docstring has the measured gain)."""
    return float(probabilities.max()) ** 2


@dataclass
class Segment:
    sample: str             # the video or sample the frames are of
    person: str             # the person (its id) or people ("0+1") the windows were of
    start: int              # first frame
    end: int                # the frame after the last
    label: int
    name: str
    score: float            # the label's mean probability over the segment's frames

    def record(self, fps):
        """The segment as a dict, times in seconds at `fps` frames a second."""
        return dict(sample=self.sample, person=self.person, start_frame=self.start, end_frame=self.end,
                    start_s=round(self.start / fps, 3), end_s=round(self.end / fps, 3), label=self.label,
                    name=self.name, score=round(self.score, 4))


class _Run:
    """Consecutive frames of one label: where, and the sum of their class probabilities."""

    def __init__(self, start, end, label, total):
        self.start, self.end, self.label, self.total = start, end, label, total

    def confidence(self):
        """The mean probability of its label over its frames."""
        return float(self.total[self.label]) / (self.end - self.start)

    def take(self, other):
        self.start, self.end = min(self.start, other.start), max(self.end, other.end)
        self.total = self.total + other.total


class _Subject:
    """One subject's frames not yet settled (from `first` on: weighted sums of probabilities, sums of the weights)
    and its runs."""

    def __init__(self, first, classes):
        self.first, self.sums, self.weights, self.runs = first, np.zeros((0, classes)), np.zeros(0), []

    def settle(self, until=None):
        """Frames before `until` (all when None) get their labels and join the runs (frames no window held break
        them)."""
        held = self.first + len(self.weights)
        count = len(self.weights) if until is None else max(0, min(until, held) - self.first)
        for offset in range(count):
            if self.weights[offset]:
                mean = self.sums[offset] / self.weights[offset]
                frame, label = self.first + offset, int(mean.argmax())
                last = self.runs[-1] if self.runs else None
                if last and last.end == frame and last.label == label:
                    last.end, last.total = frame + 1, last.total + mean
                else:
                    self.runs.append(_Run(frame, frame + 1, label, mean))
        self.sums, self.weights, self.first = self.sums[count:], self.weights[count:], self.first + count
        if until is not None and not len(self.weights):
            self.first = max(self.first, until)

    def add(self, start, end, probabilities, weight):
        self.settle(start)
        if start < self.first:                         # an earlier window than the settled frames: only its new part
            start = self.first
        grow = end - (self.first + len(self.weights))
        if grow > 0:
            self.sums = np.concatenate([self.sums, np.zeros((grow, self.sums.shape[1]))])
            self.weights = np.concatenate([self.weights, np.zeros(grow)])
        self.sums[start - self.first:end - self.first] += weight * probabilities
        self.weights[start - self.first:end - self.first] += weight


def absorb_short(runs, min_frames):
    """Runs of fewer than `min_frames` frames given to their neighbours (see the module's docstring): the shortest
    first, of equally short ones the least confident."""
    runs = list(runs)
    while True:
        short = [i for i, run in enumerate(runs) if run.end - run.start < min_frames
                 and (i > 0 and runs[i - 1].end == run.start or i + 1 < len(runs) and runs[i + 1].start == run.end)]
        if not short:
            return runs
        i = min(short, key=lambda k: (runs[k].end - runs[k].start, runs[k].confidence()))
        run = runs[i]
        before = runs[i - 1] if i > 0 and runs[i - 1].end == run.start else None
        after = runs[i + 1] if i + 1 < len(runs) and runs[i + 1].start == run.end else None
        if before and after and before.label == after.label:
            before.take(run)
            before.take(after)
            del runs[i:i + 2]
        elif before and after:
            middle = (run.start + run.end) // 2
            share = (middle - run.start) / max(1, run.end - run.start)
            before.end, before.total = middle, before.total + run.total * share
            after.start, after.total = middle, after.total + run.total * (1 - share)
            del runs[i]
        else:
            (before or after).take(run)
            del runs[i]


class Timeline:
    """Decided windows in, segments out. add() each subject's windows in order of their start; a subject is a
    (sample, person) pair. `min_frames`: runs shorter than this go to their neighbours."""

    def __init__(self, names, min_frames):
        self.names, self.min_frames = names, min_frames
        self._subjects = {}

    def add(self, subject, start, end, probabilities):
        """One window [start, end) and its class probabilities."""
        state = self._subjects.get(subject)
        if state is None:
            state = self._subjects[subject] = _Subject(start, len(self.names))
        probabilities = np.asarray(probabilities, np.float64)
        state.add(start, end, probabilities, window_weight(probabilities))

    def close(self):
        """The segments of every subject, by sample, start and person."""
        found = []
        for (sample, person), state in self._subjects.items():
            state.settle()
            for run in absorb_short(state.runs, self.min_frames):
                found.append(Segment(sample, person, run.start, run.end, run.label, self.names[run.label],
                                     run.confidence()))
        self._subjects = {}
        return sorted(found, key=lambda s: (s.sample, s.start, s.person))


def write_json(file, segments, fps, **about):
    record = dict(about, fps=fps, segments=[s.record(fps) for s in segments])
    json.dump(record, file, indent=1)
    file.write('\n')


CSV_COLUMNS = ['sample', 'person', 'start_frame', 'end_frame', 'start_s', 'end_s', 'label', 'name', 'score']


def write_csv(file, segments, fps):
    writer = csv.DictWriter(file, CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    for segment in segments:
        writer.writerow(segment.record(fps))
