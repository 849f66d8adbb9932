"""A careless user's mistakes: each bad input ends in one clear line naming the thing (exit status 2, no traceback),
or is skipped and logged, or warns; a run never goes on to produce numbers, and no input file changes.

Every case runs the real command (in process, through the same `errors.run` the command line uses) on small
generated data. The shared workspace is hashed before and after each case: cases copy what they modify.
"""
import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

import ensemble
import tiny_ntu
from bad_inputs import (ROOT, Evil, command, config, copy_run, digest, fails, last_error_line, make_workspace, train,
                        weights_of)
from lstbase import errors
from lstbase.files import atomic_write
from preprocess import cli as preprocess_cli
from preprocess import ntu

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    base = make_workspace(tmp_path_factory.mktemp('bad_inputs'))
    train('ntu', '--config', config(base, base / 'configs', 'model.ctrgcn.Model_lst_4part_bone', 1, name='bone'),
          '--work-dir', base / 'bone')
    return base


# ------------------------------------------------------------------------------------------------ cases
def case_test_phase_weights_without_pt(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    weights = run / 'w.ckpt'
    shutil.copy(weights_of(run), weights)
    before = digest(run)
    train('ntu', '--config', run / 'config.yaml', '--work-dir', run, '--phase', 'test', '--weights', weights,
          '--save-score', 'True')
    after = digest(run)
    for name in ('w.ckpt', 'config.yaml', 'checkpoint.pt'):
        assert before[name] == after[name], name                    # weights and the training config untouched
    assert (run / 'w_wrong.txt').exists() and (run / 'w_right.txt').exists() and (run / 'config_test.yaml').exists()
    assert 'S001C001P' in (run / 'w_right.txt').read_text()         # sample names in the rows


def case_test_phase_would_overwrite_its_config(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    shutil.copy(run / 'config.yaml', run / 'config_test.yaml')
    fails(capsys, train, 'ntu', '--config', run / 'config_test.yaml', '--work-dir', run, '--phase', 'test',
          '--weights', weights_of(run), match=['--config', 'would write onto a file it reads'])


def case_resume_with_other_data(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    other = tmp / 'other.npz'
    tiny_ntu.write_npz(str(other), train=20, test=8, seed=3)
    before = digest(run)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, data=other), '--work-dir', run,
          match=['belongs to another experiment', 'train_samples: 16 in the checkpoint, 20 now', '--resume no'])
    assert digest(run) == before                                      # config.yaml, scores: nothing rewritten


def case_resume_with_another_lr(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, base_lr=0.1), '--work-dir', run,
          match=['base_lr: 0.05 in the checkpoint, 0.1 now'])


def case_resume_from_another_folder_brings_the_best_weights(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    best = json.loads((run / 'metrics.json').read_text())['best_weights']
    train('ntu', '--config', config(ws, tmp, num_epoch=2), '--work-dir', tmp / 'longer', '--resume',
          run / 'checkpoint.pt')
    assert (tmp / 'longer' / best).read_bytes() == (run / best).read_bytes()
    assert f"Copied the best epoch's weights {best}" in (tmp / 'longer' / 'log.txt').read_text()
    assert (tmp / 'longer' / 'best.pt').exists() and (tmp / 'longer' / 'epoch1_test_score.pkl').exists()


def case_work_dir_in_use_by_another_run(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    with errors.locked(str(run), 'work dir'):                          # as a first run, still training, does
        before = digest(run)
        fails(capsys, train, 'ntu', '--config', run / 'config.yaml', '--work-dir', run,
              match=['is in use by another training run', str(run)])
        assert digest(run) == before


def case_failed_write_leaves_no_temporary_file(ws, tmp, capsys):
    def boom(f):
        f.write(b'half')
        raise OSError(28, 'No space left on device')
    with pytest.raises(OSError, match=r'scores.pkl: cannot be written \(No space left on device\)'):
        atomic_write(str(tmp / 'out' / 'scores.pkl'), boom)
    assert not (tmp / 'out').exists()                                # nor the folder made for it


def case_outputs_follow_the_umask(ws, tmp, capsys):
    old = os.umask(0o022)
    try:
        train('ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run')
    finally:
        os.umask(old)
    for name in ('best.pt', 'checkpoint.pt', 'epoch1_test_score.pkl', 'best_test_each_class_acc.csv',
                 'training_curves.png', 'config.yaml'):
        assert (tmp / 'run' / name).stat().st_mode & 0o777 == 0o644, name


def case_nonfinite_loss(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, base_lr=1e12, batch_size=4), '--work-dir', tmp / 'run',
          match=['the loss is', 'epoch 1', 'lower base_lr'])
    assert not list((tmp / 'run').glob('*.pt'))                        # nothing saved


def case_nan_in_training_arrays(ws, tmp, capsys):
    data = np.load(ws / 'data' / 'NTU60_CS.npz')
    arrays = {k: data[k] for k in data.files}
    arrays['x_train'][3, 5, 7] = np.nan
    np.savez(tmp / 'nan.npz', **arrays)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, data=tmp / 'nan.npz'), '--work-dir', tmp / 'run',
          match=['nan.npz', '1 train samples hold NaN or Inf'])


def case_nan_in_raw_joint_line(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    victim = sorted(raw.iterdir())[0]
    lines = victim.read_text().split('\n')
    lines[5] = 'nan 0.1 0.2 ' + ' '.join(lines[5].split()[3:])
    victim.write_text('\n'.join(lines))
    count, errors_ = ntu.parse_all([str(raw)], str(tmp / 'out'), 'ntu60', workers=1)
    assert count == 7 and any(f'{victim}, line 6: joint values are not finite' in e for e in errors_)
    assert f'{victim}, line 6' in (tmp / 'out' / 'raw_data' / 'skipped_files.log').read_text()


def case_ensemble_nan_scores(ws, tmp, capsys):
    bone = copy_run(ws, tmp, 'bone')
    scores = pickle.loads((bone / 'epoch1_test_score.pkl').read_bytes())
    first = next(iter(scores))
    scores[first] = scores[first] * np.nan
    (bone / 'epoch1_test_score.pkl').write_bytes(pickle.dumps(scores))
    (tmp / 'd' / 'ntu').mkdir(parents=True)
    shutil.copy(ws / 'data' / 'NTU60_CS.npz', tmp / 'd' / 'ntu' / 'NTU60_CS.npz')
    fails(capsys, ensemble.main, ['--datasets', 'ntu/xsub', '--joint-dir', str(ws / 'joint'), '--bone-dir', str(bone),
                                  '--data-dir', str(tmp / 'd')],
          match=['epoch1_test_score.pkl: 1 of 8 samples have non-finite scores'])


def case_batch_larger_than_training_set(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, batch_size=64), '--work-dir', tmp / 'new' / 'run',
          match=['batch_size 64 is larger than the training set (16 samples)'])
    assert not (tmp / 'new').exists()                             # nothing written, not even the work dir


def case_label_outside_the_classes(ws, tmp, capsys):
    data = np.load(ws / 'data' / 'NTU60_CS.npz')
    arrays = {k: data[k] for k in data.files}
    arrays['y_test'] = np.eye(6)[[0, 1, 2, 3, 4, 5, 0, 1]]
    np.savez(tmp / 'labels.npz', **arrays)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, data=tmp / 'labels.npz'), '--work-dir', tmp / 'run',
          match=['the test split has label 5, outside 0..3', 'num_class 4'])


def case_empty_split(ws, tmp, capsys):
    data = np.load(ws / 'data' / 'NTU60_CS.npz')
    arrays = {k: data[k] for k in data.files}
    arrays['x_test'], arrays['y_test'], arrays['sample_name_test'] = (arrays['x_test'][:0], arrays['y_test'][:0],
                                                                      arrays['sample_name_test'][:0])
    np.savez(tmp / 'empty.npz', **arrays)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, data=tmp / 'empty.npz'), '--work-dir', tmp / 'run',
          match=['the test split is empty'])


def case_config_optimizer_lowercase(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, optimizer='sgd'), match=["optimizer: 'sgd' is not one of "
                                                                                    "SGD, Adam"])


def case_config_number_as_word(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, base_lr='fast'), match=['base_lr', "'fast'"])


def case_config_boolean_as_word(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, nesterov='maybe'), match=['nesterov', 'expected a boolean'])


def case_config_unknown_key(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, learning_rate=0.1),
          match=['unknown key(s) learning_rate', 'valid keys'])


def case_config_missing(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', tmp / 'nope.yaml', match=['nope.yaml', 'not found'])


def case_config_not_a_mapping(ws, tmp, capsys):
    (tmp / 'list.yaml').write_text('- a\n- b\n')
    fails(capsys, train, 'ntu', '--config', tmp / 'list.yaml', match=['list.yaml', 'expected a mapping'])


def case_ucla_script_with_ntu_config(ws, tmp, capsys):
    fails(capsys, train, 'ucla', '--config', os.path.join(ROOT, 'config/nturgbd-cross-subject/lst_joint.yaml'),
          match=['feeders.feeder_ntu.Feeder is for NTU RGB+D', 'main_multipart_ntu.py'])


def case_ntu_script_with_ucla_config(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', os.path.join(ROOT, 'config/ucla/lst_joint.yaml'),
          match=['is for NW-UCLA', 'main_multipart_ucla.py'])


def case_feeder_argument_typo(ws, tmp, capsys):
    cfg = config(ws, tmp)
    fails(capsys, train, 'ntu', '--config', cfg, '--work-dir', tmp / 'run', '--train-feeder-args',
          "{'windw_size': 8}", match=['feeder feeders.feeder_ntu.Feeder', "'windw_size'"])


def case_model_argument_typo(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--model-args',
          "{'num_clas': 4}", match=['model model.ctrgcn.Model_lst_4part', "'num_clas'"])


def case_unknown_model_class(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, model='model.ctrgcn.Model_lst_5part'), '--work-dir',
          tmp / 'run', match=['Model_lst_5part'])


def case_duplicate_raw_file(ws, tmp, capsys):
    (tmp / 'a').mkdir()
    (tmp / 'b').mkdir()
    name = sorted(os.listdir(ws / 'raw'))[0]
    shutil.copy(ws / 'raw' / name, tmp / 'a' / name)
    shutil.copy(ws / 'raw' / name, tmp / 'b' / name)
    fails(capsys, preprocess_cli.main, 'ntu60', 1, ['--raw-dir', str(tmp / 'a'), str(tmp / 'b'), '--out-dir',
                                                    str(tmp / 'out')],
          match=[f'{name} is in two --raw-dir folders', str(tmp / 'a' / name), str(tmp / 'b' / name)])


def case_class_removed_from_descriptions(ws, tmp, capsys):
    text = tmp / 'text'
    shutil.copytree(os.path.join(ROOT, 'text'), text, ignore=shutil.ignore_patterns('*.py', '__pycache__'))
    for kind in ('label_map', 'synonyms', 'parts'):
        path = text / f'ntu120_{kind}.txt'
        lines = path.read_text().splitlines()
        path.write_text('\n'.join(lines[:4] + lines[5:]) + '\n')          # class 5 gone from all three
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_dir=str(text), text_cache_dir=str(tmp / 'bank')),
          '--work-dir', tmp / 'run', match=['ntu120_label_map.txt: 119 classes', 'or 120 (the whole set)'])


def case_weights_of_another_stream(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    train('ntu', '--config', run / 'config.yaml', '--work-dir', run, '--phase', 'test',
          '--weights', weights_of(ws / 'bone'))
    log = (run / 'log.txt').read_text()
    assert 'WARNING' in log and 'saved for another model or modality' in log and "'k': 1" in log


def case_header_frame_count_too_small(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    victim = sorted(raw.iterdir())[1]
    lines = victim.read_text().split('\n')
    lines[0] = str(int(lines[0]) - 2)
    victim.write_text('\n'.join(lines))
    count, errors_ = ntu.parse_all([str(raw)], str(tmp / 'out'), 'ntu60', workers=1)
    assert count == 7 and any(str(victim) in e and 'more lines than the' in e for e in errors_)


def case_file_one_line_short(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    victim = sorted(raw.iterdir())[2]
    victim.write_text('\n'.join(victim.read_text().rstrip('\n').split('\n')[:-1]) + '\n')
    preprocess_cli.main('ntu60', 1, ['--raw-dir', str(raw), '--out-dir', str(tmp / 'out')])     # no crash
    log = (tmp / 'out' / 'raw_data' / 'skipped_files.log').read_text()
    assert f'{victim}: truncated at line' in log


def case_body_with_all_joints_zero(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    victim = sorted(raw.iterdir())[0]
    lines, out = victim.read_text().split('\n'), []
    frames, at = int(lines[0]), 1
    for _ in range(frames):                     # keep the first body, with every joint at 0
        bodies = int(lines[at])
        out += ['1', lines[at + 1], lines[at + 2]] + [' '.join(['0'] * 12)] * int(lines[at + 2])
        at += 1 + bodies * (2 + int(lines[at + 2]))
    victim.write_text('\n'.join([lines[0]] + out) + '\n')
    old = os.umask(0o022)
    try:
        preprocess_cli.main('ntu60', None, ['--raw-dir', str(raw), '--out-dir', str(tmp / 'out')])     # steps 1-3
    finally:
        os.umask(old)
    log = (tmp / 'out' / 'denoised_data' / 'skipped_files.log').read_text()
    assert f'{victim}: its one body has no non-zero joint' in log
    with np.load(tmp / 'out' / 'NTU60_CS.npz') as npz:
        assert victim.stem not in [str(n) for n in npz['sample_name_train']] + [str(n) for n in npz['sample_name_test']]
    # the preprocessing's files follow the umask too
    assert {path.stat().st_mode & 0o777 for path in (tmp / 'out').rglob('*') if path.is_file()} == {0o644}


def case_stale_skipped_files_log(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    (raw / 'walking.skeleton').write_text('1\n')
    ntu.parse_all([str(raw)], str(tmp / 'out'), 'ntu60', workers=1)
    log = tmp / 'out' / 'raw_data' / 'skipped_files.log'
    assert f'{raw / "walking.skeleton"}: file name is not of the form' in log.read_text()   # with its folder
    (raw / 'walking.skeleton').unlink()
    ntu.parse_all([str(raw)], str(tmp / 'out'), 'ntu60', workers=1)
    assert not log.exists()


def case_npy_only(ws, tmp, capsys):
    out = tmp / 'out'
    preprocess_cli.main('ntu60', None, ['--raw-dir', str(ws / 'raw'), '--out-dir', str(out), '--format', 'npy',
                                        '--workers', '1'])
    assert not (out / 'NTU60_CS.npz').exists()
    from feeders.feeder_ntu import Feeder
    feeder = Feeder(str(out / 'NTU60_CS.npz'), split='train', window_size=16)
    assert len(feeder) > 0 and feeder[0][0].shape == (3, 16, 25, 2)


def case_stale_npy_copies(ws, tmp, capsys):
    out = tmp / 'out'
    preprocess_cli.main('ntu60', None, ['--raw-dir', str(ws / 'raw'), '--out-dir', str(out), '--format', 'both',
                                        '--workers', '1'])
    names = np.load(out / 'NTU60_CS_sample_name_train.npy')
    np.save(out / 'NTU60_CS_sample_name_train.npy', names[::-1])
    from feeders.feeder_ntu import Feeder
    with pytest.raises(ValueError, match='from different preprocessing runs'):
        Feeder(str(out / 'NTU60_CS.npz'), split='train', window_size=16, use_mmap=True)
    # step 3 again with one format: the other one, now stale, goes
    preprocess_cli.main('ntu60', 3, ['--out-dir', str(out), '--format', 'npy'])
    assert not (out / 'NTU60_CS.npz').exists() and (out / 'NTU60_CS_x_train.npy').exists()
    preprocess_cli.main('ntu60', 3, ['--out-dir', str(out), '--format', 'npz'])
    assert (out / 'NTU60_CS.npz').exists() and not list(out.glob('NTU60_CS_*.npy'))
    with np.load(out / 'NTU60_CS.npz') as npz:                     # a split whose arrays disagree in length
        arrays = {k: npz[k] for k in npz.files}
    np.savez(out / 'NTU60_CS.npz', **dict(arrays, y_train=arrays['y_train'][:-1]))
    n = len(arrays['y_train'])
    with pytest.raises(ValueError, match=f'train split has {n} samples, {n - 1} labels and {n} names'):
        Feeder(str(out / 'NTU60_CS.npz'), split='train', window_size=16)


def case_unwritable_out_dir(ws, tmp, capsys):
    (tmp / 'file').write_text('x')
    fails(capsys, preprocess_cli.main, 'ntu60', 1, ['--raw-dir', str(ws / 'raw'), '--out-dir',
                                                    str(tmp / 'file' / 'out')], match=['--out-dir', 'not writable'])


def case_unwritable_work_dir(ws, tmp, capsys):
    (tmp / 'file').write_text('x')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'file' / 'run',
          match=['work dir', 'not writable'])


def case_unwritable_text_cache(ws, tmp, capsys):
    (tmp / 'file').write_text('x')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_cache_dir=str(tmp / 'file' / 'bank')),
          '--work-dir', tmp / 'run', match=['text cache dir', 'not writable'])


def case_corrupt_npz(ws, tmp, capsys):
    (tmp / 'bad.npz').write_bytes(b'PK\x03\x04 not really a zip')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, data=tmp / 'bad.npz'), '--work-dir', tmp / 'run',
          match=['bad.npz', 'not a readable preprocessed file'])


def case_empty_score_file(ws, tmp, capsys):
    bone = copy_run(ws, tmp, 'bone')
    (bone / 'epoch1_test_score.pkl').write_bytes(b'')
    fails(capsys, ensemble.load_scores, str(bone), ['x'], match=['epoch1_test_score.pkl', 'empty file'])


def case_corrupt_score_file(ws, tmp, capsys):
    bone = copy_run(ws, tmp, 'bone')
    (bone / 'epoch1_test_score.pkl').write_bytes(pickle.dumps({'a': 1})[:-3])
    fails(capsys, ensemble.load_scores, str(bone), ['a'], match=['epoch1_test_score.pkl', 'not a readable score file'])


def case_score_file_runs_code(ws, tmp, capsys):
    bone = copy_run(ws, tmp, 'bone')
    marker = tmp / 'pwned'
    (bone / 'epoch1_test_score.pkl').write_bytes(pickle.dumps({'a': Evil(marker)}))
    fails(capsys, ensemble.load_scores, str(bone), ['a'], match=['refused to read it', 'posix.system'])
    assert not marker.exists()


def case_weights_run_code(ws, tmp, capsys):
    marker = tmp / 'pwned'
    torch.save({'fc.weight': Evil(marker)}, tmp / 'evil.pt')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--weights', tmp / 'evil.pt',
          match=['evil.pt', 'refused to read it'])
    assert not marker.exists()


def case_training_state_runs_code(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    marker = tmp / 'pwned'
    state = torch.load(run / 'checkpoint.pt', weights_only=True)
    state['history'] = Evil(marker)
    torch.save(state, run / 'checkpoint.pt')
    fails(capsys, train, 'ntu', '--config', run / 'config.yaml', '--work-dir', run, '--num-epoch', 2,
          match=['checkpoint.pt', 'refused to read it'])
    assert not marker.exists()


def case_intermediate_runs_code(ws, tmp, capsys):
    out = tmp / 'out'
    ntu.parse_all([str(ws / 'raw')], str(out), 'ntu60', workers=1)
    marker = tmp / 'pwned'
    chunk = out / 'raw_data' / 'raw_00000.pkl'
    chunk.write_bytes(pickle.dumps([Evil(marker)]))
    fails(capsys, preprocess_cli.main, 'ntu60', 2, ['--out-dir', str(out), '--workers', '1'],
          match=['raw_00000.pkl', 'refused to read it'])
    assert not marker.exists()


def case_text_bank_runs_code(ws, tmp, capsys):
    cache = tmp / 'bank'
    shutil.copytree(ws / 'bank', cache)
    marker = tmp / 'pwned'
    for path in cache.iterdir():
        torch.save({'candidates': Evil(marker)}, path)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_cache_dir=str(cache)), '--work-dir', tmp / 'run',
          match=['refused to read it'])
    assert not marker.exists()


def case_corrupt_text_bank_is_rebuilt(ws, tmp, capsys):
    cache = tmp / 'bank'
    shutil.copytree(ws / 'bank', cache)
    for path in cache.iterdir():
        path.write_bytes(b'garbage')
    train('ntu', '--config', config(ws, tmp, text_cache_dir=str(cache)), '--work-dir', tmp / 'run')
    log = (tmp / 'run' / 'log.txt').read_text()
    assert 'damaged, rebuilding it' in log and (tmp / 'run' / 'best.pt').exists()


def case_weights_is_a_training_state(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    train('ntu', '--config', run / 'config.yaml', '--work-dir', run, '--phase', 'test', '--weights',
          run / 'checkpoint.pt')
    assert 'is a training state: loading its model part' in (run / 'log.txt').read_text()


def case_resume_from_weights_file(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--resume',
          weights_of(ws / 'joint'), match=['not a training state', '--weights'])


def case_weights_of_another_shape(ws, tmp, capsys):
    cfg = config(ws, tmp, model_args=dict(num_class=3, num_point=25, num_person=2, graph='graph.ntu_rgb_d.Graph',
                                          graph_args=dict(labeling_mode='spatial'), head=['all-MiniLM-L6-v2'], k=8))
    fails(capsys, train, 'ntu', '--config', cfg, '--work-dir', tmp / 'run', '--phase', 'test', '--weights',
          weights_of(ws / 'joint'), match=['does not fit', 'size mismatch'])


def case_weights_of_another_model(ws, tmp, capsys):
    other = tmp / 'other.pt'
    torch.save({'encoder.weight': torch.zeros(3)}, other)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--phase', 'test', '--weights',
          other, match=['other.pt does not fit', 'parameters are not in the file', '--ignore-weights'])
    assert not (tmp / 'run' / 'epoch1_test_score.pkl').exists()


def case_weights_without_the_classifier_for_fine_tuning(ws, tmp, capsys):
    weights = torch.load(weights_of(ws / 'joint'), weights_only=True)
    torch.save({k: v for k, v in weights.items() if not k.startswith('fc.')}, tmp / 'no_fc.pt')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'a', '--weights', tmp / 'no_fc.pt',
          match=['2 of its', 'fc.weight'])
    # named with --ignore-weights, the classifier starts from scratch: fine-tuning
    train('ntu', '--config', config(ws, tmp, num_epoch=1), '--work-dir', tmp / 'b', '--weights', tmp / 'no_fc.pt',
          '--ignore-weights', 'fc.')
    assert 'fc.weight' in (tmp / 'b' / 'log.txt').read_text()


def case_test_phase_without_weights(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--phase', 'test',
          match=['--phase test needs --weights'])


def case_ucla_file_with_nan(ws, tmp, capsys):
    folder = tmp / 'all_sqe'
    shutil.copytree(ws / 'ucla' / 'all_sqe', folder)
    victim = sorted(folder.iterdir())[0]
    data = json.loads(victim.read_text())
    data['skeletons'][2][3][1] = float('nan')
    victim.write_text(json.dumps(data))
    from feeders.feeder_ucla import Feeder
    with pytest.raises(ValueError, match=f'{victim.name}: frame 2 holds NaN or Inf'):
        Feeder('joint', 'train', root=str(folder))
    data = json.loads((ws / 'ucla' / 'all_sqe' / victim.name).read_text())
    for frame in data['skeletons']:              # a flat skeleton: each axis is scaled by its range
        for joint in frame:
            joint[2] = 3.0
    victim.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=f'{victim.name}: every joint has the same z in every frame'):
        Feeder('joint', 'train', root=str(folder))


def case_weights_giving_nan_scores(ws, tmp, capsys):
    weights = torch.load(weights_of(ws / 'joint'), weights_only=True)
    weights['fc.bias'][1] = float('nan')
    torch.save(weights, tmp / 'nan.pt')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--phase', 'test',
          '--save-score', 'True', '--weights', tmp / 'nan.pt',
          match=['eval epoch', 'non-finite scores (NaN or Inf) for 8 of 8 test samples'])
    assert not (tmp / 'run' / 'epoch1_test_score.pkl').exists()


def case_ucla_folder_missing(ws, tmp, capsys):
    fails(capsys, train, 'ucla', '--config', os.path.join(ROOT, 'config/ucla/lst_joint.yaml'), '--work-dir',
          tmp / 'run', '--train-feeder-args', f"{{'root': '{tmp / 'nowhere'}'}}", match=['NW-UCLA folder', 'nowhere'])


def case_ucla_split_or_modality_misspelt(ws, tmp, capsys):
    root = ws / 'ucla' / 'all_sqe'
    fails(capsys, train, 'ucla', '--config', os.path.join(ROOT, 'config/ucla/lst_joint.yaml'), '--work-dir',
          tmp / 'run', '--train-feeder-args', f"{{'root': '{root}'}}", '--test-feeder-args',
          f"{{'label_path': 'test', 'root': '{root}'}}", match=["label_path 'test'", 'expected train or val'])
    fails(capsys, train, 'ucla', '--config', os.path.join(ROOT, 'config/ucla/lst_joint.yaml'), '--work-dir',
          tmp / 'run', '--train-feeder-args', f"{{'data_path': 'bone_vel', 'root': '{root}'}}",
          match=["data_path 'bone_vel'", 'joint, bone, motion, joint_motion, bone_motion'])
    assert not (tmp / 'run').exists() or not any((tmp / 'run').iterdir())


def case_ensemble_wrong_data_dir(ws, tmp, capsys):
    fails(capsys, ensemble.main, ['--datasets', 'ntu/xsub', '--joint-dir', str(ws / 'joint'), '--bone-dir',
                                  str(ws / 'bone'), '--data-dir', str(ws / 'data')],
          match=['ntu/NTU60_CS.npz not found', '--data-dir is the folder that holds'])


def case_ensemble_other_class_count(ws, tmp, capsys):
    bone = copy_run(ws, tmp, 'bone')
    scores = pickle.loads((bone / 'epoch1_test_score.pkl').read_bytes())
    (bone / 'epoch1_test_score.pkl').write_bytes(pickle.dumps({k: np.append(v, 0.0) for k, v in scores.items()}))
    (tmp / 'd' / 'ntu').mkdir(parents=True)
    shutil.copy(ws / 'data' / 'NTU60_CS.npz', tmp / 'd' / 'ntu' / 'NTU60_CS.npz')
    fails(capsys, ensemble.main, ['--datasets', 'ntu/xsub', '--joint-dir', str(ws / 'joint'), '--bone-dir', str(bone),
                                  '--data-dir', str(tmp / 'd')], match=['disagree on the number of classes: [4, 5]'])


def case_ensemble_scores_of_more_samples_or_fewer_classes(ws, tmp, capsys):
    (tmp / 'd' / 'ntu').mkdir(parents=True)
    shutil.copy(ws / 'data' / 'NTU60_CS.npz', tmp / 'd' / 'ntu' / 'NTU60_CS.npz')
    scores = pickle.loads((ws / 'bone' / 'epoch1_test_score.pkl').read_bytes())
    for name, changed, match in (
            ('more', dict(scores, S099C001P001R001A001=next(iter(scores.values()))),
             ['1 of its 9 scores are of samples outside this test split', 'S099C001P001R001A001']),
            ('fewer', {k: v[:2] for k, v in scores.items()}, ['scores for 2 classes', 'labels up to 3'])):
        bone, joint = tmp / name, tmp / f'{name}_joint'
        for folder in (bone, joint):                        # both streams of 2 classes: they agree, still wrong
            folder.mkdir()
            (folder / 'epoch1_test_score.pkl').write_bytes(pickle.dumps(changed))
        joint = joint if name == 'fewer' else ws / 'joint'
        fails(capsys, ensemble.main, ['--datasets', 'ntu/xsub', '--joint-dir', str(joint), '--bone-dir', str(bone),
                                      '--data-dir', str(tmp / 'd')], match=match)


def case_ensemble_weights_not_finite(ws, tmp, capsys):
    with pytest.raises(SystemExit) as stop:
        ensemble.main(['--datasets', 'ntu/xsub', '--joint-dir', 'a', '--bone-dir', 'b', '--alpha', 'nan'])
    assert stop.value.code == 2 and 'expected finite numbers' in capsys.readouterr().err


def case_ensemble_weights_count(ws, tmp, capsys):
    with pytest.raises(SystemExit) as stop:
        ensemble.main(['--datasets', 'ntu/xsub', '--joint-dir', 'a', '--bone-dir', 'b', '--weights', '1', '2', '3'])
    assert stop.value.code == 2 and '--weights: 3 weights for 2 streams' in capsys.readouterr().err


def case_missing_description_file(ws, tmp, capsys):
    text = tmp / 'text'
    shutil.copytree(ws / 'text', text)
    (text / 'ntu120_parts.txt').unlink()
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_dir=str(text), text_cache_dir=str(tmp / 'bank')),
          '--work-dir', tmp / 'run', match=['ntu120_parts.txt not found'])


def case_config_names_a_function(ws, tmp, capsys):
    marker = tmp / 'marker'
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, model='os.system'), '--work-dir', tmp / 'run',
          '--model-args', f"{{'command': 'touch {marker}'}}", match=["'os.system': only classes of the model/ package"])
    args = dict(num_class=4, num_point=25, num_person=2, graph='posix.system', graph_args=dict(command=f'touch {marker}'))
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, model='model.ctrgcn.Model', model_args=args),
          '--work-dir', tmp / 'run', match=["'posix.system': only classes of the graph/ package"])
    assert not marker.exists()


def case_zero_log_interval(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--log-interval', 0,
          match=['log_interval 0: expected at least 1'])


def case_release_ucla_scores_by_position(ws, tmp, capsys):
    names = sorted(p.name[:-5] for p in (ws / 'ucla' / 'all_sqe').iterdir() if p.name.endswith('_v03.json'))
    for stream in ('joint', 'bone'):
        (tmp / stream).mkdir()
        scores = {i: np.eye(10)[i % 10] for i in range(len(names))}        # the release's NW-UCLA keys: 0..463
        (tmp / stream / 'epoch1_test_score.pkl').write_bytes(pickle.dumps(scores))
    shutil.copytree(ws / 'ucla' / 'all_sqe', tmp / 'd' / 'NW-UCLA' / 'all_sqe')
    fails(capsys, ensemble.main, ['--datasets', 'NW-UCLA', '--joint-dir', str(tmp / 'joint'), '--bone-dir',
                                  str(tmp / 'bone'), '--data-dir', str(tmp / 'd')],
          match=['keyed by position', "the release's own validation order"])


# ------------------------------------------------------------------------------------------------ promises kept
def case_weights_inside_its_work_dir(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    before = digest(run)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', run, '--weights', run / 'best.pt',
          '--resume', 'no', match=["the work dir's file", '--weights', 'would write onto a file it reads',
                                   'copy the file elsewhere first'])
    assert digest(run) == before


def case_weights_hard_linked_into_its_work_dir(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    os.link(weights_of(run), tmp / 'pretrained.pt')                 # the same file under another name
    before = digest(run)
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', run, '--weights', tmp / 'pretrained.pt',
          '--resume', 'no', match=[f"{weights_of(run)} is --weights {tmp / 'pretrained.pt'}"])
    assert digest(run) == before


def case_own_record_and_state_continue_a_run_but_not_backwards(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    train('ntu', '--config', run / 'config.yaml', '--work-dir', run, '--resume', run / 'checkpoint.pt',
          '--num-epoch', 2)                                          # the run's own config.yaml and checkpoint.pt
    assert json.loads((run / 'metrics.json').read_text())['num_epoch'] == 2
    before = digest(run)
    fails(capsys, train, 'ntu', '--config', run / 'config.yaml', '--work-dir', run, '--num-epoch', 1,
          match=['checkpoint.pt has trained 2 epochs, past --num-epoch 1', '--resume no'])
    assert digest(run) == before                                      # metrics, scores and config as they were


def case_rerunning_a_finished_run_says_what_it_does(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    train('ntu', '--config', run / 'config.yaml', '--work-dir', run)
    assert 'has trained its 1 epochs already: nothing to train' in (run / 'log.txt').read_text()


def case_nan_learning_rate(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'new' / 'run', '--base-lr', 'nan',
          match=['base_lr nan: expected a finite number >= 0'])
    assert not (tmp / 'new').exists()


def case_negative_weight_decay_in_the_config(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, weight_decay=-0.1), '--work-dir', tmp / 'run',
          match=['weight_decay -0.1: expected a finite number >= 0'])


def case_negative_seed(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--seed', -1,
          match=['seed -1: expected 0 .. 2**32 - 1'])


def case_top_zero(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--phase', 'test',
          '--weights', weights_of(ws / 'joint'), '--show-topk', 0, 1, match=['show_topk [0, 1]: expected k >= 1'])
    assert not (tmp / 'run').exists()


def case_one_class(ws, tmp, capsys):
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--model-args',
          "{'num_class': 1}", match=['model_args num_class 1: expected a whole number of classes, at least 2'])


def case_flag_given_twice(ws, tmp, capsys):
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        train('ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--base-lr', '0.1', '--base-lr', '0.01')
    assert stop.value.code == 2 and 'error: --base-lr given twice: give it once' in capsys.readouterr().err


def case_config_with_a_python_tag(ws, tmp, capsys):
    marker = tmp / 'marker'
    (tmp / 'evil.yaml').write_text(f'model: !!python/object/apply:os.system ["touch {marker}"]\n')
    fails(capsys, train, 'ntu', '--config', tmp / 'evil.yaml', match=['evil.yaml, line 1: not valid YAML',
                                                                      "constructor for the tag"])
    assert not marker.exists()


def case_config_saved_as_utf16(ws, tmp, capsys):
    (tmp / 'cfg.yaml').write_bytes(open(config(ws, tmp, name='utf8')).read().encode('utf-16'))
    fails(capsys, train, 'ntu', '--config', tmp / 'cfg.yaml', match=['cfg.yaml: not UTF-8 text', 'a YAML config'])


def case_description_file_saved_as_utf16(ws, tmp, capsys):
    text = tmp / 'text'
    shutil.copytree(ws / 'text', text)
    (text / 'ntu120_parts.txt').write_bytes((text / 'ntu120_parts.txt').read_text().encode('utf-16'))
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_dir=str(text), text_cache_dir=str(tmp / 'bank')),
          '--work-dir', tmp / 'run', match=['ntu120_parts.txt: not UTF-8 text'])
    assert not (tmp / 'run').exists()


def case_text_bank_of_another_width_is_rebuilt(ws, tmp, capsys):
    cache = tmp / 'bank'
    shutil.copytree(ws / 'bank', cache)
    for path in cache.iterdir():                                    # the right name, features 8 wide
        state = torch.load(path, weights_only=True)
        state.update(candidates=state['candidates'][..., :8], groups=state['groups'][..., :8])
        torch.save(state, path)
    train('ntu', '--config', config(ws, tmp, text_cache_dir=str(cache)), '--work-dir', tmp / 'run')
    assert 'holds features of another shape' in (tmp / 'run' / 'log.txt').read_text()
    assert (tmp / 'run' / 'best.pt').exists()


def case_torchscript_as_training_weights(ws, tmp, capsys):
    torch.jit.trace(torch.nn.Linear(2, 2), torch.zeros(1, 2)).save(str(tmp / 'program.pt'))
    fails(capsys, train, 'ntu', '--config', config(ws, tmp), '--work-dir', tmp / 'run', '--weights',
          tmp / 'program.pt', match=['program.pt: refused to read it as a weights file: a TorchScript program'])


def model_folder(folder, modules_type='sentence_transformers.models.Transformer', extra_file=None):
    """A sentence-transformers folder as --text-weights: its modules.json (and one more file)."""
    folder.mkdir()
    (folder / 'modules.json').write_text(json.dumps([dict(idx=0, name='0', path='', type=modules_type)]))
    if extra_file:
        (folder / extra_file).write_bytes(b'weights')
    return folder


def case_text_weights_naming_a_foreign_class(ws, tmp, capsys):
    folder = model_folder(tmp / 'minilm', modules_type='os.system')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_cache_dir=str(tmp / 'bank')), '--work-dir',
          tmp / 'run', '--text-weights', folder, match=['modules.json: names os.system', 'would run its code'])


def case_text_weights_pickled(ws, tmp, capsys):
    folder = model_folder(tmp / 'minilm', extra_file='pytorch_model.bin')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp, text_cache_dir=str(tmp / 'bank')), '--work-dir',
          tmp / 'run', '--text-weights', folder, match=['pytorch_model.bin: pickled weights', '.safetensors'])


def case_full_disk_while_training(ws, tmp, capsys):
    def small_files():                       # files stop growing at 1 MiB: the weights (7 MiB) cannot be written
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    result = command([os.path.join(ROOT, 'main_multipart_ntu.py'), '--config', config(ws, tmp), '--work-dir',
                      tmp / 'run'], preexec_fn=small_files)
    assert result.returncode == 2
    last_error_line(result.stderr, [f'{tmp / "run"}/runs-1-2.pt: cannot be written (File too large)'])
    assert not list((tmp / 'run').glob('*.tmp*'))                     # no half-written file


CASES = [value for name, value in sorted(globals().items()) if name.startswith('case_')]


def test_there_are_at_least_80_cases():
    assert len(CASES) >= 80


@pytest.mark.parametrize('case', CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_input(case, ws, tmp_path, capsys):
    before = digest(ws)
    case(ws, tmp_path, capsys)
    assert digest(ws) == before, 'an input file changed'


@pytest.mark.parametrize('argv, message', [
    ([os.path.join(ROOT, 'main_multipart_ntu.py'), '--config', 'nowhere.yaml'], "config file 'nowhere.yaml' not found"),
    ([os.path.join(ROOT, 'ensemble.py'), '--datasets', 'NW-UCLA', '--joint-dir', 'joint', '--bone-dir', 'bone',
      '--data-dir', 'nowhere'], 'NW-UCLA/all_sqe not found'),
    (['-m', 'preprocess.ntu', '--dataset', 'ntu60', '--raw-dir', 'nowhere', '--out-dir', '/tmp/lst-out'],
     'raw skeleton folder(s) not found: nowhere'),
])
def test_command_lines_print_one_line_and_exit_2(argv, message, tmp_path):
    result = subprocess.run([sys.executable] + argv, cwd=tmp_path, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: ') and message in lines[0], \
        result.stderr
    debug = subprocess.run([sys.executable] + argv, cwd=tmp_path, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=ROOT, LST_DEBUG='1'))
    assert 'Traceback' in debug.stderr
