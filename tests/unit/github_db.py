"""A migrated SQLite database in a tmp dir for the history import's tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared.database import MIGRATIONS, alembic_config, create_engine, migrate

# Revision 0004 (event_log.source, the import's tables) follows 0003 (predictions.live_record), which
# is written on another branch. Until the two meet, the tests migrate a copy of the migrations with
# an empty stand-in 0003; once 0003 is here this is plain ``migrate``.
STAND_IN_0003 = '''"""Stand-in for 0003 (tests only).

Revision ID: 0003
"""
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def migrated_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/wcml.db"
    if any((MIGRATIONS / "versions").glob("0003_*.py")):
        migrate(url)
    else:
        from alembic import command

        copy = tmp_path / "migrations"
        shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "versions/0003_stand_in.py").write_text(STAND_IN_0003)
        engine = create_engine(url)
        with engine.begin() as connection:
            config = alembic_config(url)
            config.set_main_option("script_location", str(copy))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        engine.dispose()
    return create_engine(url)
