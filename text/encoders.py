"""Registry of text encoders usable as LST heads.

Each entry names the width of the encoder's output feature; the skeleton model sizes its linear head from it.
"""

TEXT_WIDTHS = {
    'ViT-B/32': 512,
    'ViT-B/16': 512,
    'ViT-L/14': 768,
    'ViT-L/14@336px': 768,
    'RN50x16': 768,
    'RN50x64': 1024,
    'all-MiniLM-L6-v2': 384,
}


def text_width(name):
    """Output width of the text encoder called `name`."""
    try:
        return TEXT_WIDTHS[name]
    except KeyError:
        raise ValueError(
            f'unknown text encoder head {name!r}; known heads: {", ".join(TEXT_WIDTHS)}') from None
