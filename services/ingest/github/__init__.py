"""GitHub history import: the REST API's issues and issue events appended to the event log as
``issues`` deliveries marked ``import`` (client.py, history.py, state.py, importer.py, commands.py)."""
