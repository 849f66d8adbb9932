"""text/clip.py against OpenAI's own code: token ids, text-tower outputs, checkpoint formats, files and offline use."""
import copy
import hashlib
import os
import pickle
import random
import urllib.error
import warnings

import pytest
import torch

from text import clip, encoders
from text_reference import load_openai, real_vocab, vocab

TEXTS = ['a photo of a cat', 'Drink water, HAND grasps cup!!', 'naïve café — résumé 😀', '  lots   of\n\tspace ',
         '&amp;lt;b&amp;gt; html &quot;quotes&quot; &amp;amp;',
         'a < b &amp;lt; c', "it's we're they'll I'd IT'S", '3.14159 and 2,000',
         '漢字とかな', 'مرحبا بالعالم', 'cafÃ© mojibake', '“curly” ‘quotes’', 'nbsp\u00a0ideographic\u3000zero\u200bwidth',
         'family 👨\u200d👩\u200d👧 flag 🇯🇵 skin 👍🏽', '<|startoftext|>special<|endoftext|>', '', '   ', 'x' * 200,
         'pick up with one hand, hand reaches to the floor and closes around the object']


def random_texts(count=40, seed=0):
    """Strings mixing ASCII, Latin-1, symbols, CJK, emoji and whitespace, as a fuzz of the tokenizer."""
    pool = (' \t\n' * 4 + 'abcdefghijklmnopqrstuvwxyzABCXYZ0123456789' * 2 + ".,;:!?'\"-_()[]{}<>/\\|@#$%^&*+=~`"
            + 'àéîõüßçñÆØÅ¡¿€£¥©®°±µ¶·' + '漢字かなカナ한글' + '😀🎉👍🏽❤️\u200d' + 'Ωπσ∑√∞≈≠')
    rng = random.Random(seed)
    return [''.join(rng.choice(pool) for _ in range(rng.randint(1, 60))) for _ in range(count)]


@pytest.fixture(scope='module', autouse=True)
def _vocab():
    with real_vocab():
        yield


def test_token_ids_equal_openai():
    reference = load_openai('simple_tokenizer').SimpleTokenizer(bpe_path=vocab())
    for text in TEXTS + random_texts():
        assert clip._tokenizer().encode(text) == reference.encode(text), repr(text)
    assert clip.tokenize('a photo of a cat')[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407, 0]
    tokens = clip.tokenize(TEXTS[:-2])
    assert tokens.dtype == torch.long and tokens.shape == (len(TEXTS) - 2, 77)
    assert clip.tokenize('a photo of a cat', context_length=10).shape == (1, 10)


def test_long_text_raises_or_is_truncated_as_openai():
    long = ' '.join(['word'] * 100)
    with pytest.raises(RuntimeError, match='too long for context length 77'):
        clip.tokenize(long)
    tokens = clip.tokenize([long, 'a photo of a cat'], truncate=True)
    assert tokens[0, 0] == 49406 and tokens[0, -1] == 49407 and (tokens[0, 1:-1] == 2653).all()
    assert tokens[1, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    exact = ' '.join(['word'] * 75)                                    # 75 + start + end = 77: fits untruncated
    assert clip.tokenize(exact)[0, -1] == 49407


def tiny_openai_clip(seed=0):
    """A small random CLIP built with OpenAI's model code (ViT visual tower, 2-layer 2-head text transformer)."""
    torch.manual_seed(seed)
    model = load_openai('model').CLIP(embed_dim=32, image_resolution=32, vision_layers=1, vision_width=64,
                                      vision_patch_size=16, context_length=77, vocab_size=49408,
                                      transformer_width=128, transformer_heads=2, transformer_layers=2)
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    return model.eval()


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    """The same tiny CLIP as a plain state dict, as a TorchScript archive (traced) and in half precision, as OpenAI
    publishes it; with the float32 OpenAI model whose encode_text each must reproduce."""
    model = tiny_openai_clip()
    folder = tmp_path_factory.mktemp('clip')
    torch.save(model.state_dict(), folder / 'plain.pt')
    half = copy.deepcopy(model)
    load_openai('model').convert_weights(half)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')                     # tracing warnings about the visual tower's checks
        for traced, file in ((model, 'jit.pt'), (half, 'half.pt')):
            image = torch.zeros(1, 3, 32, 32, dtype=traced.dtype)
            torch.jit.trace(traced, (image, clip.tokenize(TEXTS[:3]))).save(str(folder / file))
    return {'plain.pt': model, 'jit.pt': model, 'half.pt': half.float().eval()}, folder


@pytest.mark.parametrize('file', ['plain.pt', 'jit.pt', 'half.pt'])
def test_text_tower_equals_openai(checkpoints, file):
    references, folder = checkpoints
    ours = clip.load(str(folder / file))
    tokens = clip.tokenize(TEXTS[:-2] + random_texts(8), truncate=True)
    with torch.no_grad():
        expected = references[file].encode_text(tokens)
        assert (ours.encode_text(tokens) - expected).abs().max() < 1e-5
    assert not any(k.startswith('visual') for k in ours.state_dict())
    assert (ours.context_length, ours.text_projection.shape, len(ours.transformer.resblocks)) == (77, (128, 32), 2)


def test_bad_checkpoints_are_named(tmp_path):
    torch.save({'weight': torch.zeros(3)}, tmp_path / 'other.pt')
    with pytest.raises(ValueError, match=r'other.pt: not a CLIP checkpoint \(no text_projection'):
        clip.load(str(tmp_path / 'other.pt'))
    (tmp_path / 'junk.pt').write_text('not a checkpoint')
    with pytest.raises(ValueError, match='junk.pt: not a readable CLIP checkpoint'):
        clip.load(str(tmp_path / 'junk.pt'))
    with pytest.raises(FileNotFoundError, match=r"'ViT-B/99' is neither a published CLIP model \(RN50x16, .*ViT-B/32"):
        clip.load('ViT-B/99')


def publish(folder, name, source):
    """Lay `source` out as OpenAI's server does (<sha256>/<file>) and return its file:// address."""
    data = open(source, 'rb').read()
    sha = hashlib.sha256(data).hexdigest()
    (folder / sha).mkdir(parents=True, exist_ok=True)
    (folder / sha / name).write_bytes(data)
    return (folder / sha / name).as_uri()


def test_published_name_is_downloaded_checked_and_cached(checkpoints, tmp_path, monkeypatch):
    _, folder = checkpoints
    server, cache = tmp_path / 'server', tmp_path / 'cache'
    monkeypatch.setattr(clip, 'MODELS', {'ViT-B/32': publish(server, 'ViT-B-32.pt', folder / 'jit.pt')})
    monkeypatch.setattr(clip, 'VOCAB_URL', (server / 'vocab.gz').as_uri())
    (server / 'vocab.gz').write_bytes(open(vocab(), 'rb').read())
    monkeypatch.setattr(clip, 'CACHE_DIR', str(cache))
    monkeypatch.setattr(clip, 'REPO_CACHE_DIR', str(tmp_path / 'repo-cache'))
    monkeypatch.delenv('LST_CLIP_VOCAB')
    model = clip.load('ViT-B/32')
    assert sorted(os.listdir(cache)) == ['ViT-B-32.pt', clip.VOCAB_NAME]   # OpenAI's names, no partial files left
    tokens = clip.tokenize(TEXTS[:3])
    torch.testing.assert_close(model.encode_text(tokens), clip.load(str(folder / 'jit.pt')).encode_text(tokens))
    # a corrupted cached file is refused, not used
    (cache / 'ViT-B-32.pt').write_bytes(b'corrupt')
    with pytest.raises(ValueError, match='SHA256 does not match the published ViT-B/32 weights; delete it'):
        clip.load('ViT-B/32')


def test_download_checks_the_sha256_and_leaves_nothing_behind(tmp_path):
    source = tmp_path / 'file.bin'
    source.write_bytes(b'0123456789' * 1000)
    target = tmp_path / 'cache' / 'file.bin'
    with pytest.raises(ValueError, match='downloaded file has SHA256 .*, expected 00'):
        clip.download(source.as_uri(), str(target), '00' * 32)
    assert not (tmp_path / 'cache').exists()                       # the folder made for it goes too
    clip.download(source.as_uri(), str(target), hashlib.sha256(source.read_bytes()).hexdigest())
    assert target.read_bytes() == source.read_bytes()


def test_offline_without_cache_gives_one_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError('[Errno -3] Temporary failure in name resolution')
    monkeypatch.setattr(clip.urllib.request, 'urlopen', offline)
    monkeypatch.setattr(clip, 'CACHE_DIR', str(tmp_path))
    monkeypatch.setattr(clip, 'REPO_CACHE_DIR', str(tmp_path / 'repo-cache'))
    monkeypatch.delenv('LST_CLIP_VOCAB')
    with pytest.raises(FileNotFoundError) as error:
        encoders.load_text_encoder('ViT-B/32')
    message = str(error.value)
    for part in (f'the CLIP BPE vocabulary: put it at {tmp_path}/{clip.VOCAB_NAME}', clip.VOCAB_URL,
                 f'the CLIP ViT-B/32 weights: put it at {tmp_path}/ViT-B-32.pt', clip.MODELS['ViT-B/32'],
                 'Temporary failure in name resolution', 'LST_CLIP_VOCAB', '--text-weights',
                 "head: ['all-MiniLM-L6-v2']"):
        assert part in message
    assert os.listdir(tmp_path) == []
    clip._tokenizer.cache_clear()
    with pytest.raises(FileNotFoundError, match='CLIP BPE vocabulary: put it at'):
        clip.tokenize('a photo of a cat')
    monkeypatch.setenv('LST_CLIP_VOCAB', str(tmp_path / 'missing.gz'))
    with pytest.raises(FileNotFoundError, match='LST_CLIP_VOCAB=.*missing.gz: no such file'):
        clip.vocab_path()


def test_published_models_cover_the_clip_heads():
    assert set(clip.MODELS) == {name for name in encoders.TEXT_WIDTHS if name != encoders.MINILM}
    for name, url in clip.MODELS.items():
        assert len(clip.published_sha256(name)) == 64 and url.startswith('https://openaipublic.azureedge.net/clip/')


def test_a_torchscript_archive_is_read_without_running_it(tmp_path):
    """CLIP's archives are programs: their tensors are read out of the zip; a pickle asking for more is refused."""
    import zipfile
    from text import torchscript
    module = torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2)), torch.randn(1, 3))
    module.save(str(tmp_path / 'm.pt'))
    expected = torch.jit.load(str(tmp_path / 'm.pt')).state_dict()
    read = torchscript.read_state_dict(str(tmp_path / 'm.pt'))
    assert list(read) == list(expected) and all(torch.equal(read[k], expected[k]) for k in expected)
    marker = tmp_path / 'ran'

    class Payload:
        def __reduce__(self):
            return os.system, (f'touch {marker}',)

    with zipfile.ZipFile(tmp_path / 'm.pt') as good, zipfile.ZipFile(tmp_path / 'evil.pt', 'w') as evil:
        for name in good.namelist():
            evil.writestr(name, pickle.dumps(Payload(), protocol=2) if name.endswith('/data.pkl') else good.read(name))
    with pytest.raises(torchscript.RefusedArchive, match='asks for posix.system'):
        clip.read_checkpoint(str(tmp_path / 'evil.pt'))
    assert not marker.exists()
