"""The tools keep the training's promises: reading never runs a program unless the user says so, no command writes
onto a file it reads, a bad input ends in one `error:` line (exit status 2) before anything is written, a bad file
among many is its own line while the rest go on, and nothing wrong passes without a word.

Every case runs the real command (in process through `errors.run`, or as its own process where the process itself
is what is tested) on small generated data; the shared workspace is hashed before and after each case.
"""
import json
import os
import pickle
import resource
import shutil
import signal
from typing import Tuple

import numpy as np
import pytest
import torch
import yaml

import ensemble
from bad_inputs import (ROOT, command, copy_run, digest, fails, last_error_line, make_workspace, refused,
                        weights_of)
from preprocess import convert, synthetic
from text import describe
from tools_helpers import seeded_weights, ucla_config

import export  # noqa: E402  (tools/ is on the path through tools_helpers)
import predict  # noqa: E402
import reproduce  # noqa: E402
import visualize  # noqa: E402

pytestmark = pytest.mark.slow
MARKER = 'MARKER: the file ran its code'


class Marked(torch.nn.Module):
    """A TorchScript program whose loading prints MARKER (its __setstate__ runs when torch.jit.load builds it)."""

    def __init__(self):
        super().__init__()
        self.x = torch.zeros(1)

    @torch.jit.export
    def __getstate__(self) -> Tuple[torch.Tensor, bool]:
        return self.x, self.training

    @torch.jit.export
    def __setstate__(self, state: Tuple[torch.Tensor, bool]) -> None:
        self.x = state[0]
        self.training = state[1]
        print('MARKER: the file ran its code')

    def forward(self, x):
        return x


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """The bad-input workspace, the joint stream exported as TorchScript (joint.ts.pt), an NW-UCLA model's export
    (ucla.ts.pt), the marked program (marked.pt), an annotation file (ann.pkl) and a label map (labels.txt)."""
    base = make_workspace(tmp_path_factory.mktemp('bad_tool_inputs'))
    joint = base / 'joint'
    export.export(str(joint / 'config.yaml'), weights_of(joint), 'torchscript', str(base / 'joint.ts.pt'))
    ucla = ucla_config(base / 'configs' / 'ucla.yaml', str(base / 'ucla' / 'all_sqe'), 'model.ctrgcn.Model',
                       dict(num_class=10))
    export.export(ucla, seeded_weights(ucla, base / 'ucla.pt'), 'torchscript', str(base / 'ucla.ts.pt'))
    torch.jit.save(torch.jit.script(Marked()), str(base / 'marked.pt'))
    convert.main(['ucla', '--input', str(base / 'ucla' / 'all_sqe'), '--out', str(base / 'ann.pkl')])
    (base / 'labels.txt').write_text('wave\nclap\n')
    return base


def joint_config(ws):
    return str(ws / 'joint' / 'config.yaml')


def with_classes(ws, tmp, num_class):
    """The joint stream's config with another class count."""
    settings = yaml.safe_load(open(joint_config(ws)))
    settings['model_args']['num_class'] = num_class
    (tmp / f'{num_class}.yaml').write_text(yaml.safe_dump(settings))
    return str(tmp / f'{num_class}.yaml')


def predict_json(capsys, *argv):
    """predict's exit status and its JSON records (results and per-file errors), run as its command line is."""
    capsys.readouterr()
    code = predict.main([str(a) for a in argv] + ['--format', 'json'])
    return code, json.loads(capsys.readouterr().out)


def answers(names):
    return ''.join(f'### {n}\nSynonyms: {n} now\nHead: up\nHand: open\nArm: out\nHip: still\nLeg: bent\nFoot: flat\n'
                   for n in names)


# ------------------------------------------------------------------------------------------------ programs
def case_torchscript_weights_run_only_when_trusted(ws, tmp, capsys):
    argv = [os.path.join(ROOT, 'tools', 'predict.py'), '--config', joint_config(ws), '--weights', ws / 'marked.pt',
            '--input', ws / 'raw']
    untrusted = command(argv)
    assert untrusted.returncode == 2 and MARKER not in untrusted.stdout
    assert len(untrusted.stderr.strip().splitlines()) == 1
    last_error_line(untrusted.stderr, ['marked.pt: a TorchScript program', 'give --trust-code'])
    trusted = command(argv + ['--trust-code'])                       # the marker is seen when the code runs
    assert MARKER in trusted.stdout and trusted.returncode == 2      # ... and its output is no model's


def case_visualize_takes_an_export_when_trusted(ws, tmp, capsys):
    argv = ['--input', sample_input(tmp), '--out', str(tmp / 'x.png'), '--config', joint_config(ws),
            '--weights', str(ws / 'joint.ts.pt')]
    fails(capsys, visualize.main, argv, match=['joint.ts.pt: a TorchScript program', '--trust-code'])
    assert not (tmp / 'x.png').exists()
    assert visualize.main(argv + ['--trust-code']) == 0 and (tmp / 'x.png').exists()


def sample_input(tmp):
    """A generated NTU sample as a .npy input C,T,V,M."""
    np.save(tmp / 'sample.npy', np.random.default_rng(0).normal(size=(3, 30, 25, 2)).astype(np.float32))
    return str(tmp / 'sample.npy')


def case_export_of_another_layout(ws, tmp, capsys):
    fails(capsys, predict.main, ['--config', joint_config(ws), '--weights', str(ws / 'ucla.ts.pt'), '--trust-code',
                                 '--input', str(ws / 'raw')],
          match=['ucla.ts.pt does not take the input of the model', 'N,3,16,25,2', 'an export of another model?'])


def case_export_of_fewer_classes(ws, tmp, capsys):
    fails(capsys, predict.main, ['--config', with_classes(ws, tmp, 6), '--weights', str(ws / 'joint.ts.pt'),
                                 '--trust-code', '--input', str(ws / 'raw')],
          match=['joint.ts.pt gives scores of shape (1, 4) for one sample', 'has 6 classes'])


def case_export_of_more_classes(ws, tmp, capsys):
    fails(capsys, predict.main, ['--config', with_classes(ws, tmp, 3), '--weights', str(ws / 'joint.ts.pt'),
                                 '--trust-code', '--input', str(ws / 'raw')],
          match=['gives scores of shape (1, 4)', 'has 3 classes'])


# ------------------------------------------------------------------------------------------------ outputs
def export_argv(run, out):
    return ['--config', str(run / 'config.yaml'), '--weights', str(run / 'best.pt'), '--format', 'torchscript',
            '--out', str(out)]


def case_export_onto_its_weights(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    before = digest(run)
    fails(capsys, export.main, export_argv(run, run / 'best.pt'),
          match=['--out', 'best.pt is --weights', 'would write onto a file it reads'])
    assert digest(run) == before


def case_export_onto_a_training_state(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    before = digest(run)
    fails(capsys, export.main, export_argv(run, run / 'checkpoint.pt'),
          match=['checkpoint.pt: exists and is no exported model', 'replaces only an earlier export'])
    assert digest(run) == before


def case_export_onto_its_config_through_a_link(ws, tmp, capsys):
    run = copy_run(ws, tmp)
    os.symlink(run / 'config.yaml', tmp / 'model.pt')
    before = digest(run)
    fails(capsys, export.main, export_argv(run, tmp / 'model.pt'),
          match=[f'--out {tmp / "model.pt"} is --config {run / "config.yaml"}'])
    assert digest(run) == before and os.path.islink(tmp / 'model.pt')


def case_export_into_a_folder_under_a_file(ws, tmp, capsys):
    fails(capsys, export.main, export_argv(ws / 'joint', ws / 'joint' / 'config.yaml' / 'model.pt'),
          match=['model.pt: its folder', 'config.yaml is not writable', 'is a file'])


def case_failed_export_leaves_no_folder(ws, tmp, capsys):
    argv = export_argv(ws / 'joint', tmp / 'new' / 'model.pt')
    argv[argv.index('--config') + 1] = with_classes(ws, tmp, 5)        # the weights do not fit this config
    fails(capsys, export.main, argv, match=['does not fit', 'size mismatch'])
    assert not (tmp / 'new').exists()


def case_full_disk_while_exporting(ws, tmp, capsys):
    def small_files():                       # files stop growing at 1 MiB: the export (7 MiB) cannot be written
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    result = command([os.path.join(ROOT, 'tools', 'export.py')] + export_argv(ws / 'joint', tmp / 'out' / 'x.pt'),
                     preexec_fn=small_files)
    assert result.returncode == 2                                     # PyTorch's C++ writer aborted (-6) before
    last_error_line(result.stderr, [f'{tmp / "out" / "x.pt"}: cannot be written (File too large)'])
    assert not (tmp / 'out').exists()


def case_visualize_onto_its_input_through_a_link(ws, tmp, capsys):
    sample = sample_input(tmp)
    os.symlink(sample, tmp / 'drawing.png')
    fails(capsys, visualize.main, ['--input', sample, '--out', str(tmp / 'drawing.png')],
          match=['drawing.png is --input', 'would write onto a file it reads'])


def case_convert_onto_an_input_through_a_link(ws, tmp, capsys):
    folder = tmp / 'all_sqe'
    shutil.copytree(ws / 'ucla' / 'all_sqe', folder)
    victim = sorted(folder.iterdir())[0]
    os.symlink(victim, tmp / 'ucla.pkl')
    before = digest(folder)
    fails(capsys, convert.main, ['ucla', '--input', str(folder), '--out', str(tmp / 'ucla.pkl')],
          match=[f'ucla.pkl is --input {victim}'])
    assert digest(folder) == before


def case_convert_to_another_kind_of_file(ws, tmp, capsys):
    refused(capsys, convert.main, ['ucla', '--input', str(ws / 'ucla' / 'all_sqe'), '--out', str(tmp / 'u.json')],
            match=['--out', 'expected an annotation file name ending in .pkl'])


def case_describe_keeps_the_label_map_it_reads(ws, tmp, capsys):
    text = tmp / 'my_text'
    text.mkdir()
    label_map = text / 'custom_label_map.txt'
    label_map.write_text('\ufeffwave \nclap\n')                        # a BOM and a space: rewritten, it would differ
    before = label_map.read_bytes()
    (tmp / 'answers.txt').write_text(answers(['wave', 'clap']))
    assert describe.main(['parse', '--label-map', str(label_map), '--answers', str(tmp / 'answers.txt'),
                          '--out', str(text)]) == 0
    assert label_map.read_bytes() == before and (text / 'custom_parts.txt').exists()


def case_describe_answers_among_its_outputs(ws, tmp, capsys):
    (tmp / 'custom_parts.txt').write_text(answers(['wave', 'clap']))
    before = digest(tmp)
    fails(capsys, describe.main, ['parse', '--label-map', str(ws / 'labels.txt'), '--answers',
                                  str(tmp / 'custom_parts.txt'), '--out', str(tmp)],
          match=['--out', 'custom_parts.txt is --answers', 'would write onto a file it reads'])
    assert digest(tmp) == before


# ------------------------------------------------------------------------------------------------ one line each
def case_bad_arrays_are_one_line_each(ws, tmp, capsys):
    folder = tmp / 'inputs'
    folder.mkdir()
    (folder / 'empty.npy').write_bytes(b'')
    (folder / 'cut.npy').write_bytes((ws / 'data' / 'NTU60_CS.npz').read_bytes()[:3000])    # a zip cut short
    shutil.copy(ws / 'data' / 'NTU60_CS.npz', folder / 'archive.npy')
    shutil.copy(sample_input(tmp), folder / 'good.npy')
    code, records = predict_json(capsys, '--config', joint_config(ws), '--weights', weights_of(ws / 'joint'),
                                 '--input', folder)
    errors = {os.path.basename(r['file']): r['error'] for r in records if 'error' in r}
    assert code == 1 and [os.path.basename(r['file']) for r in records if 'scores' in r] == ['good.npy']
    assert 'not a numpy array file (No data left in file)' in errors['empty.npy']
    assert 'not a numpy array file (File is not a zip file)' in errors['cut.npy']
    assert 'an .npz archive, expected a .npy array' in errors['archive.npy']


def case_bad_annotations_are_one_line_each(ws, tmp, capsys):
    folder = tmp / 'inputs'
    folder.mkdir()
    good = dict(frame_dir='good', label=1, total_frames=30,
                keypoint=np.random.default_rng(0).normal(size=(2, 30, 25, 3)).astype(np.float32))
    files = {'no_keypoint.pkl': [dict(frame_dir='a', label=0)], 'word_label.pkl': [dict(good, label='x')],
             'one_channel.pkl': [dict(good, keypoint=good['keypoint'][..., :1])], 'nothing.pkl': [],
             'good.pkl': [good]}
    for name, content in files.items():
        (folder / name).write_bytes(pickle.dumps(content))
    code, records = predict_json(capsys, '--config', joint_config(ws), '--weights', weights_of(ws / 'joint'),
                                 '--input', folder)
    errors = {os.path.basename(r['file']): r['error'] for r in records if 'error' in r}
    assert code == 1 and [r['true_label'] for r in records if 'scores' in r] == ['wave right arm']
    assert 'no "keypoint" array' in errors['no_keypoint.pkl']
    assert "label 'x', expected an integer class index" in errors['word_label.pkl']
    assert 'keypoint of shape (2, 30, 25, 1), expected M x T x V x C' in errors['one_channel.pkl']
    assert errors['nothing.pkl'].endswith('nothing.pkl: holds no samples')
    assert all('\n' not in message for message in errors.values())


def case_binary_skeleton_file(ws, tmp, capsys):
    raw = tmp / 'raw'
    shutil.copytree(ws / 'raw', raw)
    victim = sorted(raw.iterdir())[0]
    victim.write_bytes(bytes(range(256)) * 4)
    code, records = predict_json(capsys, '--config', joint_config(ws), '--weights', weights_of(ws / 'joint'),
                                 '--input', raw)
    errors = [r['error'] for r in records if 'error' in r]
    assert code == 1 and len(records) == len(os.listdir(raw))
    assert any(e.startswith(f'{victim}: not text') and 'expected a Kinect .skeleton file' in e for e in errors)


def case_visualize_an_annotation_file_without_samples(ws, tmp, capsys):
    (tmp / 'none.pkl').write_bytes(pickle.dumps([]))
    fails(capsys, visualize.main, ['--input', str(tmp / 'none.pkl'), '--out', str(tmp / 'x.gif')],
          match=['none.pkl: holds no samples'])


def case_ensemble_with_a_cut_preprocessed_file(ws, tmp, capsys):
    (tmp / 'd' / 'ntu').mkdir(parents=True)
    (tmp / 'd' / 'ntu' / 'NTU60_CS.npz').write_bytes((ws / 'data' / 'NTU60_CS.npz').read_bytes()[:2000])
    fails(capsys, ensemble.main, ['--datasets', 'ntu/xsub', '--joint-dir', str(ws / 'joint'), '--bone-dir',
                                  str(copy_run(ws, tmp)), '--data-dir', str(tmp / 'd')],
          match=['NTU60_CS.npz: not a readable preprocessed NTU file'])


def case_ensemble_score_file_of_scalars(ws, tmp, capsys):
    scores = pickle.loads((ws / 'joint' / 'epoch1_test_score.pkl').read_bytes())
    (tmp / 'epoch1_test_score.pkl').write_bytes(pickle.dumps({name: 1.0 for name in scores}))
    shutil.copy(ws / 'joint' / 'config.yaml', tmp / 'config.yaml')
    fails(capsys, ensemble.main, ['--joint-dir', str(tmp), '--bone-dir', str(ws / 'joint')],
          match=[f'{tmp / "epoch1_test_score.pkl"}: a score of shape () per sample'])


def case_ensemble_config_without_its_test_split(ws, tmp, capsys):
    shutil.copy(ws / 'joint' / 'epoch1_test_score.pkl', tmp)
    (tmp / 'config.yaml').write_text('feeder: feeders.feeder_ntu.Feeder\n')
    fails(capsys, ensemble.main, ['--joint-dir', str(tmp), '--bone-dir', str(ws / 'joint')],
          match=['config.yaml: test_feeder_args do not name the test split', "'data_path'"])


def case_describe_answers_saved_as_utf16(ws, tmp, capsys):
    (tmp / 'answers.txt').write_bytes(answers(['wave', 'clap']).encode('utf-16'))
    fails(capsys, describe.main, ['parse', '--label-map', str(ws / 'labels.txt'), '--answers',
                                  str(tmp / 'answers.txt'), '--out', str(tmp / 'out')],
          match=['answers.txt: not UTF-8 text'])
    assert not (tmp / 'out').exists()


def case_show_prompts_runs(ws, tmp, capsys):
    shown = command(['-m', 'text.show_prompts', 'ucla', '1'])
    assert shown.returncode == 0 and shown.stdout.startswith('label 1: ')
    unknown = command(['-m', 'text.show_prompts', 'custom', '0'])
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    last_error_line(unknown.stderr, ['the custom dataset has no descriptions in text/', '--text-dir'])


def case_reproduce_with_a_missing_annotation_file(ws, tmp, capsys):
    refused(capsys, reproduce.main, ['--benchmark', 'custom-3d', '--out', str(tmp / 'out'), '--ann-file',
                                     str(tmp / 'nowhere.pkl'), '--num-class', '10', '--text-dir', str(ws / 'text')],
            match=['--ann-file', 'nowhere.pkl: no such file'])
    assert not (tmp / 'out').exists()


def case_reproduce_quick_on_your_data(ws, tmp, capsys):
    assert reproduce.main(['--benchmark', 'custom-3d', '--schedule', 'quick', '--out', str(tmp / 'out'),
                           '--ann-file', str(ws / 'ann.pkl'), '--num-class', '10', '--text-dir', str(ws / 'text'),
                           '--summary-only']) == 0
    assert (tmp / 'out' / 'summary.md').exists() and not (tmp / 'out' / 'data').exists()    # no generated NTU data


# ------------------------------------------------------------------------------------------------ not silent
def case_ensemble_with_every_weight_zero(ws, tmp, capsys):
    refused(capsys, ensemble.main, ['--joint-dir', str(ws / 'joint'), '--bone-dir', str(copy_run(ws, tmp)),
                                    '--weights', '0', '0'], match=['every stream weighs 0'])


def case_ensemble_of_one_stream_twice(ws, tmp, capsys):
    os.symlink(ws / 'joint', tmp / 'bone')
    refused(capsys, ensemble.main, ['--joint-dir', str(ws / 'joint'), '--bone-dir', str(tmp / 'bone')],
            match=[f'--bone-dir {tmp / "bone"} is --joint-dir {ws / "joint"}: one stream given twice'])


def case_predict_ensemble_of_one_weights_file_twice(ws, tmp, capsys):
    config, weights = joint_config(ws), weights_of(ws / 'joint')
    refused(capsys, predict.main, ['--config', config, '--weights', weights, '--config', config, '--weights', weights,
                                   '--input', str(ws / 'raw')], match=['--weights', 'one stream given twice'])


def case_predict_flag_given_twice(ws, tmp, capsys):
    refused(capsys, predict.main, ['--config', joint_config(ws), '--weights', weights_of(ws / 'joint'), '--input',
                                   str(ws / 'raw'), '--top', '2', '--top', '3'], match=['--top given twice'])


def case_predict_fusion_weight_not_finite(ws, tmp, capsys):
    refused(capsys, predict.main, ['--config', joint_config(ws), '--weights', weights_of(ws / 'joint'), '--input',
                                   str(ws / 'raw'), '--alpha', 'nan'], match=['--alpha nan: expected a finite number'])


def case_more_synthetic_ucla_classes_than_there_are(ws, tmp, capsys):
    refused(capsys, synthetic.main, ['ucla', '--out', str(tmp / 'data'), '--classes', '20'],
            match=['--classes 20: ucla data has 1 to 10 classes'])
    assert not (tmp / 'data').exists()


def case_reproduce_negative_seed(ws, tmp, capsys):
    refused(capsys, reproduce.main, ['--schedule', 'quick', '--out', str(tmp / 'out'), '--seeds', '1', '-1'],
            match=['--seeds 1 -1: expected seeds in 0 .. 2**32 - 1'])


CASES = [value for name, value in sorted(globals().items()) if name.startswith('case_')]


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize('case', CASES, ids=[c.__name__[5:] for c in CASES])
def test_bad_tool_input(case, ws, tmp_path, capsys):
    before = digest(ws)
    case(ws, tmp_path, capsys)
    assert digest(ws) == before, 'an input file changed'
