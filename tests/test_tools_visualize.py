"""tools/visualize.py: GIF frame counts, PNG strips, the title's labels and prediction, errors."""
import glob
import os
import shutil

import pytest
from PIL import Image

from preprocess import synthetic
from shared_data import REAL_UCLA, needs_nw_ucla
from tools_helpers import ntu_config, seeded_weights

import trained_model  # noqa: E402  (tools/ is on the path through tools_helpers)
import visualize  # noqa: E402


@pytest.fixture(scope='module')
def skeleton(tmp_path_factory):
    """A synthetic two-person NTU file."""
    raw = tmp_path_factory.mktemp('raw')
    synthetic.write_ntu(str(raw), num_classes=2, per_class=1, two_person_classes=1)
    return sorted(glob.glob(str(raw / '*A002.skeleton')))[0]


def test_gif_has_one_frame_per_drawn_frame(skeleton, tmp_path):
    frames = trained_model.read_samples(skeleton)[0].joints.shape[1]
    out = str(tmp_path / 'x.gif')
    assert visualize.main(['--input', skeleton, '--out', out, '--step', '3']) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == len(range(0, frames, 3))
        assert gif.size[0] > 100 and gif.size[1] > 100


def test_png_strip_and_title_with_prediction(skeleton, tmp_path):
    config = ntu_config(tmp_path / 'c.yaml', 'unused.npz', 'model.ctrgcn.Model_lst_4part',
                        dict(num_class=4, k=8, head=['all-MiniLM-L6-v2']))
    weights = seeded_weights(config, tmp_path / 'w.pt')
    widths = {}
    for panels in (5, 2):
        out = str(tmp_path / f'{panels}.png')
        assert visualize.visualize(skeleton, out, [config], [weights], panels=panels) == panels
        with Image.open(out) as png:
            widths[panels] = png.size[0]
    assert widths[5] / widths[2] == pytest.approx(5 / 2, rel=0.02)           # panels side by side
    sample = trained_model.read_samples(skeleton)[0]
    title = visualize.title_of(sample, [(0, 'drink water', 0.5), (1, 'eat meal', 0.3), (2, 'brush teeth', 0.2)],
                               ['drink water', 'eat meal', 'brush teeth'])
    assert title.splitlines() == [sample.name, 'true: eat meal', 'predicted: drink water 50%, eat meal 30%, '
                                                                 'brush teeth 20%']


def test_shown_frames_skip_padding():
    import numpy as np
    joints = np.zeros((3, 10, 25, 2))
    joints[:, :6, :, 0] = 1
    assert visualize.shown_frames(joints, 2).tolist() == [0, 2, 4]


@needs_nw_ucla
def test_real_nw_ucla_file(tmp_path):
    path = os.path.join(REAL_UCLA, 'a01_s01_e00_v03.json')
    out = str(tmp_path / 'u.gif')
    assert visualize.main(['--input', path, '--out', out]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == trained_model.read_samples(path)[0].joints.shape[1]


def test_errors(skeleton, tmp_path):
    with pytest.raises(SystemExit):
        visualize.main(['--input', skeleton, '--out', str(tmp_path / 'x.jpg')])          # argparse: the suffixes
    with pytest.raises(trained_model.UsageError, match='file not found'):
        visualize.main(['--input', str(tmp_path / 'none.skeleton'), '--out', str(tmp_path / 'x.gif')])
    if shutil.which('ffmpeg') is None:
        with pytest.raises(trained_model.UsageError, match='writing .mp4 needs ffmpeg'):
            visualize.main(['--input', skeleton, '--out', str(tmp_path / 'x.mp4')])
    assert not list(tmp_path.iterdir())                                   # nothing half-written
