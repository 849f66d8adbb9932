"""Pose extraction from videos (preprocess/video.py, tools/extract_pose.py).

The mapping and the listing need nothing; the file handling needs OpenCV and runs with a fake estimator (a person in
every bright frame, nobody in dark ones); BlazePose itself runs on the real NTU clip (../shared, read in place) and
on generated videos, and is skipped where mediapipe is not installed (`make install-video`).
"""
import contextlib
import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from lstbase.errors import run
from preprocess import annotations, video
from shared_data import CLIP, needs_clip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import extract_pose  # noqa: E402

CLIP_FRAMES = 72
HAS_CV2 = importlib.util.find_spec('cv2') is not None
HAS_MEDIAPIPE = HAS_CV2 and importlib.util.find_spec('mediapipe') is not None
needs_cv2 = pytest.mark.skipif(not HAS_CV2, reason='OpenCV is not installed (make install-video)')
needs_blazepose = pytest.mark.skipif(not HAS_MEDIAPIPE, reason='mediapipe is not installed (make install-video)')


# ---------------------------------------------------------------------------------------------- helpers
def standing_person():
    """Hand-made landmarks of a person facing the camera: image (x, y fractions, z, visibility) and world metres
    (BlazePose's axes: x right in the image, y down, z away), the person's left side on the image's right."""
    image = np.zeros((33, 4), np.float32)
    image[:, 0] = np.linspace(0.2, 0.8, 33)
    image[:, 1] = np.linspace(0.1, 0.9, 33)
    image[:, 3] = np.linspace(0.0, 1.0, 33)
    world = np.zeros((33, 3), np.float32)
    for left, right, height in [(video.LEFT_SHOULDER, video.RIGHT_SHOULDER, -0.5), (video.LEFT_HIP, video.RIGHT_HIP,
                                0.0), (video.LEFT_EAR, video.RIGHT_EAR, -0.7), (video.MOUTH_LEFT, video.MOUTH_RIGHT,
                                -0.6)]:
        world[left], world[right] = (0.15, height, 0.0), (-0.15, height, 0.0)
    world[video.LEFT_WRIST] = (0.3, 0.0, -0.1)
    world[video.LEFT_PINKY] = (0.32, 0.08, -0.1)
    world[video.LEFT_INDEX] = (0.28, 0.1, -0.1)
    return video.Landmarks(image, world)


class FakeEstimator:
    """A person (id 0) in every bright frame, nobody in dark ones; counts its calls; can fail on a given call."""

    def __init__(self, fail_on_call=None):
        self.calls, self.fail_on_call = 0, fail_on_call

    def __call__(self, rgb):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise KeyboardInterrupt                     # as if the user stopped the run here
        return [(0, standing_person())] if rgb.mean() > 50 else []


@contextlib.contextmanager
def using(estimator, monkeypatch):
    """The tool, run in this process, with `estimator` in place of BlazePose."""
    with monkeypatch.context() as patch:
        patch.setattr(video, 'check_installed', lambda max_persons=2: None)
        patch.setattr(video, 'people_finder', lambda max_persons=2, threads=None: contextlib.nullcontext(estimator))
        yield


def write_video(path, frames=20, level=200, size=(64, 48)):
    """A flat-colour video of `frames` frames (bright: a person to the fake estimator; level 0: nobody)."""
    import cv2
    os.makedirs(os.path.dirname(path), exist_ok=True)
    codec = 'mp4v' if str(path).endswith('.mp4') else 'MJPG'
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), 10, size)
    for _ in range(frames):
        writer.write(np.full((size[1], size[0], 3), level, np.uint8))
    writer.release()
    return str(path)


def tool(*argv):
    """(exit status, stdout lines, stderr lines without progress bars) of the tool run in a subprocess."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'extract_pose.py'), *map(str, argv)],
                            capture_output=True, text=True, timeout=1800)
    lines = [line for line in re.split(r'[\r\n]', result.stderr) if line.strip() and '%|' not in line
             and line.strip() != '\x1b[A']
    return result.returncode, result.stdout.splitlines(), lines


def error_lines(text, path):
    return [line for line in re.split(r'[\r\n]', text) if line.startswith('error:') and str(path) in line]


# ---------------------------------------------------------------------------------------------- mapping
def test_coco_keypoints_are_the_coco_landmarks_in_pixels():
    person = standing_person()
    keypoint, score = video.coco_keypoints(person, height=480, width=640)
    chosen = person.image[video.BLAZEPOSE_TO_COCO]
    assert keypoint.shape == (17, 2) and score.shape == (17,) and keypoint.dtype == np.float32
    np.testing.assert_allclose(keypoint, chosen[:, :2] * [640, 480], rtol=1e-6)
    np.testing.assert_allclose(score, chosen[:, 3])
    np.testing.assert_allclose(keypoint[0], person.image[video.NOSE, :2] * [640, 480])
    np.testing.assert_allclose(keypoint[16], person.image[video.RIGHT_ANKLE, :2] * [640, 480])


def test_scores_are_clipped_to_0_1_and_nobody_gives_zeros():
    person = standing_person()
    person.image[:, 3] = 1.5
    assert video.coco_keypoints(person, 10, 10)[1].max() == 1.0
    keypoint, score = video.coco_keypoints(None, 10, 10)
    assert not keypoint.any() and not score.any() and keypoint.shape == (17, 2)
    assert video.ntu_joints(None).shape == (25, 3) and not video.ntu_joints(None).any()


def test_ntu_joints_made_up_and_turned_to_kinect_axes():
    person = standing_person()
    joints = video.ntu_joints(person)                       # row n - 1 is NTU joint n
    world = person.world * [-1, -1, 1]                      # Kinect: x to the camera's left, y up
    np.testing.assert_allclose(joints[0], (world[video.LEFT_HIP] + world[video.RIGHT_HIP]) / 2, atol=1e-6)
    np.testing.assert_allclose(joints[1], (joints[0] + joints[20]) / 2, atol=1e-6)
    np.testing.assert_allclose(joints[20], (world[video.LEFT_SHOULDER] + world[video.RIGHT_SHOULDER]) / 2)
    np.testing.assert_allclose(joints[7], world[[video.LEFT_WRIST, video.LEFT_PINKY, video.LEFT_INDEX]].mean(0))
    np.testing.assert_allclose(joints[5], world[video.LEFT_ELBOW])
    np.testing.assert_allclose(joints[21], world[video.LEFT_INDEX])
    assert joints[3, 1] > joints[2, 1] > joints[20, 1] > joints[1, 1] > joints[0, 1]     # head .. spine base, y up
    assert joints[4, 0] < 0 < joints[8, 0]      # facing the camera: the left shoulder on the camera's right
    assert np.prod(video.BLAZEPOSE_TO_KINECT_AXES) == 1         # a rotation: the body is not mirrored
    assert video.NTU_MADE_UP == {1: 'spine base', 2: 'spine middle', 3: 'neck', 4: 'head', 8: 'left hand',
                                 12: 'right hand', 21: 'spine shoulder'}


# ---------------------------------------------------------------------------------------------- listing
def touch(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, 'wb').close()
    return str(path)


def test_folders_are_walked_for_videos_of_any_case_once(tmp_path):
    clips = [touch(tmp_path / 'a' / 'x.MP4'), touch(tmp_path / 'a' / 'y.webm'), touch(tmp_path / 'b.mkv')]
    touch(tmp_path / 'a' / 'notes.txt')
    found = video.find_videos([str(tmp_path), clips[0]])
    assert sorted(found) == sorted(clips)
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ValueError, match='no video files'):
        video.find_videos([str(tmp_path / 'empty')])


def test_labels_and_splits_from_folders_with_repeated_stems(tmp_path):
    paths = [touch(tmp_path / split / name / f'{stem}.mp4') for split, name, stem in
             [('train', 'run', 'a'), ('train', 'jump', 'b'), ('val', 'jump', 'a'), ('val', 'run', 'c')]]
    videos, classes = video.plan(paths, labels_from_folders=True)
    assert classes == ['jump', 'run']
    assert [(v.frame_dir, v.label, v.split) for v in videos] == [
        ('train/run/a', 1, 'train'), ('b', 0, 'train'), ('val/jump/a', 0, 'val'), ('c', 1, 'val')]
    with pytest.raises(ValueError, match='already split'):
        video.plan(paths, labels_from_folders=True, val_fraction=0.5)
    with pytest.raises(ValueError, match='some not'):
        video.plan(paths + [touch(tmp_path / 'other' / 'run' / 'd.mp4')], labels_from_folders=True)
    with pytest.raises(ValueError, match='directly in a train/ folder'):
        video.plan([touch(tmp_path / 'train' / 'e.mp4')], labels_from_folders=True)


def test_val_fraction_splits_each_class_the_same_way_for_a_seed(tmp_path):
    paths = [touch(tmp_path / name / f'{name}{i}.avi') for name in ('jump', 'run') for i in range(10)]
    first, _ = video.plan(paths, labels_from_folders=True, val_fraction=0.3, seed=7)
    again, _ = video.plan(list(reversed(paths)), labels_from_folders=True, val_fraction=0.3, seed=7)
    val = {v.frame_dir for v in first if v.split == 'val'}
    assert val == {v.frame_dir for v in again if v.split == 'val'}
    assert sum(name.startswith('jump') for name in val) == sum(name.startswith('run') for name in val) == 3
    with pytest.raises(ValueError, match='no video in val'):
        video.plan(paths[:2], val_fraction=0.1)


def test_without_labels_every_label_is_0_and_there_is_no_split(tmp_path):
    videos, classes = video.plan([touch(tmp_path / 'jump' / 'a.mp4'), touch(tmp_path / 'run' / 'b.mp4')])
    assert classes == [] and [(v.label, v.split) for v in videos] == [(0, None), (0, None)]


# ---------------------------------------------------------------------------------------------- the tool
@needs_cv2
def test_tool_writes_labels_splits_and_label_map(tmp_path, monkeypatch, capsys):
    root = tmp_path / 'videos'
    for split, name, stem in [('train', 'run', 'a'), ('train', 'jump', 'b'), ('val', 'jump', 'a')]:
        write_video(root / split / name / f'{stem}.avi', frames=5)
    out = tmp_path / 'out' / 'ann.pkl'
    with using(FakeEstimator(), monkeypatch):
        assert extract_pose.main(['--input', str(root), '--out', str(out), '--labels-from-folders']) == 0
    items, split = annotations.load(out)
    assert split == {'train': ['b', 'train/run/a'], 'val': ['val/jump/a']}
    assert [(a['frame_dir'], a['label']) for a in items] == [('b', 0), ('train/run/a', 1), ('val/jump/a', 0)]
    assert (tmp_path / 'out' / 'ann_label_map.txt').read_text() == 'jump\nrun\n'
    assert items[0]['keypoint'].shape == (1, 5, 17, 2) and items[0]['img_shape'] == (48, 64)
    assert sorted(os.listdir(tmp_path / 'out')) == ['ann.pkl', 'ann_label_map.txt']       # the parts are gone
    assert 'wrote' in capsys.readouterr().out


@needs_cv2
def test_ntu_layout_gives_3d_joints_without_scores(tmp_path, monkeypatch):
    clip = write_video(tmp_path / 'clip.mp4', frames=6)
    with using(FakeEstimator(), monkeypatch):
        assert extract_pose.main(['--input', clip, '--out', str(tmp_path / 'ann.pkl'), '--layout', 'ntu',
                                  '--max-persons', '1']) == 0
    (item,), split = annotations.load(tmp_path / 'ann.pkl')
    assert split is None and item['keypoint'].shape == (1, 6, 25, 3) and 'keypoint_score' not in item
    np.testing.assert_allclose(item['keypoint'][0, 3], video.ntu_joints(standing_person()))


def projected_person(translation, width=640, height=480, fov=video.ASSUMED_FOV):
    """standing_person's world landmarks moved by `translation` (metres, BlazePose's axes) and seen through the
    pinhole camera camera_position assumes: Landmarks whose image landmarks are that view."""
    world = standing_person().world
    world[:, 2] = np.linspace(-0.1, 0.1, 33)                              # some depth, as bodies have
    focal = width / (2 * np.tan(np.radians(fov) / 2))
    placed = world + np.asarray(translation, np.float32)
    image = np.ones((33, 4), np.float32)
    image[:, 0] = (focal * placed[:, 0] / placed[:, 2] + width / 2) / width
    image[:, 1] = (focal * placed[:, 1] / placed[:, 2] + height / 2) / height
    return video.Landmarks(image, world)


def test_camera_position_recovers_where_a_person_stands():
    for translation in [(0.0, 0.0, 3.0), (-1.2, 0.4, 2.5), (0.8, -0.2, 5.0)]:
        found = video.camera_position(projected_person(translation), 480, 640)
        np.testing.assert_allclose(found, translation, atol=1e-3)


def test_several_people_in_3d_keep_their_distance_from_an_origin_as_ntus():
    """Two people 1.5 m apart: both at their places in Kinect's axes (x to the camera's left), the origin at the
    first person's spine middle in its first frame, a person's frames out of view still zeros."""
    series = video.PeopleSeries('ntu', place=True)
    on_the_left, on_the_right = projected_person((-0.75, 0.0, 3.0)), projected_person((0.75, 0.0, 3.0))
    series.add([(0, on_the_left), (1, on_the_right)], 480, 640)
    series.add([(1, on_the_right)], 480, 640)
    assert series.order() == [1, 0]                                       # the most present first
    skeleton = series.skeleton()
    assert skeleton.keypoint.shape == (2, 2, 25, 3) and skeleton.score is None
    right, left = skeleton.keypoint[:, 0]
    np.testing.assert_allclose(right[1], 0, atol=1e-5)                    # the origin
    np.testing.assert_allclose(left - right, [[1.5, 0, 0]] * 25, atol=1e-3)    # on the image's left: Kinect's +x
    assert skeleton.keypoint[0, 1].any() and not skeleton.keypoint[1, 1].any()


@needs_cv2
def test_an_interrupted_run_resumes_without_estimating_again(tmp_path, monkeypatch):
    clips = [write_video(tmp_path / 'in' / f'{name}.avi', frames=frames) for name, frames in
             [('a', 7), ('b', 5), ('c', 3)]]
    out = tmp_path / 'ann.pkl'
    with using(FakeEstimator(fail_on_call=9), monkeypatch), pytest.raises(KeyboardInterrupt):   # in b's 2nd frame
        extract_pose.main(['--input', str(tmp_path / 'in'), '--out', str(out)])
    assert not out.exists() and len(os.listdir(video.parts_folder(str(out)))) == 1
    counting = FakeEstimator()
    with using(counting, monkeypatch):
        assert extract_pose.main(['--input', str(tmp_path / 'in'), '--out', str(out)]) == 0
    assert counting.calls == 5 + 3                                  # a came from the parts
    items, _ = annotations.load(out)
    assert [a['total_frames'] for a in items] == [7, 5, 3] and not os.path.exists(video.parts_folder(str(out)))
    os.utime(clips[0], ns=(0, 0))                                   # a changed file is estimated again
    with using(counting, monkeypatch):
        extract_pose.main(['--input', str(tmp_path / 'in'), '--out', str(out)])
    assert counting.calls == 8 + 15


@needs_cv2
def test_bad_videos_are_one_line_each_and_the_others_go_on(tmp_path, monkeypatch, capfd):
    write_video(tmp_path / 'in' / 'good.avi')
    empty = write_video(tmp_path / 'in' / 'empty.avi', level=0)
    noise = tmp_path / 'in' / 'noise.mp4'
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    with using(FakeEstimator(), monkeypatch):
        assert extract_pose.main(['--input', str(tmp_path / 'in'), '--out', str(tmp_path / 'ann.pkl')]) == 1
    err = capfd.readouterr().err
    assert len(error_lines(err, empty)) == 1 and 'nobody found in any of its 20 frames' in err
    assert len(error_lines(err, noise)) == 1 and 'not a video OpenCV can decode' in err
    items, _ = annotations.load(tmp_path / 'ann.pkl')
    assert [a['frame_dir'] for a in items] == ['good']


def test_usage_errors_are_one_line_and_status_2(tmp_path, capsys):
    clip = touch(tmp_path / 'clip.mp4')
    os.symlink(clip, tmp_path / 'link.pkl')
    (tmp_path / 'folder.pkl').mkdir()
    for argv, expected in [(['--input', clip, '--out', clip], 'expected an annotation file name ending in .pkl'),
                           (['--input', clip, '--out', str(tmp_path / 'link.pkl')], 'would write onto a file it reads'),
                           (['--input', str(tmp_path / 'missing'), '--out', 'x.pkl'], 'no such file or folder'),
                           (['--input', clip, '--out', str(tmp_path / 'folder.pkl')], 'is a folder'),
                           (['--input', clip, '--out', 'x.pkl', '--val-fraction', '1.5'], 'between 0 and 1')]:
        with pytest.raises(SystemExit) as stop:
            run(extract_pose.main, argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and len(err) == 1 and err[0].startswith('error: ') and expected in err[0]


# ---------------------------------------------------------------------------------------------- BlazePose
@contextlib.contextmanager
def recorded(seen):
    """people_finder, recording what it finds in each frame into `seen`."""
    real = video.people_finder

    @contextlib.contextmanager
    def recording(max_persons=video.DEFAULT_MAX_PERSONS, threads=None):
        with real(max_persons, threads) as finder:
            def record(rgb):
                seen.append(finder(rgb))
                return seen[-1]
            yield record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(video, 'people_finder', recording)
        yield


@pytest.fixture(scope='module')
def real_clip(tmp_path_factory):
    """The NTU clip (two men hugging) through the tracker of two people once: (annotation file written by the
    library, each frame's [(person id, Landmarks)])."""
    out = str(tmp_path_factory.mktemp('clip') / 'ann.pkl')
    seen = []
    with recorded(seen):
        extraction = video.extract_all([video.Video(CLIP, 'ntu_sample')], out)
    video.write(out, extraction, [])
    return out, seen


@needs_blazepose
@needs_clip
def test_real_clip_two_people_each_in_most_frames_in_the_picture(real_clip):
    out, _ = real_clip
    (item,), split = annotations.load(out)
    keypoint, score = annotations.keypoints(item, out, num_node=17, dims=2)
    height, width = item['img_shape']
    assert (height, width) == (1080, 1920) and item['original_shape'] == (1080, 1920) and split is None
    assert item['total_frames'] == CLIP_FRAMES and keypoint.shape == (2, CLIP_FRAMES, 17, 2)
    assert score.shape == (2, CLIP_FRAMES, 17) and 0 <= score.min() and score.max() <= 1
    for person in range(2):
        with_person = score[person].sum(1) > 0
        assert with_person.sum() >= 0.8 * CLIP_FRAMES
        seen = keypoint[person][with_person]
        assert (seen[..., 0] >= 0).all() and (seen[..., 0] < width).all()
        assert (seen[..., 1] >= 0).all() and (seen[..., 1] < height).all()
        assert np.median(score[person][with_person]) > 0.5


@needs_blazepose
@needs_clip
def test_real_clip_people_keep_their_ids_through_the_hug(real_clip):
    """Each man keeps his id from the first frame to the last: the one on the left stays left of the other (their
    hip centres), though their bodies overlap from about frame 30 on."""
    _, seen = real_clip
    hips = [{person: landmarks.image[[video.LEFT_HIP, video.RIGHT_HIP], 0].mean() for person, landmarks in found}
            for found in seen]
    both = [frame for frame in hips if len(frame) == 2]
    assert len(both) >= 0.8 * CLIP_FRAMES and all(set(frame) == {0, 1} for frame in both)
    left = 0 if both[0][0] < both[0][1] else 1
    assert all(frame[left] < frame[1 - left] for frame in both)


@needs_blazepose
@needs_clip
def test_real_clip_in_ntu_layout_stands_upright_facing_the_camera(real_clip):
    _, seen = real_clip
    joints = np.stack([video.ntu_joints(landmarks) for found in seen for _, landmarks in found])
    head, spine_base = joints[:, 3], joints[:, 0]
    assert (head[:, 1] - spine_base[:, 1] > 0.3).mean() > 0.9          # y up, head half a metre above the hips
    assert (joints[:, 4, 0] < joints[:, 8, 0]).mean() > 0.9            # left shoulder on the camera's right


def clip_frames():
    import cv2
    return [cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) for frame in video.read_frames(CLIP)]


def write_frames(path, frames, fps=30):
    """RGB frames as a video (MJPG in .avi: every frame decodes as written, near enough)."""
    import cv2
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
    writer.release()
    return str(path)


@needs_blazepose
@needs_clip
def test_clip_beside_its_mirror_in_a_wider_frame_gives_one_track_per_person(tmp_path):
    """The clip and its mirror image side by side (3840 x 1080, four men the size of a tenth of the width): four
    tracks, each in at least 80% of the frames."""
    wide = write_frames(tmp_path / 'wide.avi', [np.concatenate([f, f[:, ::-1]], axis=1) for f in clip_frames()])
    skeleton = video.extract(wide, 'coco', max_persons=4)
    assert skeleton.keypoint.shape[:2] == (4, CLIP_FRAMES) and skeleton.shape == (1080, 3840)
    in_view = (skeleton.score.sum(axis=2) > 0).sum(axis=1)
    assert (in_view >= 0.8 * CLIP_FRAMES).all(), in_view
    hips = [np.median(skeleton.keypoint[m, :, 11:13, 0][skeleton.score[m, :, 11] > 0]) for m in range(4)]
    assert sum(x < 1920 for x in hips) == 2                                # two men in each half


@needs_blazepose
@needs_clip
def test_one_person_in_view_the_tracker_finds_what_mediapipes_own_does(tmp_path):
    """The man on the right alone (a crop of the first 30 frames, before the hug): --max-persons 1 is MediaPipe's own
    tracker, frame for frame; the tracker of several people finds the same person within a few pixels (it runs the
    same two models, without MediaPipe's smoothing)."""
    one = write_frames(tmp_path / 'one.avi', [f[:, 900:1540] for f in clip_frames()[:30]])
    legacy = video.extract(one, 'coco', max_persons=1)
    with video.blazepose() as own:
        import cv2
        expected = [video.coco_keypoints(own(cv2.cvtColor(f, cv2.COLOR_BGR2RGB)), 1080, 640)[0]
                    for f in video.read_frames(one)]
    np.testing.assert_array_equal(legacy.keypoint, np.stack(expected)[None])
    several = video.extract(one, 'coco', max_persons=2)
    assert several.keypoint.shape == (1, 30, 17, 2)
    distance = np.linalg.norm(several.keypoint[0] - legacy.keypoint[0], axis=-1)
    shoulders = np.linalg.norm(legacy.keypoint[0, :, 5] - legacy.keypoint[0, :, 6], axis=-1)
    assert np.median(distance) < 0.05 * np.median(shoulders) and np.percentile(distance, 90) < 0.15 * np.median(
        shoulders)


@needs_blazepose
def test_real_estimator_on_an_empty_video_and_random_bytes(tmp_path):
    empty = write_video(tmp_path / 'empty.avi', frames=20, level=120)
    noise = tmp_path / 'noise.mp4'
    noise.write_bytes(np.random.default_rng(1).bytes(5000))
    code, _, lines = tool('--input', empty, noise, '--out', tmp_path / 'ann.pkl')
    assert code == 1 and not (tmp_path / 'ann.pkl').exists()
    assert lines == [f'error: {empty}: nobody found in any of its 20 frames',
                     f'error: {noise}: not a video OpenCV can decode (damaged, or not a video file)',
                     'none of the 2 videos gave a skeleton; nothing written']


# ---------------------------------------------------------------------------------------------- a model on a video
@needs_blazepose
@needs_clip
def test_predict_and_visualize_take_a_video(tmp_path, capsys):
    """A COCO-17 model (seeded weights) on the real clip: predict gives one ranked result, visualize draws every
    frame of the video with the skeleton on it."""
    import json
    import yaml
    from PIL import Image
    import predict
    import visualize
    from tools_helpers import seeded_weights
    config = yaml.safe_load(open(os.path.join(ROOT, 'config', 'custom', 'ctrgcn_joint_2d.yaml')))
    config['model_args']['num_class'] = 3
    (tmp_path / 'c.yaml').write_text(yaml.safe_dump(config))
    weights = seeded_weights(str(tmp_path / 'c.yaml'), tmp_path / 'w.pt')
    assert predict.main(['--config', str(tmp_path / 'c.yaml'), '--weights', weights, '--input', CLIP,
                         '--format', 'json']) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 1 and records[0]['file'] == CLIP and len(records[0]['top']) == 3
    out = str(tmp_path / 'overlay.gif')
    assert visualize.visualize(CLIP, out, [str(tmp_path / 'c.yaml')], [weights]) == CLIP_FRAMES
    with Image.open(out) as gif:
        assert gif.n_frames == CLIP_FRAMES and gif.size[0] == 480


# ---------------------------------------------------------------------------------------------- tracking
class Scene:
    """A fake estimator over a scene of people (hip centre x, y in pixels per frame, None when hidden): detect finds
    the visible ones, landmarks the visible one nearest a region's centre (a standing figure 300 px tall)."""

    def __init__(self, positions):
        self.positions, self.frame = positions, 0                   # positions: frame -> [(x, y) or None]

    def visible(self):
        return [p for p in self.positions[self.frame] if p is not None]

    def detect(self, rgb):
        from preprocess.blazepose import Region
        return [Region(x, y, 400.0, 0.0) for x, y in self.visible()]

    def landmarks(self, rgb, region):
        from preprocess.blazepose import Person, Region
        near = [p for p in self.visible() if abs(p[0] - region.cx) < region.size / 4]
        if not near:
            return None
        x, y = min(near, key=lambda p: abs(p[0] - region.cx))
        image = np.zeros((33, 4), np.float32)
        image[:, 0] = (x + np.linspace(-50, 50, 33)) / 1000
        image[:, 1] = (y + np.linspace(-200, 100, 33)) / 1000
        image[:, 3] = 1.0
        return Person(video.Landmarks(image, np.zeros((33, 3), np.float32)), Region(x, y, 400.0, 0.0), 1.0)


def track_ids(positions, max_missed=90):
    from preprocess.tracking import PoseTracker
    scene = Scene(positions)
    tracker = PoseTracker(scene, max_persons=2, max_missed=max_missed, search_every=1)
    found = []
    for frame in range(len(positions)):
        scene.frame = frame
        found.append({person for person, _ in tracker(np.zeros((1000, 1000, 3), np.uint8))})
    return found


def test_a_person_hidden_for_a_while_and_found_a_step_away_keeps_the_id():
    """B hidden for 50 frames (behind A in a hug), found again 70 px from where he was lost (his box overlapping his
    old one by less than REFIND_IOU): still id 1. Hidden longer than max_missed: a new id."""
    hidden = [[(200, 500), (400, 500)]] * 10 + [[(200, 500), None]] * 50 + [[(200, 500), (470, 500)]] * 10
    assert track_ids(hidden)[-1] == {0, 1}
    assert track_ids(hidden, max_missed=20)[-1] == {0, 2}


# ---------------------------------------------------------------------------------------------- BlazePose's steps
def test_the_detectors_anchors_and_its_weighted_suppression():
    from preprocess import blazepose
    anchors = blazepose.ssd_anchors()
    assert anchors.shape == (2254, 2)                                   # the model's 2254 boxes
    np.testing.assert_allclose(anchors[:2], [[0.5 / 28, 0.5 / 28]] * 2)     # two anchors a cell, 28 x 28 first
    scores = np.array([0.6, 0.9, 0.8], np.float32)
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    keypoints = np.stack([np.full((4, 2), v, np.float32) for v in (0.0, 3.0, 7.0)])
    kept_scores, kept_boxes, kept_keypoints = blazepose.weighted_nms(scores, boxes, keypoints)
    np.testing.assert_allclose(kept_scores, [0.9, 0.8])                 # the best keeps its own score
    np.testing.assert_allclose(kept_boxes[0], (0.6 * boxes[0] + 0.9 * boxes[1]) / 1.5)
    np.testing.assert_allclose(kept_keypoints[0], np.full((4, 2), 0.9 * 3.0 / 1.5))
    assert blazepose._tile_starts(3840, 1080) == [0, 540, 1080, 1620, 2160, 2700, 2760]   # the last flush


def test_a_region_stands_upright_on_its_two_points_and_maps_back_to_the_frame():
    from preprocess.blazepose import Region
    upright = Region.from_points((500, 600), (500, 400))               # the size point straight above the hips
    assert upright.angle == pytest.approx(0) and upright.size == pytest.approx(2 * 200 * 1.25)
    np.testing.assert_allclose(upright.to_frame([(0.5, 0.5), (0.5, 0.0)]), [[500, 600], [500, 350]])
    lying = Region.from_points((500, 600), (700, 600))                  # the head to the right: turned a quarter
    assert lying.angle == pytest.approx(np.pi / 2)                       # clockwise on the screen (y down)
    np.testing.assert_allclose(lying.to_frame([(0.5, 0.0)]), [[750, 600]], atol=1e-6)   # the crop's top: the head


def test_landmarks_refined_on_the_heatmap_move_to_its_confident_cells():
    from preprocess.blazepose import refine_on_heatmap
    heatmap = np.full((64, 64, 2), -10.0, np.float32)
    heatmap[30, 40, 0] = 10.0                                          # landmark 0: one confident cell
    points = np.array([[41.5 / 64, 31.5 / 64], [0.5, 0.5]], np.float32)
    refined = refine_on_heatmap(points, heatmap)
    np.testing.assert_allclose(refined[0], [40 / 64, 30 / 64], atol=1e-3)   # MediaPipe's cell index, no half cell
    np.testing.assert_allclose(refined[1], points[1])                   # nothing confident there: unchanged
