"""tools/predict.py: raw files give the test phase's saved scores (NTU60, NTU120, NW-UCLA, ensembles); outputs;
errors."""
import csv
import glob
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

import ensemble
from shared_data import REAL_UCLA, needs_nw_ucla
from tools_helpers import (ROOT, ntu_config, ntu_dataset, run_engine, saved_test_scores, seeded_weights,
                           ucla_config)

import predict  # noqa: E402  (tools/ is on the path through tools_helpers)
import trained_model  # noqa: E402

pytestmark = pytest.mark.slow
# |predict - test phase| relative to the logits' scale (max(1, max |logit|)): float32 rounding differs between batch
# sizes (other kernels run), and seeded untrained models give logits of hundreds.
TOLERANCE = 1e-5
LEARNING_RATE = 0.005


@pytest.fixture(scope='module')
def ntu(tmp_path_factory):
    """Synthetic raw NTU60 files, preprocessed; an LST joint stream trained one epoch and a CTR-GCN bone-motion
    stream, each with its test phase's saved scores."""
    base = tmp_path_factory.mktemp('predict')
    raw, data = ntu_dataset(base)
    joint = ntu_config(base / 'joint.yaml', data, 'model.ctrgcn.Model_lst_4part',
                       dict(num_class=4, k=8, head=['all-MiniLM-L6-v2']), base_lr=LEARNING_RATE)
    run_engine('ntu', '--config', joint, '--work-dir', base / 'joint')
    joint_weights = glob.glob(str(base / 'joint' / 'runs-1-*.pt'))[0]
    motion = ntu_config(base / 'motion.yaml', data, 'model.ctrgcn.Model', dict(num_class=4), LEARNING_RATE, bone=True,
                        vel=True)
    run_engine('ntu', '--config', motion, '--work-dir', base / 'motion')
    motion_weights = glob.glob(str(base / 'motion' / 'runs-1-*.pt'))[0]
    streams = {}
    for name, config, weights in (('joint', joint, joint_weights), ('motion', motion, motion_weights)):
        work_dir = base / name
        streams[name] = dict(config=str(work_dir / 'config.yaml'), weights=weights,
                             scores=saved_test_scores('ntu', work_dir / 'config.yaml', work_dir, weights))
    return dict(base=base, raw=raw, streams=streams)


def run_json(capsys, *argv):
    capsys.readouterr()                                         # drop what the test phase printed
    code = predict.main([str(a) for a in argv] + ['--format', 'json'])
    return code, json.loads(capsys.readouterr().out)


def by_name(records):
    return {os.path.splitext(os.path.basename(r['file']))[0]: np.array(r['scores']) for r in records if 'scores' in r}


def max_difference(predicted, saved):
    """max |predicted - saved| over the samples of `saved`, relative to max(1, max |saved|)."""
    assert set(saved) <= set(predicted)
    scale = max(1.0, max(np.abs(s).max() for s in saved.values()))
    difference = max(np.abs(predicted[name] - scores).max() for name, scores in saved.items()) / scale
    print(f'max |predict - test phase| / scale = {difference:.3g} over {len(saved)} samples, logits up to '
          f'{max(np.abs(s).max() for s in saved.values()):.3g}')
    return difference


def test_raw_ntu_files_give_the_test_phase_scores(ntu, capsys):
    stream = ntu['streams']['joint']
    code, records = run_json(capsys, '--config', stream['config'], '--weights', stream['weights'],
                             '--input', ntu['raw'], '--top', 3)
    # every file but the one without a skeleton, which gets the preprocessing's error and exit status 1
    errors = [r for r in records if 'error' in r]
    assert code == 1 and len(errors) == 1 and 'no body in any of its 5 frames' in errors[0]['error']
    assert len(records) == len(os.listdir(ntu['raw']))
    assert max_difference(by_name(records), stream['scores']) < TOLERANCE
    assert all(len(r['top']) == 3 and r['true_label'] for r in records if 'top' in r)


def test_ensemble_of_two_streams_gives_the_fused_test_scores(ntu, capsys):
    joint, motion = ntu['streams']['joint'], ntu['streams']['motion']
    _, records = run_json(capsys, '--config', joint['config'], '--weights', joint['weights'], '--config',
                          motion['config'], '--weights', motion['weights'], '--alpha', 0.7, '--input', ntu['raw'])
    names = sorted(joint['scores'])
    fused = ensemble.fuse([np.stack([s['scores'][n] for n in names]) for s in (joint, motion)], 0.7)
    assert max_difference(by_name(records), dict(zip(names, fused))) < TOLERANCE
    # and the bone-motion stream alone differs from the joint stream (the modality was applied)
    assert max_difference(by_name(records), joint['scores']) > 1e-3


def test_npy_of_a_preprocessed_sample_equals_its_skeleton_file(ntu, tmp_path, capsys):
    stream = ntu['streams']['joint']
    skeleton = sorted(glob.glob(str(ntu['raw'] / '*.skeleton')))[0]
    np.save(tmp_path / 'sample.npy', trained_model.read_samples(skeleton, 'ntu60')[0].joints)
    _, records = run_json(capsys, '--config', stream['config'], '--weights', stream['weights'],
                          '--input', skeleton, tmp_path / 'sample.npy')
    assert np.array_equal(records[0]['scores'], records[1]['scores'])


def test_table_and_csv(ntu, capsys):
    stream = ntu['streams']['joint']
    files = [str(ntu['raw'] / f'{name}.skeleton') for name in sorted(stream['scores'])[:3]]
    args = ['--config', stream['config'], '--weights', stream['weights'], '--input', *files, '--top', '2']
    assert predict.main(args) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 * 3 and table[0].startswith(files[0]) and '(true: ' in table[0]
    assert table[1].lstrip().startswith('1. ') and table[1].endswith('%')
    assert predict.main(args + ['--format', 'csv']) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3 * 2 and [r['rank'] for r in rows[:2]] == ['1', '2']
    assert float(rows[0]['probability']) >= float(rows[1]['probability'])
    assert rows[0]['true_label'] in ('drink water', 'eat meal', 'brush teeth', 'brush hair')


def test_user_errors_are_one_line(ntu, tmp_path, capsys):
    stream = ntu['streams']['joint']
    with pytest.raises(trained_model.UsageError,
                       match=r"does not fit the config's Model_lst_4part: [1-9]\d* of its \d+ parameters are not in"):
        predict.main(['--config', stream['config'], '--weights', ntu['streams']['motion']['weights'],
                      '--input', str(ntu['raw'])])
    # a config names the feeder of the project only: importing another module would run its code
    config = yaml.safe_load(open(stream['config']))
    config['feeder'] = 'this.Feeder'
    (tmp_path / 'other_feeder.yaml').write_text(yaml.safe_dump(config))
    sys.modules.pop('this', None)
    with pytest.raises(trained_model.UsageError, match="'this.Feeder': only classes of the feeders/ package"):
        predict.main(['--config', str(tmp_path / 'other_feeder.yaml'), '--weights', stream['weights'], '--input', '.'])
    assert 'this' not in sys.modules
    # from the command line: one 'error:' line and status 2, no traceback
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'predict.py'), '--config',
                             str(tmp_path / 'none.yaml'), '--weights', stream['weights'], '--input', '.'],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 2 and result.stdout == ''
    assert result.stderr.startswith('error: --config: ') and 'none.yaml' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    (tmp_path / 'a01_s01_e00_v03.json').write_text('{"skeletons": [[[0, 0, 0]]]}')
    np.save(tmp_path / 'wrong.npy', np.ones((3, 10, 20, 1), np.float32))
    (tmp_path / 'notes.txt').write_text('x')
    inputs = [str(tmp_path / n) for n in ('a01_s01_e00_v03.json', 'wrong.npy', 'notes.txt', 'missing.skeleton')]
    code, records = run_json(capsys, '--config', stream['config'], '--weights', stream['weights'], '--input', *inputs)
    messages = [r['error'] for r in records]
    assert code == 1 and len(messages) == 4 and all('\n' not in m for m in messages)
    assert 'a01_s01_e00_v03.json' in messages[0] and 'expected T x 20 x 3' in messages[0]
    assert 'wrong.npy: wrong has 20 keypoints per person, but the model' in messages[1] and '(25)' in messages[1]
    assert 'unknown input type' in messages[2] and 'file not found' in messages[3]
    # weights that give NaN: each file is an error, not a prediction of class 0
    weights = torch.load(stream['weights'], weights_only=True)
    weights['fc.bias'][0] = float('nan')
    torch.save(weights, tmp_path / 'nan.pt')
    code, records = run_json(capsys, '--config', stream['config'], '--weights', tmp_path / 'nan.pt', '--input',
                             ntu['raw'])
    readable = [r for r in records if 'a missing skeleton' not in r['error']]      # the fixture holds one
    assert code == 1 and readable and all(r['error'].endswith('non-finite scores (NaN or Inf)') for r in readable)


@pytest.mark.parametrize('modality', ['joint', 'bone_motion'])
def test_synthetic_nw_ucla_files_give_the_test_phase_scores(tmp_path, capsys, modality):
    from preprocess import synthetic
    root = tmp_path / 'all_sqe'
    synthetic.write_ucla(str(root), num_classes=3, per_class=3)
    config = ucla_config(tmp_path / 'ucla.yaml', str(root), 'model.ctrgcn.Model_lst_4part_bone_ucla',
                         dict(num_class=10, head=['all-MiniLM-L6-v2']), modality)
    weights = seeded_weights(config, tmp_path / 'w.pt')
    saved = saved_test_scores('ucla', config, tmp_path / 'work', weights)
    _, records = run_json(capsys, '--config', config, '--weights', weights, '--input', root)
    assert len(records) == 9 and len(saved) == 3
    assert max_difference(by_name(records), saved) < TOLERANCE


def test_ntu120_copies_a_lone_actor_as_the_preprocessing_does(tmp_path, capsys):
    raw, data = ntu_dataset(tmp_path, 'ntu120', classes=3, per_class=4)
    config = ntu_config(tmp_path / 'c.yaml', data, 'model.ctrgcn.Model', dict(num_class=120))
    weights = seeded_weights(config, tmp_path / 'w.pt')
    saved = saved_test_scores('ntu', config, tmp_path / 'work', weights)
    _, records = run_json(capsys, '--config', config, '--weights', weights, '--input', raw)
    assert max_difference(by_name(records), saved) < TOLERANCE


@needs_nw_ucla
def test_real_nw_ucla_files_give_the_test_phase_scores(tmp_path, capsys):
    """The first 100 validation files of the real dataset (the feeder's debug subset)."""
    config = ucla_config(tmp_path / 'ucla.yaml', REAL_UCLA, 'model.ctrgcn.Model_lst_4part_ucla',
                         dict(num_class=10, head=['all-MiniLM-L6-v2'], k=6), debug=True)
    weights = seeded_weights(config, tmp_path / 'w.pt')
    saved = saved_test_scores('ucla', config, tmp_path / 'work', weights)
    files = [os.path.join(REAL_UCLA, f'{name}.json') for name in saved]
    _, records = run_json(capsys, '--config', config, '--weights', weights, '--input', *files)
    assert len(saved) == 100 and max_difference(by_name(records), saved) < TOLERANCE
