"""crossdistill's training entry point: `python train.py teacher=minilm`, or `python train.py -m student.lr=1e-5,3e-5`.
The same as the installed `crossdistill-train` console script."""
from crossdistill.cli import train

if __name__ == "__main__":
    train()
