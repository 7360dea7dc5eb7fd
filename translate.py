"""Translate text with a trained workdir: see t2t/commands/translate.py (also `t2t-translate`)."""

from t2t.commands import translate

if __name__ == "__main__":
  translate.run()
