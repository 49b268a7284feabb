"""Export a saved Lightning checkpoint (student or teacher) to a sentence-transformers folder.

    crossdistill export outputs/<run>/checkpoints/student/student-epoch=00.ckpt exported/student
Students load with SentenceTransformer(path); teachers with CrossEncoder(path) (raw logits, identity activation).
A run keeps its checkpoints only with keep_checkpoints=true; its exported folders are student/ and teacher/.
"""
import argparse


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    from crossdistill.export import export_checkpoint

    kind, path = export_checkpoint(args.checkpoint, args.out)
    print(f"exported {kind} to {path}")
    return 0
