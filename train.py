"""Train a translation model: see t2t/commands/train.py (also installed as `t2t-train`)."""

from t2t.commands import train

if __name__ == "__main__":
  train.run()
