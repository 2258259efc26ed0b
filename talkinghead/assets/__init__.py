"""Files that ship with the package: the demo portrait and speech, the fitted expression basis, the
mouth model (see LICENSES.md here). `ASSETS_DIR` is their one address."""

from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent
