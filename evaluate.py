"""Evaluate a trained workdir: see t2t/commands/evaluate.py (also installed as `t2t-evaluate`)."""

from t2t.commands import evaluate

if __name__ == "__main__":
  evaluate.run()
