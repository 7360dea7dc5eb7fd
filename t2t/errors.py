"""The one exception type that reaches users as a single line.

Entry points catch `UserError` and print `error: <message>` on stderr, then exit 2. Raise it
for anything the user can fix (a missing file, a wrong config field); its message names the
file, line or field and says what to do. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
  """A problem in the user's input, files or flags, with a one-line actionable message."""
