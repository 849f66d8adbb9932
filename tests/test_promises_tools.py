"""Issue 31, the tools' part: every tool keeps every promise of README and docs/reference.md. Each test runs the real
command on small generated data: what it refused, warned about or went on with, and its exit status."""
import contextlib
import csv
import importlib.metadata
import io
import json
import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from bad_inputs import command, config, fails, make_workspace, train
from preprocess import annotations, convert, video
from tools_helpers import ROOT, seeded_weights

import extract_pose  # noqa: E402  (tools/ is on the path through tools_helpers)
import predict  # noqa: E402
import visualize  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """The bad-input workspace: an LST joint stream trained one epoch on tiny NTU data (joint/), raw NTU files
    (raw/), NW-UCLA files (ucla/all_sqe/), descriptions (text/)."""
    base = make_workspace(tmp_path_factory.mktemp('promises_tools'))
    convert.main(['ntu-raw', '--dataset', 'ntu60', '--input', str(base / 'raw'), '--out', str(base / 'ann.pkl')])
    return base


def run_predict(capsys, ws, *argv, format='table'):
    """predict with the joint stream, as its command line runs: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = predict.main(['--config', str(ws / 'joint' / 'config.yaml'), '--weights', str(ws / 'joint' / 'best.pt'),
                         '--format', format] + [str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sample_names(path, split=None):
    samples, splits = annotations.load(path)
    return [a['frame_dir'] for a in annotations.select(samples, splits, split, path)]


def write_annotations(path, samples):
    path.write_bytes(pickle.dumps(samples))
    return path


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


# ------------------------------------------------------------------------------------------------ annotation files
def test_predict_names_the_file_and_the_sample_of_each_row(ws, capsys):
    ann, names = ws / 'ann.pkl', sample_names(ws / 'ann.pkl')
    code, table, _ = run_predict(capsys, ws, '--input', ann, '--top', 1)
    heads = [line.split('  (true: ')[0] for line in table.splitlines() if not line.startswith(' ')]
    assert code == 0 and heads == [f'{ann}:{name}' for name in names]
    _, out, _ = run_predict(capsys, ws, '--input', ann, '--top', 1, format='csv')
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r['file'], r['sample']) for r in rows] == [(str(ann), name) for name in names]
    _, out, _ = run_predict(capsys, ws, '--input', ann, format='json')
    assert [(r['file'], r['sample']) for r in json.loads(out)] == [(str(ann), name) for name in names]


def test_a_bad_sample_of_an_annotation_file_is_its_own_line(ws, tmp_path, capsys):
    samples, _ = annotations.load(ws / 'ann.pkl')
    bad = samples[2]['frame_dir']
    samples[2] = dict(samples[2], keypoint=np.zeros_like(samples[2]['keypoint']))
    ann = write_annotations(tmp_path / 'ann.pkl', samples)
    code, out, err = run_predict(capsys, ws, '--input', ann, format='json')
    records = json.loads(out)
    assert code == 1 and [r['sample'] for r in records if 'scores' in r] == [a['frame_dir'] for a in samples
                                                                            if a['frame_dir'] != bad]
    assert [(r['file'], r['sample'], r['error']) for r in records if 'error' in r] == [
        (str(ann), bad, f'{ann}:{bad}: every frame is zero (no skeleton)')]
    assert f'error: {ann}:{bad}: every frame is zero' in err


def test_predict_and_visualize_pick_samples_of_an_annotation_file(ws, tmp_path, capsys):
    ann, names = ws / 'ann.pkl', sample_names(ws / 'ann.pkl')
    _, out, _ = run_predict(capsys, ws, '--input', ann, '--samples', names[3], names[1], format='json')
    assert [r['sample'] for r in json.loads(out)] == [names[3], names[1]]
    _, out, _ = run_predict(capsys, ws, '--input', ann, '--split', 'xview_val', format='json')
    assert [r['sample'] for r in json.loads(out)] == sample_names(ann, 'xview_val')
    code, out, err = run_predict(capsys, ws, '--input', ann, '--samples', names[0], 'nobody')
    assert code == 1 and out == '' and f"error: --samples nobody: no such sample in {ann}; it has 8: " \
                                      f"'{names[0]}', '{names[1]}'" in err
    frames = {a['frame_dir']: int(a['keypoint'].any(axis=(0, 2, 3)).sum()) for a in annotations.load(ann)[0]}
    longest = max(names, key=frames.get)
    assert frames[longest] != frames[names[0]]                  # drawing the first sample would be seen
    assert visualize.main(['--input', str(ann), '--samples', longest, '--out', str(tmp_path / 'x.gif')]) == 0
    assert capsys.readouterr().out.strip().endswith(f'({frames[longest]} frames)')
    fails(capsys, visualize.main, ['--input', str(ann), '--samples', 'nobody', '--out', str(tmp_path / 'y.gif')],
          match=['--samples nobody: no such sample', f"'{names[0]}'"])
    assert not (tmp_path / 'y.gif').exists()


# ------------------------------------------------------------------------------------------------ true labels
def custom_config(folder, layout, dims, num_point, num_class=4):
    """A CTR-GCN config of your own skeletons (the pose feeder), seeded weights: (config, weights)."""
    settings = yaml.safe_load(open(os.path.join(ROOT, 'config', 'custom', 'ctrgcn_joint_2d.yaml')))
    for split in ('train', 'test'):
        settings[f'{split}_feeder_args'].update(layout=layout, dims=dims, window_size=16)
    settings['model_args'].update(num_class=num_class, num_point=num_point, graph_args=dict(layout=layout))
    (folder / f'{layout}.yaml').write_text(yaml.safe_dump(settings))
    config = str(folder / f'{layout}.yaml')
    return config, seeded_weights(config, folder / f'{layout}.pt')


def test_a_truth_only_where_the_label_is_the_models(ws, tmp_path, capsys):
    skeleton = sorted((ws / 'raw').iterdir())[0]
    config, weights = custom_config(tmp_path, 'ntu', 3, 25)
    capsys.readouterr()
    assert predict.main(['--config', config, '--weights', weights, '--input', str(skeleton), '--format', 'json']) == 0
    assert [r['true_label'] for r in json.loads(capsys.readouterr().out)] == [None]    # NTU's action, not its class
    samples, _ = annotations.load(ws / 'ann.pkl')
    unlabelled = write_annotations(tmp_path / 'extracted.pkl', [dict(a, label=0, frame_dir=f'clip{k}')  # as extract_pose
                                                               for k, a in enumerate(samples)])
    code, table, _ = run_predict(capsys, ws, '--input', unlabelled, '--top', 1)
    assert code == 0 and table.count(str(unlabelled)) == len(samples) and '(true: ' not in table
    _, table, _ = run_predict(capsys, ws, '--input', ws / 'ann.pkl', '--top', 1)
    assert table.count('(true: ') == len(samples)                                      # a labelled file's truth


# ------------------------------------------------------------------------------------------------ .npy of 2-D keypoints
def test_npy_of_2d_keypoints_reads_x_y_score_in_pixels_of_img_shape(tmp_path, capsys):
    config, weights = custom_config(tmp_path, 'coco', 2, 17, num_class=3)
    rng = np.random.default_rng(0)
    keypoint = rng.uniform(0, 100, size=(1, 20, 17, 2)).astype(np.float32)
    score = rng.uniform(0, 1, size=(1, 20, 17)).astype(np.float32)
    sample = dict(frame_dir='s', total_frames=20, keypoint=keypoint, img_shape=(120, 160))
    write_annotations(tmp_path / 'scored.pkl', [dict(sample, keypoint_score=score)])
    write_annotations(tmp_path / 'unscored.pkl', [sample])
    np.save(tmp_path / 'scored.npy', np.concatenate([keypoint, score[..., None]], -1).transpose(3, 1, 2, 0))
    np.save(tmp_path / 'unscored.npy', keypoint.transpose(3, 1, 2, 0))
    inputs = [str(tmp_path / f'{name}.{kind}') for name in ('scored', 'unscored') for kind in ('pkl', 'npy')]
    argv = ['--config', config, '--weights', weights, '--format', 'json', '--input', *inputs]
    capsys.readouterr()
    assert predict.main(argv + ['--img-shape', '120', '160']) == 0
    scores = {os.path.basename(r['file']): r['scores'] for r in json.loads(capsys.readouterr().out)}
    assert scores['scored.npy'] == scores['scored.pkl'] and scores['unscored.npy'] == scores['unscored.pkl']
    assert scores['scored.npy'] != scores['unscored.npy']
    assert predict.main(argv) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith('error: ')]
    assert err == [f'error: {tmp_path / name}.npy: 2-D keypoints in pixels are read with the size of their image, '
                   f'which a .npy cannot hold: give --img-shape HEIGHT WIDTH' for name in ('scored', 'unscored')]
    write_annotations(tmp_path / 'deep.pkl', [dict(sample, keypoint=rng.normal(size=(1, 20, 17, 3)))])
    assert predict.main(['--config', config, '--weights', weights, '--input', str(tmp_path / 'deep.pkl')]) == 1
    assert f'error: {tmp_path / "deep.pkl"}:s: 3-D keypoints, but the model of {config} reads 2-D ones' in \
        capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ videos
def someone_everywhere(rgb):
    """An estimator that sees the same person in every frame."""
    image = np.tile([0.5, 0.5, 0.0, 0.9], (video.NUM_LANDMARKS, 1)).astype(np.float32)
    return video.Landmarks(image, np.zeros((video.NUM_LANDMARKS, 3), np.float32))


def cut_video(path, frames=72, kept=0.5):
    """An MJPG .avi whose header says `frames` frames, its bytes cut after `kept` of them (as a broken download)."""
    cv2 = pytest.importorskip('cv2')
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'MJPG'), 10, (64, 48))
    for t in range(frames):
        writer.write(np.full((48, 64, 3), 100 + t, np.uint8))
    writer.release()
    path.write_bytes(path.read_bytes()[:int(path.stat().st_size * kept)])
    return str(path)


def test_extract_pose_warns_of_a_video_cut_short_and_keeps_its_frames(tmp_path, monkeypatch, capsys):
    clip = cut_video(tmp_path / 'clip.avi')
    monkeypatch.setattr(video, 'check_installed', lambda max_persons=2: None)
    monkeypatch.setattr(video, 'blazepose', lambda: contextlib.nullcontext(someone_everywhere))
    assert extract_pose.main(['--input', clip, '--out', str(tmp_path / 'ann.pkl'), '--max-persons', '1']) == 0
    (item,), _ = annotations.load(tmp_path / 'ann.pkl')
    decoded = item['total_frames']
    assert 3 <= decoded < 60
    assert f'warning: {clip}: {decoded} frames decoded, but its header says 72' in capsys.readouterr().err


BROKEN = 'raise AttributeError("\'FieldDescriptor\' object has no attribute \'label\'")\n'


@pytest.mark.parametrize('pose_module', [BROKEN, f'class Pose:\n    def __init__(self, **options):\n        {BROKEN}'],
                         ids=['on import', 'as the tracker starts'])
def test_a_pose_stack_that_fails_is_one_line_naming_protobuf_and_the_fix(tmp_path, pose_module):
    """MediaPipe under protobuf 7 (what `pip install onnx` brought) raises AttributeError building its graph (its own
    single-person tracker, --max-persons 1; several people need only its models and LiteRT)."""
    pytest.importorskip('cv2')
    package = tmp_path / 'site' / 'mediapipe' / 'python' / 'solutions'
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / '__init__.py').write_text('')
    (package / 'pose.py').write_text(pose_module)
    (tmp_path / 'clip.mp4').write_bytes(b'')
    env = dict(os.environ, PYTHONPATH=f'{tmp_path / "site"}{os.pathsep}{ROOT}', OMP_NUM_THREADS='1')
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'extract_pose.py'), '--input',
                             str(tmp_path / 'clip.mp4'), '--out', str(tmp_path / 'ann.pkl'), '--max-persons', '1'],
                            capture_output=True,
                            text=True, env=env)
    lines = [line for line in result.stderr.replace('\r', '\n').splitlines() if line and not line.startswith('videos')]
    assert result.returncode == 2 and lines == [
        "error: pose estimation: mediapipe is installed but fails (AttributeError: 'FieldDescriptor' object has no "
        f"attribute 'label'; protobuf {importlib.metadata.version('protobuf')} is installed): {video.INSTALL_HINT}"]
    assert not (tmp_path / 'ann.pkl').exists()


# ------------------------------------------------------------------------------------------------ training report
def test_training_curves_put_cross_entropy_beside_cross_entropy(ws, tmp_path, monkeypatch):
    """The joint stream's real history: its training loss is cross-entropy + loss_alpha x language loss, its val loss
    a cross-entropy; the figure compares the two cross-entropies and shows the language loss on its own axis."""
    from engine import report
    (entry,) = json.loads((ws / 'joint' / 'metrics.json').read_text())['history']
    alpha = yaml.safe_load((ws / 'joint' / 'config.yaml').read_text())['loss_alpha']
    assert entry['train_loss'] == pytest.approx(entry['train_cross_entropy'] + alpha * entry['train_language_loss'])
    figures = []
    monkeypatch.setattr(report, 'save_png', lambda fig, path: figures.append(fig))
    report.save_curves_png(str(tmp_path / 'curves.png'), [entry])
    axes = figures[0].axes
    assert [ax.get_ylabel() for ax in axes] == ['cross-entropy', 'language loss (contrastive, before loss_alpha)',
                                                'accuracy (%)']
    assert [list(line.get_ydata()) for line in axes[0].lines] == [[entry['train_cross_entropy']], [entry['val_loss']]]
    assert [list(line.get_ydata()) for line in axes[1].lines] == [[entry['train_language_loss']]]
    assert all(ax.get_xlabel() == 'epoch' for ax in axes)


@pytest.fixture
def torch_threads():
    """Restores torch's thread count, which the trainer sets for the whole process."""
    import torch
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize('omp, load, threads, why', [
    (None, 1.2, 1, '2 CPUs for this process, a load of 1.2 from other work; OMP_NUM_THREADS=N sets it'),
    (None, 0.3, 2, '2 CPUs for this process, a load of 0.3 from other work'),
    ('1', 0.0, 1, 'OMP_NUM_THREADS=1')])
def test_the_trainer_on_the_cpu_picks_and_logs_its_threads(ws, tmp_path, monkeypatch, torch_threads, omp, load,
                                                           threads, why):
    import torch
    monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, 'getloadavg', lambda: (load, load, load), raising=False)
    if omp is None:
        monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    else:
        monkeypatch.setenv('OMP_NUM_THREADS', omp)
        torch.set_num_threads(int(omp))                                       # as torch reads it when it starts
    work = tmp_path / 'test'
    train('ntu', '--config', ws / 'joint' / 'config.yaml', '--work-dir', work, '--phase', 'test', '--weights',
          ws / 'joint' / 'best.pt', '--device', 'cpu')
    assert f'threads: {threads} ({why}' in (work / 'log.txt').read_text()
    assert torch.get_num_threads() == threads


# ------------------------------------------------------------------------------------------------ the test suite
def test_no_test_bounds_wall_clock_time():
    """A loaded machine makes anything slow: time belongs in bench/, a test checks what happened."""
    import glob
    import re
    bound = re.compile(r'time\.(time|perf_counter|monotonic)\(\) *- *\w+ *<')
    found = [f'{os.path.basename(path)}:{number}' for path in sorted(glob.glob(os.path.join(ROOT, 'tests', '*.py')))
             for number, line in enumerate(open(path), start=1) if bound.search(line)]
    assert found == []


def test_real_data_beside_the_clone_is_used_only_when_it_is_whole(tmp_path, monkeypatch):
    import shared_data
    partial = tmp_path / 'all_sqe'
    partial.mkdir()
    (partial / 'a01_s01_e00_v01.json').write_text('{}')
    (tmp_path / 'clip.avi').write_bytes(b'another video')
    monkeypatch.setattr(shared_data, 'REAL_UCLA', str(partial))
    monkeypatch.setattr(shared_data, 'CLIP', str(tmp_path / 'clip.avi'))
    assert not shared_data.whole_nw_ucla() and not shared_data.the_ntu_clip()


def test_the_suite_pins_the_threads_that_runs_compared_bit_for_bit_use():
    assert os.environ.get('OMP_NUM_THREADS', '').isdigit()
