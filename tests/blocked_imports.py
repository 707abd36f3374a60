"""Run Python with the distributed mode's libraries made uninstalled: a ``sys.meta_path`` finder raises
``ModuleNotFoundError`` for them, as a plain ``pip install webcompat-ml`` (no extra) would."""

from __future__ import annotations

import subprocess
import sys

# What only the extras bring: amqp, postgresql, s3, server, ml.
EXTRA_MODULES = ("pika", "boto3", "botocore", "psycopg2", "gunicorn", "torch")

BLOCKER = f"""
import sys

class _NotInstalled:
    blocked = {EXTRA_MODULES!r}

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {{fullname!r}} (blocked)", name=fullname)
        return None

for _name in list(sys.modules):
    if _name.split(".")[0] in _NotInstalled.blocked:
        del sys.modules[_name]
sys.meta_path.insert(0, _NotInstalled())
"""


def python_without_extras(code: str) -> list[str]:
    """The command line running ``code`` in a Python whose extras' modules cannot be imported."""
    return [sys.executable, "-c", BLOCKER + "\n" + code]


def wcml_without_extras(*args: str) -> list[str]:
    """The command line of ``wcml ARGS`` there."""
    return python_without_extras(f"from services.cli import main\nsys.exit(main({list(args)!r}))\n")


def run_without_extras(*args: str, env: dict[str, str], cwd, timeout: float = 60):
    return subprocess.run(wcml_without_extras(*args), env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
