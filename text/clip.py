"""OpenAI CLIP's text side, written for this project: the byte-level BPE tokenizer and the text transformer.

API as OpenAI's package: `tokenize(texts, context_length=77, truncate=False)` and `load(name_or_path)` returning a
module with `encode_text(tokens)`, equal to OpenAI's on the same weights (tests/test_text_clip.py). Only the text
tower is built, in float32; the visual tower of a checkpoint is dropped.
Weights: a published name (looked up in ~/.cache/clip under OpenAI's file name, else downloaded with its SHA256
checked) or a path to an OpenAI checkpoint (TorchScript archive or plain state dict, e.g. a fine-tuned CLIP).
The BPE vocabulary: $LST_CLIP_VOCAB, else <repo>/.cache/clip (where `make test` puts it), else ~/.cache/clip,
else downloaded (weights: the two caches, else downloaded). Offline with nothing cached, one error lists
what is missing and where to put it; the offline encoder `all-MiniLM-L6-v2` (model head: ['all-MiniLM-L6-v2'])
needs no download.
"""
import functools
import gzip
import hashlib
import html
import os
import urllib.request
from collections import OrderedDict

import ftfy
import regex
import torch
import torch.nn as nn
from tqdm import tqdm

from lstbase.files import atomic_path
from lstbase.safe_load import is_torchscript, load_torch
from text import torchscript

_BASE = 'https://openaipublic.azureedge.net/clip/models'
MODELS = {
    'RN50x16': f'{_BASE}/52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa/RN50x16.pt',
    'RN50x64': f'{_BASE}/be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c/RN50x64.pt',
    'ViT-B/32': f'{_BASE}/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt',
    'ViT-B/16': f'{_BASE}/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt',
    'ViT-L/14': f'{_BASE}/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt',
    'ViT-L/14@336px': f'{_BASE}/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt',
}
VOCAB_NAME = 'bpe_simple_vocab_16e6.txt.gz'
VOCAB_URL = f'https://github.com/openai/CLIP/raw/main/clip/{VOCAB_NAME}'
VOCAB_SHA256 = '924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a'
CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'clip')
# Where `make test` puts the vocabulary; looked at before the user's cache, so tests and training find the same files.
REPO_CACHE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '.cache', 'clip')


def cached(file_name):
    """The first existing copy of `file_name` in REPO_CACHE_DIR, CACHE_DIR; else its place in CACHE_DIR."""
    for folder in (REPO_CACHE_DIR, CACHE_DIR):
        path = os.path.join(folder, file_name)
        if os.path.exists(path):
            return path
    return os.path.join(CACHE_DIR, file_name)
SOT, EOT = '<|startoftext|>', '<|endoftext|>'


def published_sha256(name):
    if name not in MODELS:
        raise ValueError(f'unknown CLIP model {name!r}; published models: {", ".join(MODELS)}')
    return MODELS[name].split('/')[-2]


# ------------------------------------------------------------------------------------------------ files
def sha256_of(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def download(url, target, sha256=None):
    """Fetch `url` to `target` with a progress bar; verify the SHA256; write atomically."""
    digest = hashlib.sha256()
    with atomic_path(target) as tmp, open(tmp, 'wb') as out:
        with urllib.request.urlopen(url, timeout=30) as source:
            total = int(source.headers.get('Content-Length') or 0)
            with tqdm(total=total, unit='iB', unit_scale=True, desc=os.path.basename(target)) as bar:
                for block in iter(lambda: source.read(1 << 20), b''):
                    out.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if sha256 and digest.hexdigest() != sha256:
            raise ValueError(f'{url}: downloaded file has SHA256 {digest.hexdigest()}, expected {sha256}')
    return target


def vocab_file():
    """(what, path, url, sha256) of the BPE vocabulary: $LST_CLIP_VOCAB, else OpenAI's file in the caches."""
    env = os.environ.get('LST_CLIP_VOCAB')
    if env:
        if not os.path.isfile(env):
            raise FileNotFoundError(f'LST_CLIP_VOCAB={env}: no such file (expected the CLIP vocabulary {VOCAB_NAME})')
        return 'the CLIP BPE vocabulary', env, None, None
    return 'the CLIP BPE vocabulary', cached(VOCAB_NAME), VOCAB_URL, VOCAB_SHA256


def weights_file(name):
    url = MODELS[name]
    return f'the CLIP {name} weights', cached(os.path.basename(url)), url, published_sha256(name)


def fetch(files):
    """Paths of `files` [(what, path, url, sha256)], downloading the missing ones; one error naming all that fail."""
    missing = []
    for what, path, url, sha256 in files:
        if not os.path.exists(path):
            try:
                download(url, path, sha256)
            except OSError as exc:
                missing.append(f'  - {what}: put it at {path} (published at {url}; the download failed: {exc})')
    if missing:
        raise FileNotFoundError('CLIP files are missing and could not be downloaded:\n' + '\n'.join(missing) + '\n'
                           'Copy them there (the vocabulary can also be named by $LST_CLIP_VOCAB, a local CLIP '
                           'checkpoint by --text-weights PATH), or train with the offline text encoder instead: '
                           "model_args head: ['all-MiniLM-L6-v2'].")
    return [path for _, path, _, _ in files]


def vocab_path():
    return fetch([vocab_file()])[0]


def model_path(name):
    """The published weights of `name`, checksummed. The vocabulary is fetched with them: a text tower is of no use
    without its tokenizer, and offline a single error then lists every missing file."""
    path = fetch([vocab_file(), weights_file(name)])[1]
    if sha256_of(path) != published_sha256(name):
        raise ValueError(f'{path}: its SHA256 does not match the published {name} weights; delete it to download '
                           f'it again')
    return path


# ------------------------------------------------------------------------------------------------ tokenizer
@functools.lru_cache()
def byte_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable unicode characters."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
                 + list(range(ord('®'), ord('ÿ') + 1)))
    codes, extra = list(printable), 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def clean(text):
    text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r'\s+', ' ', text).strip().lower()


class Tokenizer:
    """CLIP's byte-level BPE: 49,152 merges over the byte alphabet, words end in '</w>'."""

    pattern = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"""
                            r"""[^\s\p{L}\p{N}]+""", regex.IGNORECASE)

    def __init__(self, path=None):
        with gzip.open(path or vocab_path()) as f:
            lines = f.read().decode('utf-8').split('\n')
        merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
        alphabet = list(byte_to_unicode().values())
        vocab = alphabet + [c + '</w>' for c in alphabet] + [''.join(m) for m in merges] + [SOT, EOT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {merge: i for i, merge in enumerate(merges)}
        self.cache = {SOT: SOT, EOT: EOT}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = list(token[:-1]) + [token[-1] + '</w>']
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda pair: self.ranks.get(pair, float('inf')))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        result = ' '.join(word)
        self.cache[token] = result
        return result

    def encode(self, text):
        to_unicode = byte_to_unicode()
        ids = []
        for token in self.pattern.findall(clean(text)):
            token = ''.join(to_unicode[b] for b in token.encode('utf-8'))
            ids.extend(self.encoder[piece] for piece in self.bpe(token).split(' '))
        return ids


@functools.lru_cache()
def _tokenizer():
    return Tokenizer()


def tokenize(texts, context_length=77, truncate=False):
    """LongTensor [len(texts), context_length]: start token, BPE ids, end token, zero padding."""
    if isinstance(texts, str):
        texts = [texts]
    tokenizer = _tokenizer()
    sot, eot = tokenizer.encoder[SOT], tokenizer.encoder[EOT]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [sot] + tokenizer.encode(text) + [eot]
        if len(ids) > context_length:
            if not truncate:
                raise RuntimeError(f'Input {text!r} is too long for context length {context_length}')
            ids = ids[:context_length]
            ids[-1] = eot
        result[i, :len(ids)] = torch.tensor(ids)
    return result


# ------------------------------------------------------------------------------------------------ text tower
class LayerNorm(nn.LayerNorm):
    """LayerNorm computed in float32 whatever the input's precision (as OpenAI's)."""

    def forward(self, x):
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(
            c_fc=nn.Linear(width, width * 4), gelu=QuickGELU(), c_proj=nn.Linear(width * 4, width)))
        self.ln_2 = LayerNorm(width)

    def forward(self, x, mask):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask.to(x.dtype))[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x, mask):
        for block in self.resblocks:
            x = block(x, mask)
        return x


class TextTransformer(nn.Module):
    """CLIP's text encoder: causal transformer, feature at the end token, linear projection."""

    SIZE_KEYS = ('text_projection', 'positional_embedding', 'token_embedding.weight', 'ln_final.weight')

    def __init__(self, embed_dim, context_length, vocab_size, width, heads, layers):
        super().__init__()
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.positional_embedding = nn.Parameter(torch.empty(context_length, width))
        self.transformer = Transformer(width, layers, heads)
        self.ln_final = LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, embed_dim))
        self.register_buffer('attn_mask', torch.full((context_length, context_length), float('-inf')).triu(1),
                             persistent=False)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)

    @classmethod
    def from_state_dict(cls, state_dict):
        """Sizes read off the weights, as OpenAI's build_model does; visual and other keys are ignored."""
        width = state_dict['ln_final.weight'].shape[0]
        layers = len({k.split('.')[2] for k in state_dict if k.startswith('transformer.resblocks.')})
        model = cls(embed_dim=state_dict['text_projection'].shape[1],
                    context_length=state_dict['positional_embedding'].shape[0],
                    vocab_size=state_dict['token_embedding.weight'].shape[0], width=width, heads=width // 64,
                    layers=layers)
        model.load_state_dict({k: state_dict[k] for k in model.state_dict()})     # copies cast fp16 to fp32
        return model

    def encode_text(self, tokens):
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2), self.attn_mask).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0]), tokens.argmax(-1)] @ self.text_projection

    forward = encode_text


def read_checkpoint(path):
    """State dict of an OpenAI checkpoint: a TorchScript archive (as published), read without running it
    (text/torchscript.py), or a plain state dict."""
    if is_torchscript(path):
        return torchscript.read_state_dict(path)
    state = load_torch(path, 'CLIP checkpoint')
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    return state


def load(name_or_path, device='cpu'):
    """OpenAI-style entry point: the text tower (with `encode_text`, float32, eval mode) of a CLIP model.

    A published name is taken from ~/.cache/clip or downloaded, and checksummed; a path is loaded as it is.
    """
    if name_or_path in MODELS:
        path = model_path(name_or_path)
    elif os.path.isfile(name_or_path):
        path = name_or_path
    else:
        raise FileNotFoundError(f'{name_or_path!r} is neither a published CLIP model ({", ".join(MODELS)}) '
                                f'nor an existing checkpoint file')
    state = read_checkpoint(path)
    missing = [key for key in TextTransformer.SIZE_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(f'{path}: not a CLIP checkpoint (no {", ".join(missing)})')
    return TextTransformer.from_state_dict(state).to(device).eval()
