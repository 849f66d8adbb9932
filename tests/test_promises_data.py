"""Every tool keeps every promise, on the data side (issue 31): a file the tool did not name as its output is never
replaced, a surprising input is refused or warned about instead of trained on in silence, and a bad file among many
is its own line while the rest go on.

Every case runs the real command on small generated data, as the user runs it.
"""
import os
import shutil

import pytest

import tiny_ntu
from bad_inputs import ROOT, config, digest, fails, refused, train
from preprocess import annotations
from test_video import FakeEstimator, extract_pose, needs_cv2, using, write_video
from text import describe


def answers(names):
    return ''.join(f'### {n}\nSynonyms: {n} now\nHead: up\nHand: open\nArm: out\nHip: still\nLeg: bent\nFoot: flat\n'
                   for n in names)


def label_map(folder, names):
    """A label map and the LLM's answers for its classes in `folder`; (label map, answers)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / 'labels.txt').write_text(''.join(f'{name}\n' for name in names))
    (folder / 'answers.txt').write_text(answers(names))
    return str(folder / 'labels.txt'), str(folder / 'answers.txt')


def parse_argv(labels, answered, out, *more):
    return ['parse', '--label-map', labels, '--answers', answered, '--out', str(out), *more]


@pytest.fixture(scope='module')
def ws(tmp_path_factory):
    """Tiny NTU data (4 classes) and its descriptions, as tests/bad_inputs.py's workspace has them."""
    base = tmp_path_factory.mktemp('promises_data')
    tiny_ntu.write_npz(str(base / 'data' / 'NTU60_CS.npz'), train=16, test=8)
    tiny_ntu.write_descriptions(base / 'text')
    return base


# ------------------------------------------------------------------------------------------------ data loss
def test_describe_keeps_a_set_of_other_classes_in_its_out_folder(tmp_path, capsys):
    shipped = tmp_path / 'text'
    shutil.copytree(os.path.join(ROOT, 'text'), shipped, ignore=shutil.ignore_patterns('*.py', '__pycache__'))
    labels, answered = label_map(tmp_path / 'mine', ['wave', 'clap', 'jump'])
    before = digest(shipped)
    fails(capsys, describe.main, parse_argv(labels, answered, shipped, '--set', 'ntu120'),
          match=[f'{shipped / "ntu120_label_map.txt"} exists with other class names (120 lines; line 1: '
                 "'drink water' there, 'wave' now)", 'choose another --out'])
    assert digest(shipped) == before
    # the same classes again (a second run, other descriptions): the set is rewritten
    mine = tmp_path / 'my_text'
    assert describe.main(parse_argv(labels, answered, mine)) == 0
    (tmp_path / 'mine' / 'answers.txt').write_text(answers(['wave', 'clap', 'jump']).replace('up', 'down'))
    assert describe.main(parse_argv(labels, answered, mine)) == 0
    assert 'head down' in (mine / 'custom_parts.txt').read_text()


@needs_cv2
def test_extract_pose_keeps_a_label_map_of_other_classes(tmp_path, monkeypatch, capsys):
    for name in ('jump', 'run'):
        write_video(tmp_path / 'videos' / name / f'{name}1.avi', frames=3)
    text = tmp_path / 'mytext'
    text.mkdir()
    (text / 'custom_label_map.txt').write_text('wave\nclap\njump\n')           # the user's, for their descriptions
    argv = ['--input', str(tmp_path / 'videos'), '--out', str(text / 'custom.pkl'), '--labels-from-folders']
    with using(FakeEstimator(), monkeypatch):
        fails(capsys, extract_pose.main, argv, match=[f'{text / "custom_label_map.txt"} exists with other class '
                                                      f"names (3 lines; line 1: 'wave' there, 'jump' now)",
                                                      'choose another --out'])
        assert sorted(os.listdir(text)) == ['custom_label_map.txt']
        (text / 'custom_label_map.txt').write_text('jump\nrun\n')                 # the same classes: a run again
        assert extract_pose.main(argv) == 0
    assert len(annotations.load(text / 'custom.pkl')[0]) == 2


# ------------------------------------------------------------------------------------------------ silent
def test_a_class_named_twice_is_refused_where_names_are_read(ws, tmp_path, capsys):
    labels, answered = label_map(tmp_path, ['wave', 'clap', 'Wave'])
    where = [f'{labels}, lines 1 and 3', "class 'Wave' twice"]
    fails(capsys, describe.main, ['prompts', '--label-map', labels], match=where)
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out'), match=where)
    assert not (tmp_path / 'out').exists()
    text = tmp_path / 'text'
    shutil.copytree(ws / 'text', text)
    names = (text / 'ntu120_label_map.txt').read_text().splitlines()
    for kind in ('label_map', 'synonyms', 'parts'):                  # class 4 is class 2 again, in every file
        lines = (text / f'ntu120_{kind}.txt').read_text().splitlines()
        (text / f'ntu120_{kind}.txt').write_text('\n'.join(lines[:3] + [lines[1]]) + '\n')
    fails(capsys, train, 'ntu', '--config', config(ws, tmp_path, text_dir=text), '--work-dir', tmp_path / 'run',
          match=[f'{text / "ntu120_label_map.txt"}, lines 2 and 4', f'class {names[1]!r} twice'])
    assert not (tmp_path / 'run').exists()


@pytest.mark.parametrize('separator', [';', ','])
def test_a_class_name_holding_a_separator_is_refused_up_front(tmp_path, capsys, separator):
    name = f'wave{separator} then clap'
    labels, answered = label_map(tmp_path, ['jump', name])
    where = [f'{labels}, line 2', f'class name {name!r} holds {separator!r}']
    fails(capsys, describe.main, ['prompts', '--label-map', labels], match=where)
    fails(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out'), match=where)
    assert not (tmp_path / 'out').exists()


def test_describe_set_is_a_description_set_name(tmp_path, capsys):
    labels, answered = label_map(tmp_path, ['jump', 'wave'])
    refused(capsys, describe.main, parse_argv(labels, answered, tmp_path / 'out', '--set', 'a/b'),
            match=["--set: invalid choice: 'a/b'", 'custom', 'ntu120', 'ucla'])
    assert not (tmp_path / 'out').exists()
