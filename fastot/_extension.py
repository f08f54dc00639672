"""Loads the compiled parts of fastot without ever failing the import.

``fastot._C`` holds the op schemas and the C++ CPU kernels; ``fastot._C_cuda``
adds the CUDA kernels under the same schemas. Both are loaded only when they
were built against the torch that is running (the build records its version in
``fastot/_build_info.py``): a mismatch gives one warning and the eager fallback,
never an undefined-symbol error or a crash.

The source checkout runs like the installed package: ``python -m fastot.train`` in the
clone root imports the checkout's ``fastot/``, so the build also places the compiled
extension and its build record there, and the top-level ``kernels/`` (installed as
``fastot.kernels``) is loaded under that name.

``STATUS`` records what loaded, from where, why anything did not, and the one command
that fixes it (``python -m fastot.info`` prints it). Importing this module loads the compiled
extensions; the Triton kernels load with :func:`load_triton`, after the ops they serve.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

PACKAGE_DIR = Path(__file__).resolve().parent


def _find_source_root() -> Path | None:
    """The checkout whose ``fastot/`` is imported, or None for an installed fastot."""
    root = PACKAGE_DIR.parent
    markers = (root / "setup.py", root / "csrc", root / "kernels" / "__init__.py")
    return root if all(p.exists() for p in markers) else None


SOURCE_ROOT = _find_source_root()

# The compiled parts' state: "not built", "built, not loaded", "loaded" or "disabled".
NOT_BUILT, NOT_LOADED, LOADED, DISABLED = "not built", "built, not loaded", "loaded", "disabled"


@dataclass
class Status:
    cpp: bool = False
    cuda: bool = False
    triton: bool = False
    state: str = NOT_BUILT
    why: dict[str, str] = field(default_factory=dict)
    # Per backend, the one command that makes it load ("" when none applies on this machine).
    fix: dict[str, str] = field(default_factory=dict)
    # Per loaded backend, the file or directory it was loaded from.
    origin: dict[str, str] = field(default_factory=dict)
    build: dict[str, object] = field(default_factory=dict)


STATUS = Status()


def _installed_from() -> Path | None:
    """The local directory pip installed fastot from (its PEP 610 direct_url.json), if any."""
    import importlib.metadata
    import json
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    try:
        text = importlib.metadata.distribution("fastot").read_text("direct_url.json")
        url = urlparse(json.loads(text or "{}").get("url", ""))
    except (importlib.metadata.PackageNotFoundError, ValueError, AttributeError):
        return None
    path = Path(url2pathname(url.path))
    return path if url.scheme == "file" and (path / "setup.py").is_file() else None


def rebuild_command(env: str = "") -> str:
    """The command that (re)builds the compiled kernels of the fastot being imported."""
    root = SOURCE_ROOT or _installed_from()
    pip = f"{env + ' ' if env else ''}pip install --no-build-isolation ."
    if root is None:
        return f"{pip}  (in your fastot clone)"
    return f"cd {shlex.quote(str(root))} && {pip}"


def _fail(backends: tuple[str, ...], why: str, fix: str) -> None:
    for name in backends:
        STATUS.why[name], STATUS.fix[name] = why, fix


def _load_compiled() -> None:
    try:
        from fastot import _build_info  # written by setup.py
    except ImportError:
        where = f"the source checkout {SOURCE_ROOT}" if SOURCE_ROOT else str(PACKAGE_DIR)
        why = f"not built: {where} has no compiled extension (no fastot/_build_info.py)"
        _fail(("cpp", "cuda"), why, rebuild_command())
        warnings.warn(
            f"fastot: {why}; using the eager backend. Fix: {rebuild_command()}", RuntimeWarning, stacklevel=3
        )
        return
    STATUS.state = NOT_LOADED
    STATUS.build = {k: getattr(_build_info, k) for k in dir(_build_info) if k.isupper()}
    built = str(_build_info.TORCH_VERSION)
    if not _same_torch(built, torch.__version__):
        why = (
            f"fastot's compiled kernels were built against torch {built} but torch "
            f"{torch.__version__} is running"
        )
        _fail(("cpp", "cuda"), why, rebuild_command())
        warnings.warn(
            f"{why}; using the eager backend. Rebuild them for this torch: {rebuild_command()}",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    module = _import_extension("cpp", "fastot._C")
    if module is None:
        STATUS.why["cuda"], STATUS.fix["cuda"] = STATUS.why["cpp"], STATUS.fix["cpp"]
        return
    STATUS.cpp, STATUS.state = True, LOADED
    if not _build_info.WITH_CUDA:
        STATUS.why["cuda"] = f"fastot was built without CUDA kernels ({_build_info.WHY_CUDA})"
        # Without a CUDA build of torch no fastot build can help.
        STATUS.fix["cuda"] = rebuild_command("FASTOT_CUDA=1") if torch.version.cuda else ""
        return
    if _import_extension("cuda", "fastot._C_cuda") is not None:
        STATUS.cuda = True


def _same_torch(built: str, running: str) -> bool:
    # The C++ ABI is only stable within one release: compare major.minor.patch, ignore local tags.
    from packaging.version import Version

    return Version(built).release == Version(running).release


def _import_extension(backend: str, name: str) -> ModuleType | None:
    """Import a compiled extension, recording why it did not load (with one warning)."""
    try:
        if importlib.util.find_spec(name) is None:
            why = (
                f"{PACKAGE_DIR / '_build_info.py'} records a build, but no compiled {name} "
                f"(fastot/{name.split('.')[-1]}.*.so) is beside it"
            )
            module = None
        else:
            module = importlib.import_module(name)
    except (ImportError, OSError) as e:
        why, module = f"{name} failed to load: {e}", None
    if module is None:
        _fail((backend,), why, rebuild_command())
        warnings.warn(
            f"fastot: {why}; using the eager backend. Fix: {rebuild_command()}", RuntimeWarning, stacklevel=4
        )
        return None
    STATUS.origin[backend] = str(module.__file__)
    return module


def _import_kernels() -> ModuleType:
    try:
        return importlib.import_module("fastot.kernels")
    except ModuleNotFoundError as e:
        if e.name != "fastot.kernels" or SOURCE_ROOT is None:
            raise
    # A checkout keeps them in the top-level kernels/ (pyproject's package-dir mapping installs
    # that directory as fastot.kernels): load it under the installed name.
    init = SOURCE_ROOT / "kernels" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "fastot.kernels", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastot.kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["fastot.kernels"]
        raise
    sys.modules["fastot"].kernels = module  # type: ignore[attr-defined]
    return module


def load_triton() -> None:
    """Import the Triton kernels (once), recording whether they loaded and why not.

    Called by ``fastot/__init__.py`` once the ops are defined: the kernels read the op
    modules (the Psi* kinds), which must not be half-initialised when they do.
    """
    if STATUS.state == DISABLED or STATUS.triton or "triton" in STATUS.why:
        return
    try:
        module = _import_kernels()
    except ImportError as e:
        STATUS.why["triton"] = f"Triton kernels unavailable: {e}"
        missing_triton = isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] == "triton"
        STATUS.fix["triton"] = 'pip install "triton>=3.2"' if missing_triton else rebuild_command()
        return
    STATUS.triton = True
    STATUS.origin["triton"] = str(Path(str(module.__file__)).parent)


if os.environ.get("FASTOT_DISABLE_EXTENSIONS", "0") == "1":
    STATUS.state = DISABLED
    _fail(
        ("cpp", "cuda", "triton"),
        "disabled by FASTOT_DISABLE_EXTENSIONS=1",
        "unset FASTOT_DISABLE_EXTENSIONS",
    )
else:
    _load_compiled()
