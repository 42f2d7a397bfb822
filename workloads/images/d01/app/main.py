"""Day-1 demo app: the 'source' of the d01 images; d01.e1 edits the VERSION line to measure a rebuild."""

import sys

VERSION = "1"

if __name__ == "__main__":
    import numpy as np

    print(f"d01 app v{VERSION} python {sys.version.split()[0]} numpy {np.__version__} sum {int(np.arange(10).sum())}")
