"""Export a saved Lightning checkpoint (student or teacher) to a sentence-transformers folder.

    python scripts/export.py outputs/<run>/checkpoints/student/student-epoch=00.ckpt exported/student
Students load with SentenceTransformer(path); teachers with CrossEncoder(path) (raw logits, identity activation).
"""
import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from crossdistill.export import export_checkpoint

    kind, path = export_checkpoint(args.checkpoint, args.out)
    print(f"exported {kind} to {path}")


if __name__ == "__main__":
    main()
