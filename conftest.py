"""Repository-wide test setup: point VF_DATA_DIR at the shared data folder beside the
checkout when it exists (GSM8K and the Wordle lists), so no test needs the network."""

import os
from pathlib import Path

_shared = Path(__file__).resolve().parent.parent / "shared" / "data"
if "VF_DATA_DIR" not in os.environ and _shared.is_dir():
    os.environ["VF_DATA_DIR"] = str(_shared)
