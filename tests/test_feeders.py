import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feeders import feeder_ntu, feeder_ucla, tools
from shared_data import REAL_UCLA, needs_nw_ucla
from specs import layouts


@pytest.fixture(scope='module')
def ntu_npz(tmp_path_factory):
    """Eight samples of 90 frames with zero-padded tails; samples 0, 3, 6 have one actor."""
    rng = np.random.default_rng(0)
    x = np.zeros((8, 90, 150), np.float32)
    lengths = [90, 70, 64, 40, 81, 33, 66, 75]
    for i, length in enumerate(lengths):
        x[i, :length] = rng.normal(size=(length, 150))
        if i % 3 == 0:
            x[i, :length, 75:] = 0
    y = np.eye(4)[[0, 1, 2, 3, 0, 1, 2, 3]]
    path = tmp_path_factory.mktemp('ntu') / 'toy.npz'
    names = np.array([f'S001C001P001R001A{i + 1:03d}' for i in range(8)])
    np.savez(path, x_train=x, y_train=y, x_test=x, y_test=y, sample_name_train=names, sample_name_test=names)
    return str(path), x, lengths


def as_ctvm(x):
    return x.reshape(len(x), x.shape[1], 2, 25, 3).transpose(0, 4, 1, 3, 2)


def test_crop_resize_equals_bilinear_interpolation():
    """The release resizes each crop with F.interpolate(bilinear, align_corners=False); ours is the same map."""
    rng = np.random.default_rng(1)
    data = torch.from_numpy(rng.normal(size=(5, 3, 50, 25, 2)).astype(np.float32))
    begin, length = torch.tensor([0, 3, 10, 0, 7]), torch.tensor([50, 20, 40, 9, 43])
    for window in (64, 16, 43):
        out = tools.crop_resize(data, begin, length, window)
        for n in range(5):
            crop = data[n, :, begin[n]:begin[n] + length[n]].permute(0, 2, 3, 1).reshape(1, 1, 150, -1)
            expected = F.interpolate(crop, size=(150, window), mode='bilinear', align_corners=False)
            expected = expected.view(3, 25, 2, window).permute(0, 3, 1, 2)
            torch.testing.assert_close(out[n], expected, rtol=1e-5, atol=1e-5)


def test_test_split_is_a_centre_crop(ntu_npz):
    path, x, lengths = ntu_npz
    feeder = feeder_ntu.Feeder(path, split='test', window_size=64, p_interval=[0.95])
    assert feeder.sample_name[1] == 'S001C001P001R001A002' and feeder.label.tolist() == [0, 1, 2, 3] * 2
    raw = torch.from_numpy(as_ctvm(x))
    for i, length in enumerate(lengths):
        bias = int(0.05 * length / 2)
        expected = tools.crop_resize(raw[i:i + 1], torch.tensor([bias]), torch.tensor([length - 2 * bias]), 64)
        data, label, index = feeder[i]
        assert data.shape == (3, 64, 25, 2) and data.dtype == np.float32 and index == i
        np.testing.assert_allclose(data, expected[0].numpy(), rtol=1e-6)


def test_identity_window_returns_the_sequence(ntu_npz):
    path, x, _ = ntu_npz
    feeder = feeder_ntu.Feeder(path, split='test', window_size=90, p_interval=[1.0])
    np.testing.assert_allclose(feeder[0][0], as_ctvm(x)[0], rtol=1e-6, atol=1e-6)


def test_train_crops_rotations_and_modalities(ntu_npz):
    path, x, lengths = ntu_npz
    torch.manual_seed(0)
    valid = torch.tensor(lengths)
    for _ in range(20):
        begin, length = tools.crop_windows(valid, [0.5, 1])
        assert (length >= torch.minimum(valid, torch.tensor(64))).all() and (length <= valid).all()
        assert (begin >= 0).all() and (begin + length <= valid).all()
    # rotation keeps every joint's distance to the origin
    feeder = feeder_ntu.Feeder(path, split='train', window_size=32, p_interval=[1.0], random_rot=True)
    plain = feeder_ntu.Feeder(path, split='train', window_size=32, p_interval=[1.0])
    np.testing.assert_allclose(np.linalg.norm(feeder[4][0], axis=0), np.linalg.norm(plain[4][0], axis=0), rtol=1e-4)
    assert not np.allclose(feeder[4][0], plain[4][0])
    # bone = joint minus partner; vel = frame differences with a zero last frame (bone first, then vel)
    both = feeder_ntu.Feeder(path, split='train', window_size=32, p_interval=[1.0], bone=True, vel=True)[4][0]
    joints = plain[4][0]
    bone = joints.copy()
    for v, u in layouts.NAMED['ntu'].bone_pairs:
        bone[:, :, v] = joints[:, :, v] - joints[:, :, u]
    expected = np.zeros_like(bone)
    expected[:, :-1] = bone[:, 1:] - bone[:, :-1]
    np.testing.assert_allclose(both, expected, rtol=1e-5, atol=1e-5)


def test_batch_augmentation_matches_the_per_sample_path(ntu_npz):
    path, _, _ = ntu_npz
    args = dict(split='train', window_size=48, p_interval=[0.9], bone=True)
    per_sample = feeder_ntu.Feeder(path, **args)
    batched = feeder_ntu.Feeder(path, batch_augment=True, **args)
    assert batched[0][0].shape == (3, 90, 25, 2)                      # raw samples, transformed per batch
    batch = torch.from_numpy(np.stack([batched[i][0] for i in range(8)]))
    out = batched.batch_transform(batch)
    expected = np.stack([per_sample[i][0] for i in range(8)])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_mmap_copy_is_used(ntu_npz, tmp_path):
    path, x, _ = ntu_npz
    stem = tmp_path / 'toy'
    np.savez(f'{stem}.npz', x_test=x, y_test=np.eye(4)[[0] * 8])
    np.save(f'{stem}_x_test.npy', x * 2)                              # marks which file was read
    np.save(f'{stem}_y_test.npy', np.eye(4)[[1] * 8])
    mapped = feeder_ntu.Feeder(f'{stem}.npz', split='test', window_size=90, p_interval=[1.0], use_mmap=True)
    assert isinstance(mapped.data.base, np.memmap) or isinstance(mapped.data, np.memmap)
    assert mapped.label.tolist() == [1] * 8 and mapped.sample_name[0] == 'test_0'
    np.testing.assert_allclose(mapped[0][0], 2 * as_ctvm(x)[0], rtol=1e-6, atol=1e-6)


def test_ntu_errors(ntu_npz, tmp_path):
    path, _, _ = ntu_npz
    with pytest.raises(FileNotFoundError, match='missing.npz not found.*preprocessing'):
        feeder_ntu.Feeder(str(tmp_path / 'missing.npz'), split='test', window_size=64)
    with pytest.raises(ValueError, match="split='val'"):
        feeder_ntu.Feeder(path, split='val', window_size=64)
    bad = tmp_path / 'bad.npz'
    np.savez(bad, x_test=np.zeros((2, 10, 75), np.float32), y_test=np.eye(2))
    with pytest.raises(ValueError, match=r'shape \(2, 10, 75\), expected N x T x 150'):
        feeder_ntu.Feeder(str(bad), split='test', window_size=64)


def test_top_k(ntu_npz):
    feeder = feeder_ntu.Feeder(ntu_npz[0], split='test', window_size=64, p_interval=[0.95])
    score = np.zeros((8, 4))
    score[np.arange(8), feeder.label] = 1
    score[0] = [0, 1, 0.5, 0]                                          # sample 0 (label 0) wrong at top-1 and top-2
    assert feeder.top_k(score, 1) == 7 / 8 and feeder.top_k(score, 4) == 1.0


def write_ucla(folder, stems, length=30):
    rng = np.random.default_rng(0)
    for stem in stems:
        with open(folder / f'{stem}.json', 'w') as f:
            json.dump({'skeletons': rng.normal(size=(length, 20, 3)).tolist()}, f)


def test_ucla_splits_labels_and_val_frames(tmp_path):
    write_ucla(tmp_path, ['a01_s01_e00_v01', 'a12_s02_e01_v02', 'a08_s03_e00_v03', 'a11_s01_e02_v03'])
    train = feeder_ucla.Feeder('joint', 'train', root=str(tmp_path), repeat=3)
    val = feeder_ucla.Feeder('joint', 'val', root=str(tmp_path))
    assert train.sample_name == ['a01_s01_e00_v01', 'a12_s02_e01_v02'] and train.label == [0, 9] and len(train) == 6
    assert val.sample_name == ['a08_s03_e00_v03', 'a11_s01_e02_v03'] and val.label == [6, 8]
    data, label, _ = val[0]
    assert data.shape == (3, 52, 20, 1) and label == 6
    seq = val.data[0] - val.data[0][0, 1]
    seq = (seq - seq.min((0, 1))) / (seq.max((0, 1)) - seq.min((0, 1))) * 2 - 1
    frames = np.linspace(0, 29, 52).astype(int)
    np.testing.assert_allclose(data[:, :, :, 0], seq[frames].transpose(2, 0, 1), rtol=1e-6)
    sample = train[1][0]
    assert sample.min() == pytest.approx(-1, abs=1e-6) or sample.max() == pytest.approx(1, abs=1e-6)
    assert -1 - 1e-6 <= sample.min() and sample.max() <= 1 + 1e-6
    motion = feeder_ucla.Feeder('bone_motion', 'val', root=str(tmp_path))[0][0]
    bone = feeder_ucla.Feeder('bone', 'val', root=str(tmp_path))[0][0]
    np.testing.assert_allclose(motion[:, :-1], bone[:, 1:] - bone[:, :-1], rtol=1e-5, atol=1e-6)
    assert not motion[:, -1].any() and not bone[:, :, 2].any()         # the spine is its own partner


def test_ucla_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="NW-UCLA folder .*nowhere"):
        feeder_ucla.Feeder('joint', 'val', root=str(tmp_path / 'nowhere'))
    write_ucla(tmp_path, ['walking_01'])
    with pytest.raises(ValueError, match="'walking_01' is not of the form aXX_sYY_eZZ_vWW"):
        feeder_ucla.Feeder('joint', 'val', root=str(tmp_path))
    os.remove(tmp_path / 'walking_01.json')
    with open(tmp_path / 'a01_s01_e01_v03.json', 'w') as f:
        json.dump({'skeletons': [[[0, 0, 0]] * 18]}, f)
    with pytest.raises(ValueError, match=r'a01_s01_e01_v03.json: "skeletons" has shape \(1, 18, 3\)'):
        feeder_ucla.Feeder('joint', 'val', root=str(tmp_path))


@needs_nw_ucla
def test_real_ucla_split_sizes():
    train = feeder_ucla.Feeder('joint', 'train', root=REAL_UCLA, repeat=5)
    val = feeder_ucla.Feeder('bone_motion', 'val', root=REAL_UCLA)
    assert (len(train.data), len(train), len(val)) == (1020, 5100, 464)
    assert np.bincount(val.label).tolist() == np.bincount(val.label, minlength=10).tolist() and len(set(val.label)) == 10
    assert val[0][0].shape == (3, 52, 20, 1)
