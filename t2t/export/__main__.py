"""`python -m t2t.export`: see t2t/commands/export.py."""

from t2t.commands import export

export.run()
