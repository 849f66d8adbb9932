"""2-D keypoints from different camera framings: the feeder's per-person normalisation (`normalise: person`, the
default of config/custom/*_2d.yaml) against pyskl's image-size one, and predict's warning on inputs far outside what
a model was trained on."""
import os
import subprocess
import sys

import numpy as np
import pytest

import pose_data
from engine import main as train_main
from feeders import feeder_pose
from preprocess import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORT = ['--num-epoch', 16, '--step', 12, '--warm_up_epoch', 1, '--batch-size', 16, '--test-batch-size', 32,
         '--device', 'cpu', '--num-worker', 0]


def train(*argv):
    train_main(None, [str(a) for a in argv])


def test_person_normalisation_is_blind_to_where_and_how_large_people_are():
    rng = np.random.default_rng(0)
    keypoint = rng.normal(300, 40, (2, 10, 17, 2)).astype(np.float32)
    keypoint[1, 4:] = 0                                                     # the second person leaves
    normalised = feeder_pose.person_normalise(keypoint)
    moved = np.where(keypoint != 0, keypoint * 0.2 + np.float32(900), 0).astype(np.float32)
    np.testing.assert_allclose(feeder_pose.person_normalise(moved), normalised, atol=1e-4)
    assert not normalised[1, 4:].any()                                    # missing stays missing
    present = normalised[keypoint.any(axis=-1)]
    np.testing.assert_allclose(present.mean(axis=0), 0, atol=1e-5)


@pytest.fixture(scope='module')
def framings(tmp_path_factory):
    """Generated NW-UCLA motion seen as COCO-17 keypoints in two framings (tests/pose_data.py): close (640 x 480,
    the person 50% of the height) and far (1920 x 1080, 15% of the height, off centre)."""
    base = tmp_path_factory.mktemp('framings')
    synthetic.write_ucla(str(base / 'all_sqe'), num_classes=10, per_class=18)
    for framing in pose_data.FRAMINGS:
        pose_data.write_coco_from_ucla(str(base / 'all_sqe'), str(base / f'{framing}.pkl'), framing=framing)
    return base


def trained_on_close(base, normalise):
    """CTR-GCN trained on the close framing with `normalise` (a short schedule); its work dir."""
    work = base / normalise
    if not (work / 'best.pt').exists():
        feeder = f"'ann_file': '{base / 'close.pkl'}', 'num_person': 1, 'window_size': 32, 'normalise': '{normalise}'"
        train('--config', os.path.join(ROOT, 'config', 'custom', 'ctrgcn_joint_2d.yaml'), '--work-dir', work,
              '--train-feeder-args', f"{{{feeder}, 'split': 'train'}}",
              '--test-feeder-args', f"{{{feeder}, 'split': 'val'}}",
              '--model-args', "{'num_class': 10, 'num_person': 1}", '--seed', 1, *SHORT)
    return work


def top1_on(work, ann_file):
    """The test phase of the run's best weights on the val split of `ann_file`: its top-1 (the released _right.txt
    lists every sample, _wrong.txt the wrong ones)."""
    test = work / f'test_{os.path.basename(ann_file)}'
    train('--config', work / 'config.yaml', '--work-dir', test, '--phase', 'test', '--weights', work / 'best.pt',
          '--test-feeder-args', f"{{'ann_file': '{ann_file}'}}")
    every, wrong = (len((test / f'best_{kind}.txt').read_text().splitlines()) for kind in ('right', 'wrong'))
    return 1 - wrong / every


@pytest.mark.slow
def test_trained_on_one_framing_the_other_scores_the_same_only_with_person_normalisation(framings):
    """The same motion from a camera farther away: per person, the model's top-1 on it equals its top-1 on its own
    framing (the views differ by a scale and a shift, which the normalisation removes); by the image size, it falls
    to about chance (10 classes)."""
    person = trained_on_close(framings, 'person')
    same, other = top1_on(person, framings / 'close.pkl'), top1_on(person, framings / 'far.pkl')
    assert same > 0.2 and abs(other - same) < 0.04, (same, other)
    image = trained_on_close(framings, 'image')
    same, other = top1_on(image, framings / 'close.pkl'), top1_on(image, framings / 'far.pkl')
    assert same > 0.2 and other < same - 0.15, (same, other)


@pytest.mark.slow
def test_predict_warns_when_inputs_lie_far_outside_the_training_data(framings):
    image = trained_on_close(framings, 'image')

    def predict(ann_file):
        result = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'predict.py'), '--config',
                                 image / 'config.yaml', '--weights', image / 'best.pt', '--input', ann_file,
                                 '--top', '1'], capture_output=True, text=True,
                                timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert result.returncode == 0, result.stderr
        return [line for line in result.stderr.splitlines() if line.startswith('warning:') and 'far outside' in line]

    assert predict(framings / 'close.pkl') == []
    (warning,) = predict(framings / 'far.pkl')
    assert 'far.pkl' in warning and 'every sample' in warning
