import os
import subprocess
import sys

import numpy as np
import pytest

from preprocess import ntu, synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pose(shift=0.0, wide=False, jitter=0.0, seed=0):
    joints = synthetic.POSE.copy()
    if wide:
        joints = joints[:, [1, 0, 2]]                             # lying: x-spread > y-spread
    joints[:, 0] += shift
    return joints + np.random.default_rng(seed).normal(scale=jitter, size=joints.shape)


def write(path, frames):
    path.write_text(synthetic.skeleton_text(frames))
    return str(path)


def moving(frames, amplitude, shift=0.0, wide=False, seed=0):
    t = np.linspace(0, 6, frames)
    return [pose(shift, wide, seed=seed) + amplitude * np.sin(t[f]) for f in range(frames)]


def test_parse_bodies_intervals_and_dropped_frames(tmp_path):
    a, b = moving(20, 0.1), moving(12, 0.3, shift=1)
    frames = [[(1, a[f])] for f in range(5)] + [[]] + [[(1, a[f]), (2, b[f - 5])] for f in range(5, 17)]
    seq = ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A050.skeleton', frames))
    assert seq.num_frames == 17 and seq.dropped_frames == [5]
    assert list(seq.bodies) == ['1', '2'] and seq.bodies['1'].length == 17 and seq.bodies['2'].start == 5
    np.testing.assert_allclose(seq.bodies['2'].joints[0], b[0], atol=1e-6)
    assert seq.bodies['1'].motion == pytest.approx(np.var(seq.bodies['1'].joints.reshape(-1, 3), axis=0).sum())


def test_a_body_that_reappears_keeps_a_contiguous_interval(tmp_path):
    """The reference counts a body's frames from its first one: after a gap its joints shift earlier."""
    a, b = moving(30, 0.1), moving(30, 0.3, shift=1)
    frames = [[(1, a[f]), (2, b[f])] if f < 10 or f >= 15 else [(1, a[f])] for f in range(30)]
    seq = ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A050.skeleton', frames))
    body = seq.bodies['2']
    assert (body.start, body.length, body.end) == (0, 25, 24)
    joints = ntu.denoise(seq)
    busier = joints[:, :75].reshape(-1, 25, 3)                      # body 2 moves more: actor 1
    np.testing.assert_allclose(busier[10], b[15], atol=1e-6)       # frame 15's joints land at frame 10
    assert not busier[25:].any()


def test_length_filter_and_single_body(tmp_path):
    a = moving(40, 0.2)
    frames = [[(1, a[f])] + ([(7, pose(2.0, jitter=0.2))] if 3 <= f < 14 else []) for f in range(40)]
    seq = ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A001.skeleton', frames))
    joints = ntu.denoise(seq)                                    # the 11-frame body is dropped
    assert joints.shape == (40, 75)
    np.testing.assert_allclose(joints.reshape(40, 25, 3), np.array(a), atol=1e-6)


def test_spread_filter_drops_a_mostly_wide_body(tmp_path):
    a, wide = moving(40, 0.2), moving(40, 0.5, wide=True)
    frames = [[(1, a[f]), (2, wide[f])] for f in range(40)]
    joints = ntu.denoise(ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A010.skeleton', frames)))
    assert joints.shape == (40, 75)                              # the wide body is gone despite more motion


def test_spread_filter_lowers_motion_when_few_frames_are_wide(tmp_path):
    """A body wide in a few frames stays, with its motion measured on its valid frames only."""
    calm, busy = moving(40, 0.05), moving(40, 0.4, shift=1)
    busy = [pose(1, wide=True) * 3 if f < 5 else busy[f] for f in range(40)]   # 5 wide frames: ratio 0.125
    frames = [[(1, calm[f]), (2, busy[f])] for f in range(40)]
    seq = ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A055.skeleton', frames))
    before = seq.bodies['2'].motion
    bodies = ntu.denoise_bodies(seq.bodies)
    valid = seq.bodies['2'].joints[5:]
    assert bodies[0] is seq.bodies['2'] and before > seq.bodies['2'].motion
    assert seq.bodies['2'].motion == pytest.approx(np.var(valid.reshape(-1, 3), axis=0).sum(), rel=1e-6)


def test_actor_assignment_by_overlap_and_missing_frames(tmp_path):
    """Actor 1 has most motion; a body after actor 1 ends joins actor 1; overlapping ones go to actor 2."""
    main, late, partner = moving(25, 0.5), moving(15, 0.2, shift=2), moving(40, 0.1, shift=1)
    frames = []
    for f in range(40):
        bodies = [(1, main[f])] if f < 25 else [(3, late[f - 25])]
        if f >= 20:
            bodies.append((2, partner[f - 20]))
        frames.append(bodies)
    joints = ntu.denoise(ntu.parse_skeleton(write(tmp_path / 'S001C001P001R001A058.skeleton', frames)))
    assert joints.shape == (40, 150)
    actor1, actor2 = joints[:, :75].reshape(-1, 25, 3), joints[:, 75:].reshape(-1, 25, 3)
    np.testing.assert_allclose(actor1[30], late[5], atol=1e-6)   # no overlap with actor 1 -> actor 1's row
    np.testing.assert_allclose(actor2[20], partner[0], atol=1e-6)
    assert not actor2[:20].any()


def test_translation_keeps_missing_frames_zero():
    joints = np.zeros((4, 150), np.float32)
    joints[1:, :75] = np.tile(np.arange(75, dtype=np.float32), (3, 1))
    joints[:, 75:] = 1
    out = ntu.translate(joints)
    origin = joints[1, 3:6]
    assert not out[0, :75].any()                                 # actor 1 missing there: still zero
    np.testing.assert_allclose(out[1, 3:6], 0)
    np.testing.assert_allclose(out[0, 75:78], 1 - origin)


def run_pipeline(tmp_path, dataset, formats=('npz',), **kw):
    raw = tmp_path / 'raw'
    names = synthetic.write_ntu(str(raw), ntu120=dataset == 'ntu120', **kw)
    ntu.parse_all([str(raw)], str(tmp_path), dataset, workers=2)
    ntu.denoise_all(str(tmp_path), workers=1)
    ntu.write_splits(str(tmp_path), formats)
    return sorted(names)


def test_pipeline_splits_order_labels_and_formats(tmp_path):
    names = run_pipeline(tmp_path, 'ntu60', formats=('npz', 'npy'), num_classes=4, per_class=15, empty_files=2,
                         two_person_classes=1)
    log = (tmp_path / 'raw_data' / 'skipped_files.log').read_text()
    assert log.count('no body in any of its 5 frames') == 2
    for stem, key, train_ids in (('NTU60_CS', 'performer', ntu.CS60_TRAIN), ('NTU60_CV', 'camera', [2, 3])):
        data = np.load(tmp_path / f'{stem}.npz')
        split_names = list(data['sample_name_train']) + list(data['sample_name_test'])
        assert sorted(split_names) == names
        train = [ntu.parse_name(n) for n in data['sample_name_train']]
        assert all(t[key] in train_ids for t in train)
        # grouped by split id in the listed order, then by name
        ranks = [(train_ids.index(t[key]), n) for t, n in zip(train, data['sample_name_train'])]
        assert ranks == sorted(ranks)
        labels = [ntu.parse_name(n)['action'] - 1 for n in data['sample_name_test']]
        assert data['y_test'].shape[1] == 60 and data['y_test'].argmax(1).tolist() == labels
        assert data['x_train'].dtype == np.float32 and data['x_train'].shape[2] == 150
        mapped = np.load(tmp_path / f'{stem}_x_test.npy', mmap_mode='r')
        np.testing.assert_array_equal(mapped, data['x_test'])
    # one-person samples of NTU60 are padded with zeros
    x = np.load(tmp_path / 'NTU60_CS.npz')['x_train']
    assert any(not sample[:, 75:].any() for sample in x)


def test_ntu120_copies_a_lone_actor(tmp_path):
    run_pipeline(tmp_path, 'ntu120', num_classes=3, per_class=6, two_person_classes=0)
    data = np.load(tmp_path / 'NTU120_CSub.npz')
    x = data['x_train']
    assert data['y_train'].shape[1] == 120
    np.testing.assert_array_equal(x[:, :, :75], x[:, :, 75:])
    setups = [ntu.parse_name(n)['setup'] for n in np.load(tmp_path / 'NTU120_CSet.npz')['sample_name_train']]
    assert all(s % 2 == 0 for s in setups)


def test_bad_files_are_named_skipped_or_fatal(tmp_path):
    raw = tmp_path / 'raw'
    raw.mkdir()
    good = synthetic.skeleton_text([[(1, pose())]] * 20)
    (raw / 'S001C001P001R001A001.skeleton').write_text(good)
    (raw / 'S001C001P001R001A002.skeleton').write_text(good[:len(good) // 2])                     # truncated
    (raw / 'S001C001P001R001A003.skeleton').write_text(good.replace('\n25\n', '\n24\n', 1))      # joint count
    lines = good.split('\n')
    lines[5] = 'nan-ish x y'
    (raw / 'S001C001P001R001A004.skeleton').write_text('\n'.join(lines))                         # non-numeric
    (raw / 'walking.skeleton').write_text(good)                                                  # bad name
    count, errors = ntu.parse_all([str(raw)], str(tmp_path), 'ntu60', workers=1)
    text = '\n'.join(errors)
    assert count == 1
    assert 'A002.skeleton: truncated at line' in text
    assert 'A003.skeleton, line 4: 24 joints, expected 25' in text
    assert "A004.skeleton, line 6: expected joint values" in text
    assert 'raw/walking.skeleton: file name is not of the form' in text
    with pytest.raises(ntu.SkeletonFileError):
        ntu.parse_all([str(raw)], str(tmp_path / 'strict'), 'ntu60', workers=1, strict=True)
    with pytest.raises(FileNotFoundError, match='raw skeleton folder'):
        ntu.parse_all([str(tmp_path / 'nowhere')], str(tmp_path), 'ntu60')


def test_original_scripts_run_from_their_folder(tmp_path):
    """`cd data/ntu && python get_raw_skes_data.py ...` with the documented options."""
    raw = tmp_path / 'raw'
    synthetic.write_ntu(str(raw), num_classes=2, per_class=8)
    out = tmp_path / 'out'
    for script, extra in (('get_raw_skes_data.py', ['--raw-dir', str(raw)]), ('get_raw_denoised_data.py', []),
                          ('seq_transformation.py', [])):
        result = subprocess.run([sys.executable, script, '--out-dir', str(out)] + extra,
                                cwd=os.path.join(ROOT, 'data', 'ntu'), capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (out / 'NTU60_CS.npz').exists() and (out / 'NTU60_CV.npz').exists()
    result = subprocess.run([sys.executable, 'seq_transformation.py', '--out-dir', str(tmp_path / 'empty')],
                            cwd=os.path.join(ROOT, 'data', 'ntu'), capture_output=True, text=True)
    assert result.returncode == 2 and 'run step 2 (get_raw_denoised_data.py) first' in result.stderr


def test_synthetic_ucla_files_load_in_the_feeder(tmp_path):
    from feeders.feeder_ucla import Feeder
    synthetic.write_ucla(str(tmp_path), num_classes=3, per_class=12)
    train, val = Feeder('joint', 'train', root=str(tmp_path)), Feeder('joint', 'val', root=str(tmp_path))
    assert len(train) == 24 and len(val) == 12 and set(val.label) == {0, 1, 2}
