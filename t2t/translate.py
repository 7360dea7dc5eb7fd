"""`python -m t2t.translate`: the translate command (t2t/commands/translate.py)."""

from t2t.commands import translate

if __name__ == '__main__':
  translate.run()
