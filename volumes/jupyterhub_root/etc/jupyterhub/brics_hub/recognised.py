"""
Every setting the hub config makes must be one the installed classes read.

JupyterHub (traitlets) only logs "Config option X not recognized" for a setting no class declares,
and carries on without it: a logout that lands on the wrong page, a 401 instead of a logout. The
hub refuses to start instead, naming the setting, the class and the package version installed.
"""

import importlib.metadata

from .settings import HubConfigError


def _package_of(cls):
    top = cls.__module__.partition(".")[0]
    dists = importlib.metadata.packages_distributions().get(top, [])
    for dist in dists:
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return f"module {cls.__module__}, not from an installed package"


def _describe(cls):
    return f"{cls.__module__}.{cls.__qualname__} ({_package_of(cls)})"


def unrecognised_settings(c, app_class):
    """Problems with `c`, one line each: a section no class the hub uses reads, or a setting that
    is not a configurable trait of a class that reads its section."""
    # The classes JupyterHub instantiates from this config: the application and the classes it
    # is given (authenticator_class, spawner_class, ...).
    readers = [app_class]
    if "JupyterHub" in c:
        readers += [v for v in c.JupyterHub.values() if isinstance(v, type)]
    problems = []
    for section in sorted(c.keys()):
        classes = [cls for cls in readers if any(k.__name__ == section for k in cls.__mro__)]
        if not classes:
            problems.append(f"{section}: none of the classes the hub uses ({', '.join(_describe(r) for r in readers)}) is a {section}")
            continue
        for cls in classes:
            known = set(cls.class_trait_names(config=True))
            for name in sorted(set(c[section]) - known):
                owner = next(k for k in cls.__mro__ if k.__name__ == section)
                used = "" if owner is cls else f", used as {cls.__qualname__}"
                problems.append(f"{section}.{name} is not a setting of {_describe(owner)}{used}")
    return problems


def check_recognised(c, app_class):
    problems = unrecognised_settings(c, app_class)
    if problems:
        raise HubConfigError(
            "JupyterHub would ignore settings this deployment relies on (the installed packages are older or "
            "newer than the hub config expects):\n  - " + "\n  - ".join(problems)
        )
