"""A serving embedded instance, as a command run in its folder reaches it: through its HTTP API.

The embedded mode's queue lives in the serving process, so what must travel through the pipeline
(a replay) is asked of that process; ``var/instance.json`` says where it serves.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from tqdm import tqdm

from shared import settings as wcml_settings
from shared.errors import UserError


def replay_through_instance(settings: wcml_settings.Settings, wanted: dict, *, resume: str | None = None,
                            quiet: bool = False) -> int:
    """``wcml replay`` beside an embedded instance: its in-process broker is in the serving process,
    so the run is asked of that process's API, and its progress followed there."""
    if resume:
        raise UserError("the embedded instance runs its replays itself; ask it for a new one instead")
    if wanted.get("rate"):
        raise UserError("--rate is for distributed deployments: the embedded instance replays at its pace")
    body = {k: v for k, v in {**wanted["filters"], "tasks": list(wanted.get("tasks") or ()),
                              "model_version": wanted.get("model"), "created_by": wanted.get("created_by")
                              }.items() if v is not None}
    try:
        url = json.loads(wcml_settings.instance_file(settings.var_dir).read_text())["url"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"no embedded instance serves from {settings.var_dir}/: start it with scripts/run, "
                        "then run the replay again") from None
    headers = {"Authorization": f"Bearer {settings.api_keys[0]}", "Content-Type": "application/json"}

    def call(path: str, data: dict | None = None) -> dict | None:
        request = urllib.request.Request(url + path, headers=headers, method="POST" if data else "GET",
                                         data=json.dumps(data).encode() if data else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and data is None:
                return None  # asked for, not yet recorded by the replay source
            raise UserError(f"the embedded instance at {url} answered {exc.code}: "
                            f"{json.loads(exc.read() or b'{}').get('error', exc.reason)}") from None
        except OSError as exc:
            raise UserError(f"the embedded instance at {url} does not answer ({exc}): is scripts/run "
                            "serving?") from None

    run = call("/api/v1/replays", body)
    print(f"replay {run['id']}: requested from the embedded instance at {url}")
    with tqdm(unit="event", desc=run["id"], disable=quiet) as bar:
        while run["state"] in ("requested", "running"):
            time.sleep(0.5)
            run = call(f"/api/v1/replays/{run['id']}") or run
            bar.total = run["total"] or None
            bar.update(run["published"] - bar.n)
    print(f"replay {run['id']}: {run['state']}, {run['published']}/{run['total']} published")
    return 0 if run["state"] == "done" else 1

