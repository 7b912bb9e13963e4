"""Writing files safely: a staging name beside the target, then an atomic rename."""
from __future__ import annotations

import os
import secrets
from typing import Optional


def staging_path(path: str, suffix: str = ".tmp") -> str:
    """A fresh hidden name beside `path` (same folder, so that os.replace onto `path` is atomic):
    `.NAME.<random><suffix>`. Create it with open(..., "xb"): it then follows the umask."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.{secrets.token_hex(4)}{suffix}")


def atomic_write(path: str, data: bytes | str) -> None:
    """Write a file so that readers see either the old content or the new, never half of it."""
    tmp = staging_path(path)
    try:
        with open(tmp, "xb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def output_name(model: str, postprocess: str = "ppi", assign: str = "nearest") -> str:
    """The model part of output names: the model's name, then each setting that is not the default
    (`M`, `M_nms`, `M_unique`, `M_nms_unique`), so that runs with other settings do not overwrite
    each other's drawings. Filters (min score, people, parts) do not change the name."""
    return "_".join([model] + [v for v, default in ((postprocess, "ppi"), (assign, "nearest")) if v != default])


def output_path(image: str, model: str, output_dir: Optional[str], suffix: str = ".jpg") -> str:
    """`X_M.jpg` beside the input X (or in output_dir) for model M (see `output_name` for settings)."""
    folder = output_dir if output_dir else os.path.dirname(os.path.abspath(image))
    return os.path.join(folder, f"{os.path.basename(image)}_{model}{suffix}")
