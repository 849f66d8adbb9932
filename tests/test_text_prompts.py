"""Description files, prompt groups, the loader's errors, per-batch text sampling and the show_prompts CLI."""
import collections

import pytest
import torch

from text import clip, show_prompts
from text.prompts import PARTS, DescriptionError, class_names, load_label_map, load_prompts
from text_reference import real_vocab

FULL = 'head x;hand x;arm x;hip x;leg x;foot x'


@pytest.fixture(scope='module')
def _vocab():
    with real_vocab():
        yield


def test_real_descriptions_cover_every_class(_vocab):
    for dataset, count in (('ntu60', 60), ('ntu120', 120), ('ucla', 10)):
        prompts = load_prompts(dataset)
        assert prompts.num_class == count == len(set(prompts.names))
        assert all(len(candidates) >= 2 for candidates in prompts.synonyms)
        assert all(all(p[part] for part in PARTS) for p in prompts.parts)
        for g in (1, 2, 3, 4):                            # every prompt fits CLIP's context without truncation
            assert clip.tokenize(prompts.group(g)).shape == (count, 77)
        assert clip.tokenize([t for candidates in prompts.synonyms for t in candidates]).shape[1] == 77
    ntu60, ntu120 = load_prompts('ntu60'), load_prompts('ntu120')
    assert ntu60.names == ntu120.names[:60] and ntu60.group(4) == ntu120.group(4)[:60]
    assert ntu120.names[0] == 'drink water' and ntu120.names[119] == 'rock-paper-scissors'
    assert load_prompts('ucla').names[0] == 'pick up with one hand'


def write_set(folder, names=('a', 'b', 'c'), synonyms=None, parts=None, prefix='ucla'):
    synonyms = synonyms or [f'{n},{n} one,{n} two' for n in names]
    parts = parts or [f'{n};head h{n};hand x{n};arm y{n};hip z{n};leg u{n};foot v{n}' for n in names]
    for kind, lines in (('label_map', names), ('synonyms', synonyms), ('parts', parts)):
        (folder / f'{prefix}_{kind}.txt').write_text('\n'.join(lines) + '\n')
    return str(folder)


def test_prompt_groups(tmp_path):
    lines = ['a;head up.;hand open;arm out;hip still;leg bent;foot flat.',      # the release ends lines with '.'
             'b;head: down;hand: fist;arm: in;hip: turn;leg: up;foot: toe', f'c;{FULL}']
    prompts = load_prompts('ucla', write_set(tmp_path, parts=lines), num_class=3)
    assert prompts.names == ['a', 'b', 'c'] and prompts.synonyms[0] == ['a', 'a one', 'a two']
    assert [prompts.group(g)[0] for g in (1, 2, 3, 4)] == [
        'a, head up', 'a, hand open, arm out', 'a, hip still', 'a, leg bent, foot flat']
    assert prompts.group(2)[1] == 'b, hand: fist, arm: in'
    assert prompts.all_texts()[:3] == ['a', 'a one', 'a two'] and len(prompts.all_texts()) == 9 + 12
    with pytest.raises(ValueError, match='prompt group 0: expected 1..4'):
        prompts.group(0)


@pytest.mark.parametrize('dataset, count', [('ucla', 10), ('ntu60', 60)])
def test_shuffled_descriptions_move_every_class_and_keep_the_rest(dataset, count, tmp_path):
    from text.prompts import write_shuffled
    order = write_shuffled(dataset, str(tmp_path), seed=0)
    assert sorted(order) == list(range(count)) and all(k != source for k, source in enumerate(order))
    assert write_shuffled(dataset, str(tmp_path / 'again'), seed=0) == order        # the same every time
    shuffled, real = load_prompts(dataset, str(tmp_path)), load_prompts(dataset)
    assert shuffled.names == real.names and shuffled.synonyms == real.synonyms
    assert [p for p in shuffled.parts] == [real.parts[source] for source in order]
    assert shuffled.group(4)[0] == ', '.join([real.names[0], real.parts[order[0]]['leg'], real.parts[order[0]]['foot']])
    assert (tmp_path / 'shuffle.txt').read_text().splitlines()[1].startswith(f'0 {real.names[0]} <- descriptions of ')


def test_comma_space_join_gives_the_release_tokens(_vocab):
    """We join with ', ', the release with ','; CLIP tokenizes both the same way (MiniLM: see test_text_bank)."""
    prompts = load_prompts('ntu120')
    release = [name + ',' + ','.join([p['hand'], p['arm']]) for name, p in zip(prompts.names, prompts.parts)]
    assert torch.equal(clip.tokenize(prompts.group(2)), clip.tokenize(release))


def parts(line, bad):
    """Parts lines of classes a, b, c with class `line` (1-based) replaced by `bad`."""
    lines = [f'{n};{FULL}' for n in 'abc']
    lines[line - 1] = bad
    return dict(parts=lines)


@pytest.mark.parametrize('change, message', [
    (parts(1, 'a;head x;hand x;arm x;hip x;leg x'), r'ucla_parts.txt, line 1: 6 fields, expected 7: name;head'),
    (parts(2, 'b;head x;hand x;arm ;hip x;leg x;foot x'), r'ucla_parts.txt, line 2: the arm description is empty'),
    (parts(3, 'c;head x;hand x;arm x;hip;leg x;foot x'), r'ucla_parts.txt, line 3: the hip description is empty'),
    (parts(2, f'x;{FULL}'), r"ucla_parts.txt, line 2: class name 'x' does not match the label map's 'b'"),
    (dict(synonyms=['a,b1', 'b,,b2', 'c']), r'ucla_synonyms.txt, line 2: an empty synonym'),
    (dict(synonyms=['a', 'c', 'b']), r"ucla_synonyms.txt, line 2: class name 'c' does not match the label map's 'b'"),
    (dict(synonyms=['a', '', 'b', 'c']), r'ucla_synonyms.txt, line 2: empty line'),
    (dict(synonyms=['a', 'b']), r"ucla_synonyms.txt: 2 classes, expected 3 \(model_args num_class\) or 10"),
    (dict(names=list('abcdefghijk')), r"ucla_label_map.txt: 11 classes, expected 3 \(model_args num_class\) or 10"),
    # a class removed from all three files of a whole set: every later class would get another class's text
    (dict(names=list('abdefghij')), r"ucla_label_map.txt: 9 classes, expected 3 \(model_args num_class\) or 10"),
])
def test_description_errors_name_file_and_line(tmp_path, change, message):
    with pytest.raises(DescriptionError, match=message):
        load_prompts('ucla', write_set(tmp_path, **change), num_class=3)


def test_class_count_must_fit_the_dataset(tmp_path):
    folder = write_set(tmp_path, names=load_prompts('ucla').names)
    assert load_prompts('ucla', folder).num_class == 10
    with pytest.raises(DescriptionError, match=r'ntu120_label_map.txt: 10 classes, expected 120; one class per line'):
        load_prompts('ntu120', write_set(tmp_path, names=list('abcdefghij'), prefix='ntu120'))
    with pytest.raises(ValueError, match='the ucla descriptions cover 10 classes, the model has 12'):
        load_prompts('ucla', folder, num_class=12)
    with pytest.raises(ValueError, match="dataset 'kinetics': unknown; known: ntu60, ntu120, ucla, custom"):
        load_prompts('kinetics')
    (tmp_path / 'ucla_parts.txt').unlink()
    with pytest.raises(DescriptionError, match='description file .*ucla_parts.txt not found'):
        load_prompts('ucla', folder)


def test_a_whole_set_elsewhere_must_name_the_datasets_classes_in_order(tmp_path):
    real = load_prompts('ucla')
    names = list(real.names)
    assert load_prompts('ucla', write_set(tmp_path, names=names)).names == names      # a copy of the set loads
    names[3], names[4] = names[4], names[3]
    with pytest.raises(DescriptionError, match=f"ucla_label_map.txt, line 4: class name '{names[3]}' does not match"):
        load_prompts('ucla', write_set(tmp_path, names=names))


def test_sample_texts_draws_group0_per_sample(tmp_path):
    prompts = load_prompts('ucla', write_set(tmp_path, synonyms=['a,a1,a2,a3', 'b', 'c,c1']), num_class=3)
    labels = torch.tensor([0, 1, 2] * 200)
    groups = prompts.sample_texts(labels, generator=torch.Generator().manual_seed(0))
    assert len(groups) == 5 and all(len(g) == len(labels) for g in groups)
    for g in (1, 2, 3, 4):
        assert groups[g] == [prompts.group(g)[label] for label in labels.tolist()]
    drawn = collections.Counter(zip(labels.tolist(), groups[0]))
    assert {text for (label, text) in drawn if label == 0} == {'a', 'a1', 'a2', 'a3'}
    assert {text for (label, text) in drawn if label == 1} == {'b'}
    assert min(drawn[(0, t)] for t in ('a', 'a1', 'a2', 'a3')) > 25           # about 50 each: uniform
    again = prompts.sample_texts(labels, generator=torch.Generator().manual_seed(0))
    assert again[0] == groups[0]


def test_show_prompts_cli(capsys):
    show_prompts.main(['ntu120', 'Drink Water'])
    by_name = capsys.readouterr().out
    show_prompts.main(['ntu120', '0'])
    assert capsys.readouterr().out == by_name
    assert by_name.startswith('label 0: drink water\ngroup 0')
    assert 'group 2 (hand feature): drink water, hand ' in by_name
    with pytest.raises(SystemExit):
        show_prompts.main(['ucla', 'fly'])
    assert "'fly' is neither a label below 10 nor a class name of ucla" in capsys.readouterr().err


def test_without_part_text_the_part_groups_are_the_class_names():
    names_only, full = load_prompts('ucla', part_text=False), load_prompts('ucla')
    assert all(names_only.group(g) == full.names for g in (1, 2, 3, 4))
    assert names_only.synonyms == full.synonyms and full.group(1)[0].startswith(full.names[0] + ', head')


def test_class_names_name_every_class():
    assert class_names('ucla', 3) == load_label_map('ucla', None, 3)
    assert len(class_names('ntu120')) == 120                                  # without num_class: the whole set
    assert class_names('custom', 2) == ['class 0', 'class 1']                 # your classes, no label map given
