"""Entry point of group ``verl.plugins``: verl imports this in EVERY process that imports verl.

So it must cost next to nothing. It imports neither riskrl's estimators nor verl's
``verl.trainer.ppo.core_algos`` (which brings transformers and scipy); it only installs a
one-shot import hook. The first time any code imports ``verl.trainer.ppo.core_algos`` (the
module that holds verl's ``ADV_ESTIMATOR_REGISTRY``, ``register_adv_est`` and
``get_adv_estimator_fn``: nothing can look an estimator up without importing it), the hook
lets verl's own loader execute the module and then imports ``riskrl.estimators.registry``,
which registers ``rs_grpo``, ``riskpo``, ``passk``, ``pkpo`` and the fork's alias
``grpo_bundle_RVaR_quantile_tracking``. From that point on the registry is complete, whether a
caller uses ``get_adv_estimator_fn(name)`` or reads ``ADV_ESTIMATOR_REGISTRY`` directly.
Processes that never touch the registry (most of verl's workers) never pay for it.

verl swallows plugin import errors at DEBUG level (``verl/__init__.py``), and an error inside
the hook must not break the import of verl's ``core_algos`` either, so a failure to register
is reported loudly on stderr (and logged at ERROR) with the cause; verl then answers
"Unknown advantage estimator" for riskrl's names.
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

REGISTRY_MODULE = "verl.trainer.ppo.core_algos"
NAMES = ("rs_grpo", "riskpo", "passk", "pkpo")


def register() -> bool:
    """Register riskrl's estimators with verl's registry now; True on success, loud on failure."""
    try:
        import riskrl.estimators.registry  # noqa: F401  (the @register_adv_est decorators)
    except Exception as exc:  # exercised in a subprocess test
        import logging
        import traceback

        msg = (
            f"riskrl verl plugin failed to load, so {'/'.join(repr(n) for n in NAMES)} are NOT registered: "
            f"{type(exc).__name__}: {exc}"
        )
        logging.getLogger("riskrl").error(msg)
        print(f"ERROR: {msg}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return False
    return True


class _RegisteringLoader(importlib.abc.Loader):
    """verl's own loader for ``core_algos``, followed by riskrl's registration."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        register()

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, ... for tracebacks/inspect
        return getattr(self._loader, name)


class _CoreAlgosHook(importlib.abc.MetaPathFinder):
    """One-shot finder: wraps the loader of ``verl.trainer.ppo.core_algos``, then removes itself."""

    def find_spec(self, fullname, path, target=None):
        if fullname != REGISTRY_MODULE:
            return None
        uninstall()
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


_HOOK = _CoreAlgosHook()


def uninstall() -> None:
    while _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def install() -> None:
    """Register now if verl's registry is already imported, else when it first is."""
    if REGISTRY_MODULE in sys.modules:
        register()
    elif _HOOK not in sys.meta_path:
        sys.meta_path.insert(0, _HOOK)


install()
