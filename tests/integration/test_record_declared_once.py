"""A prediction's fields are declared once: one line added to ``Prediction`` in shared/messages.py, and
a migration for its column, is all it takes for a new field to be in the message, the row the store
writes, the S3 history document, the API's JSON and the OpenAPI schema.

The repository's files are copied to a temporary directory, the line and the migration added there,
and a short script run on the copy (its own Python process, SQLite) takes one prediction through the
real codec, ``PredictionWriter``, the query API (Flask's test client) and ``openapi_document``, and
prints what each holds of the field. The same script on a copy with the migration but without the
line sees the field nowhere, so the line is what makes the difference.

Likewise for an action (``ActionRecord``): one line, and a migration for its columns in ``actions``
and ``api_actions``, put a new field in the report message, the API's read model, its JSON and its
schema. Both lines and both migrations go into the same copies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECLARATION = "shared/messages.py"
BEFORE = "    @property\n    def key(self) -> tuple[str, str, str]:\n"  # what follows Prediction's fields
LINE = '    role: str = records.text(16, enum=("primary", "shadow"), default="primary")\n'

MIGRATION = '''"""predictions.role (a test's).

Revision ID: {revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="primary"))


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_column("role")
'''

ACTION_BEFORE = "    updated_at: str = records.moment()\n"  # ActionRecord's last field
ACTION_LINE = '    channel: str = records.text(16, enum=("api", "bot"), default="bot")\n'
ACTION_MIGRATION = '''"""actions.channel and api_actions.channel (a test's).

Revision ID: {revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("actions", "api_actions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("channel", sa.String(16), nullable=False, server_default="bot"))


def downgrade() -> None:
    for table in ("actions", "api_actions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("channel")
'''

# What a predictor would send: the field in the prediction's JSON. Everything below is the real code.
SCRIPT = '''
import json, sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.api.openapi import openapi_document
from services.store.documents import read_history
from services.store.writer import PredictionWriter
from shared.blobs import FileBlobStore
from shared.broker.port import Delivery
from shared.database import create_engine, migrate
from shared.messages import MessageError, Prediction, decode, encode
from shared.predictions import metadata
from tests.builders import AUTH, api_app, make

field, value, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
url = f"sqlite:///{work}/proof.db"
migrate(url)
engine = create_engine(url)
sent = {**json.loads(encode(make(1))), field: value}
body = json.dumps(sent).encode()
seen = {}
try:
    message = decode(body, Prediction)
    seen["message"] = getattr(message, field)
    seen["encoded"] = json.loads(encode(message)).get(field, "<absent>")
except MessageError as exc:
    seen["message"] = seen["encoded"] = f"refused: {exc}"
blobs = FileBlobStore(work / "blobs")
delivery = Delivery(body, "needsdiagnosis", "wcml.results", {}, False, 1)
rejected = PredictionWriter(engine, blobs).handle([delivery])
seen["writer"] = [r.reason for r in rejected]
with engine.connect() as conn:
    seen["row"] = conn.execute(sa.text(f"SELECT {field} FROM predictions")).scalars().all()
    only_predictions = lambda name, kind, parents: kind != "table" or name == "predictions"
    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": only_predictions})
    seen["table_vs_migrations"] = [str(d) for d in compare_metadata(context, metadata)]
seen["history"] = [line.get(field, "<absent>") for key in blobs.keys("history/")
                   for line in read_history(blobs.get(key))]
answer = api_app(engine).test_client().get("/api/v1/predictions", headers=AUTH)
seen["api"] = [item.get(field, "<absent>") for item in answer.json["items"]]
schema = openapi_document()["components"]["schemas"]["Prediction"]
seen["openapi"] = schema["properties"].get(field, "<absent>")
seen["openapi_required"] = field in schema["required"]
print(json.dumps(seen))
'''

# What the actions service would report: the field in the action's JSON. Everything below is the real code.
ACTION_SCRIPT = '''
import json, sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.actions.tables import metadata as action_tables
from services.api import action_view
from services.api.openapi import openapi_document
from services.api.tables import metadata as api_tables
from shared.broker.port import Delivery
from shared.database import create_engine, migrate
from shared.messages import ActionRecord, MessageError, decode, encode
from tests.builders import AUTH, api_app

field, value, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
url = f"sqlite:///{work}/proof.db"
migrate(url)
engine = create_engine(url)
sent = {"v": 1, "kind": "action", "id": 1, "repo": "o/r", "number": 1, "task": "issuetype", "action": "label",
        "mode": "live", "target": "bug", "state": "done", "reason": "added", "delivery_id": "d-1",
        "model_version": "m1", "label": "bug", "confidence": 0.9, "rule": 1,
        "created_at": "2024-05-01T00:00:00Z", "updated_at": "2024-05-01T00:00:00Z", field: value}
body = json.dumps(sent).encode()
seen = {}
try:
    message = decode(body, ActionRecord)
    seen["message"] = getattr(message, field)
    seen["encoded"] = json.loads(encode(message)).get(field, "<absent>")
except MessageError as exc:
    seen["message"] = seen["encoded"] = f"refused: {exc}"
rejected = action_view.handle(engine, [Delivery(body, "action", "wcml.state", {}, False, 1)])
seen["view"] = [r.reason for r in rejected]
with engine.connect() as conn:
    seen["row"] = conn.execute(sa.text(f"SELECT {field} FROM api_actions")).scalars().all()
    ours = lambda name, kind, parents: kind != "table" or name in (*action_tables.tables, *api_tables.tables)
    context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": ours})
    seen["tables_vs_migrations"] = [str(d) for d in compare_metadata(context, [action_tables, api_tables])]
answer = api_app(engine).test_client().get("/api/v1/actions", headers=AUTH)
seen["api"] = [item.get(field, "<absent>") for item in answer.json["items"]]
schema = openapi_document()["components"]["schemas"]["Action"]
seen["openapi"] = schema["properties"].get(field, "<absent>")
seen["openapi_required"] = field in schema["required"]
print(json.dumps(seen))
'''


def copy_of_repository(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the work tree is not copied
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def add_migration(copy: Path, template: str = MIGRATION, name: str = "test_prediction_role") -> None:
    from alembic.script import ScriptDirectory

    versions = copy / "shared" / "migrations" / "versions"
    head = ScriptDirectory(str(versions.parent)).get_current_head()
    revision = f"{int(head) + 1:04d}"
    migration = template.format(revision=revision, head=head)
    (versions / f"{revision}_{name}.py").write_text(migration)


def declare_field(copy: Path) -> None:
    path = copy / DECLARATION
    text = path.read_text()
    assert text.count(BEFORE) == 1, "Prediction's fields end before its key property"
    path.write_text(text.replace(BEFORE, LINE + "\n" + BEFORE))
    assert len(path.read_text().splitlines()) == len(text.splitlines()) + 2  # the line, and a blank one


def declare_action_field(copy: Path) -> None:
    path = copy / DECLARATION
    text = path.read_text()
    assert text.count(ACTION_BEFORE) == 1, "ActionRecord's fields end with updated_at"
    path.write_text(text.replace(ACTION_BEFORE, ACTION_BEFORE + ACTION_LINE))
    assert len(path.read_text().splitlines()) == len(text.splitlines()) + 1  # the line alone


def run_script(copy: Path, work: Path, script: str = SCRIPT, field: str = "role",
               value: str = "shadow") -> dict:
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run([sys.executable, "-c", script, field, value, str(work)], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def repository_copies(tmp_path_factory):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the repository's git checkout")
    declared = copy_of_repository(tmp_path_factory.mktemp("declared"))
    declare_field(declared)
    declare_action_field(declared)
    undeclared = copy_of_repository(tmp_path_factory.mktemp("undeclared"))
    for copy in (declared, undeclared):
        add_migration(copy)
        add_migration(copy, ACTION_MIGRATION, "test_action_channel")
    return declared, undeclared


def test_one_declared_field_is_in_the_message_the_row_the_documents_the_api_and_the_schema(
        repository_copies, tmp_path):
    declared, _ = repository_copies
    seen = run_script(declared, tmp_path / "declared")
    assert seen == {
        "message": "shadow", "encoded": "shadow",
        "writer": [], "row": ["shadow"], "table_vs_migrations": [],  # the derived table is the migrated one
        "history": ["shadow"], "api": ["shadow"],
        "openapi": {"type": "string", "enum": ["primary", "shadow"]}, "openapi_required": True,
    }


def test_without_the_line_the_field_is_nowhere(repository_copies, tmp_path):
    _, undeclared = repository_copies
    seen = run_script(undeclared, tmp_path / "undeclared")
    assert "unknown field(s) 'role'" in seen["message"]
    assert seen["writer"] and "unknown field" in seen["writer"][0]  # dead-lettered, not stored
    assert seen["row"] == [] and seen["history"] == [] and seen["api"] == []
    assert seen["openapi"] == "<absent>" and seen["openapi_required"] is False
    assert any("role" in difference for difference in seen["table_vs_migrations"])  # a column undeclared


def test_one_declared_action_field_is_in_the_report_the_read_model_the_api_and_the_schema(
        repository_copies, tmp_path):
    declared, _ = repository_copies
    seen = run_script(declared, tmp_path / "declared", ACTION_SCRIPT, "channel", "api")
    assert seen == {
        "message": "api", "encoded": "api",
        "view": [], "row": ["api"], "tables_vs_migrations": [],  # both derived tables are the migrated ones
        "api": ["api"],
        "openapi": {"type": "string", "enum": ["api", "bot"]}, "openapi_required": True,
    }


def test_without_the_line_the_action_field_is_nowhere(repository_copies, tmp_path):
    _, undeclared = repository_copies
    seen = run_script(undeclared, tmp_path / "undeclared", ACTION_SCRIPT, "channel", "api")
    assert "unknown field(s) 'channel'" in seen["message"]
    assert seen["view"] and "unknown field" in seen["view"][0]  # dead-lettered, not kept
    assert seen["row"] == [] and seen["api"] == []
    assert seen["openapi"] == "<absent>" and seen["openapi_required"] is False
    assert any("channel" in difference for difference in seen["tables_vs_migrations"])  # undeclared columns
