"""Issue 31, the tools' part: every tool keeps every promise of README and docs/reference.md. Each test runs the real
command on small generated data: what it refused, warned about or went on with, and its exit status."""
import os
import shutil

import pytest
import yaml

from bad_inputs import command, config, fails, make_workspace, train
from tools_helpers import ROOT

import predict  # noqa: E402  (tools/ is on the path through tools_helpers)

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """The bad-input workspace: an LST joint stream trained one epoch on tiny NTU data (joint/), raw NTU files
    (raw/), NW-UCLA files (ucla/all_sqe/), descriptions (text/)."""
    return make_workspace(tmp_path_factory.mktemp('promises_tools'))


def test_convert_with_a_skipped_file_ends_with_status_1_and_the_count(ws, tmp_path):
    raw = tmp_path / 'raw'
    shutil.copytree(ws / 'raw', raw)
    (raw / 'S001C001P001R001A001.skeleton').write_text('')
    result = command(['-m', 'preprocess.convert', 'ntu-raw', '--dataset', 'ntu60', '--input', raw,
                      '--out', tmp_path / 'ann.pkl'])
    assert result.returncode == 1, result.stderr
    assert 'skipped: ' in result.stderr and 'S001C001P001R001A001.skeleton' in result.stderr
    assert '1 of 9 files skipped' in result.stderr and (tmp_path / 'ann.pkl').exists()


def test_demo_table_names_the_fusion_weights_not_model_weights(ws, tmp_path):
    """The demo's last line: the release's fusion weights (1 x joint + 1 x bone), not weights of a released model."""
    (tmp_path / 'demo' / 'ntu').mkdir(parents=True)
    shutil.copy(ws / 'data' / 'NTU60_CS.npz', tmp_path / 'demo' / 'ntu' / 'NTU60_CV.npz')   # its test split
    for stream in ('joint', 'bone'):
        shutil.copytree(ws / 'joint', tmp_path / 'work' / f'lst_{stream}')
    result = command([os.path.join('config', 'demo', 'summary.py'), tmp_path / 'work', tmp_path / 'demo'])
    assert result.returncode == 0, result.stderr
    last = [line for line in result.stdout.splitlines() if line.startswith('ensemble')][0]
    assert 'fusion weights' in last and 'released weights' not in last


def test_describe_parse_keeps_a_repeated_part_name_once(tmp_path):
    (tmp_path / 'labels.txt').write_text('wave\nclap\n')
    answers = ''.join(f'### {name}\nSynonyms: {name} now\nHead: The head tilts down.\nHand: hand: opens wide\n'
                      f'Arm: Arm - swings out\nHip: stays still\nLeg: The legs bend\nFoot: flat\n'
                      for name in ('wave', 'clap'))
    (tmp_path / 'answers.txt').write_text(answers)
    result = command(['-m', 'text.describe', 'parse', '--label-map', tmp_path / 'labels.txt', '--answers',
                      tmp_path / 'answers.txt', '--out', tmp_path / 'text'])
    assert result.returncode == 0, result.stderr
    first = (tmp_path / 'text' / 'custom_parts.txt').read_text().splitlines()[0]
    assert first == 'wave;head tilts down;hand opens wide;arm swings out;hip stays still;legs bend;foot flat'


def with_classes(ws, folder, num_class):
    """The joint stream's template config (not its run's config.yaml) with another class count."""
    settings = yaml.safe_load((ws / 'configs' / 'joint.yaml').read_text())
    settings['model_args']['num_class'] = num_class
    (folder / 'template.yaml').write_text(yaml.safe_dump(settings))
    return str(folder / 'template.yaml')


def test_a_label_map_of_other_classes_names_num_class(ws, tmp_path, capsys):
    text = tmp_path / 'text'
    shutil.copytree(ws / 'text', text)
    label_map = text / 'ntu120_label_map.txt'
    label_map.write_text(label_map.read_text() + ''.join(f'class {k}\n' for k in range(4, 10)))
    fails(capsys, train, 'ntu', '--config', config(ws, tmp_path, text_dir=str(text)), '--work-dir', tmp_path / 'run',
          match=['ntu120_label_map.txt: 10 classes, expected 4 (model_args num_class) or 120'])


def test_weights_with_another_config_than_their_runs_name_it(ws, tmp_path, capsys):
    weights, advice = ws / 'joint' / 'best.pt', f'use {ws / "joint" / "config.yaml"}, the config these weights were'
    template = with_classes(ws, tmp_path, 6)
    fails(capsys, predict.main, ['--config', template, '--weights', str(weights), '--input', str(ws / 'raw')],
          match=['does not fit', 'size mismatch', advice])
    fails(capsys, train, 'ntu', '--config', template, '--work-dir', tmp_path / 'test', '--phase', 'test',
          '--weights', weights, match=['size mismatch', advice])


def test_predict_warns_when_the_configs_text_dir_is_gone(ws, tmp_path, capsys):
    settings = yaml.safe_load((ws / 'joint' / 'config.yaml').read_text())
    settings['text_dir'] = str(tmp_path / 'gone')
    (tmp_path / 'config.yaml').write_text(yaml.safe_dump(settings))
    capsys.readouterr()
    assert predict.main(['--config', str(tmp_path / 'config.yaml'), '--weights', str(ws / 'joint' / 'best.pt'),
                         '--input', str(ws / 'raw')]) == 0
    captured = capsys.readouterr()
    assert f'warning: no class names (text_dir {tmp_path / "gone"} not found)' in captured.err
    assert '1. class ' in captured.out
