"""matplotlib without a display, and figures saved whole (lstbase.files)."""
from lstbase.files import atomic_write


def pyplot():
    """matplotlib.pyplot on the Agg backend: figures are written to files, on machines without a display too."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path, dpi=100):
    """Write `fig` to `path` as a PNG and close it."""
    atomic_write(path, lambda f: fig.savefig(f, format='png', dpi=dpi))
    pyplot().close(fig)
