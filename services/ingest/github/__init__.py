"""GitHub history import: the REST API's issues and issue events appended to the event log as
``issues`` deliveries marked ``import`` (history.py, state.py, importer.py, report.py, commands.py,
over the REST client in shared/github.py)."""
