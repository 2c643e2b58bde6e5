"""The commands around training: `data split`, `data resize`, `eval`, `predict`, `cam`.

    archc data split SRC DST [--val 0.2] [--test 0.0] [--seed 0] [--copy|--link]
    archc data resize DIR [--max-side 500] [-o OUT]
    archc eval RUN/best.pt --data DIR [--batch N] [--json]
    archc predict RUN/best.pt IMG|DIR... [--top K] [--json | --csv OUT.csv]
    archc cam RUN/best.pt IMG -o cam.png [--class NAME|INDEX] [--alpha A]

Kept apart from cli.py so that `archc check` never imports them; `data`
imports PIL only, the others torch.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli import EXIT_ERRORS, EXIT_OK, Usage
from .jsontext import dumps

COMMANDS = ("data", "eval", "predict", "cam")


def add_commands(sub) -> None:
    """Register the subcommands on cli.py's subparsers."""
    data = sub.add_parser("data", help="prepare an image-folder data set: split it, resize it once")
    chores = data.add_subparsers(dest="data_command", required=True, parser_class=type(data))
    split = chores.add_parser("split", help="SRC/<class>/ into DST/train/<class>/, DST/val/<class>/ (and test/)",
                              description="Seed 000's split: stratified per class, deterministic by --seed. "
                                          "DST must be new or empty.")
    split.add_argument("src", metavar="SRC", help="a folder with one sub-folder of images per class")
    split.add_argument("dst", metavar="DST", help="where train/, val/ (and test/) are written; new or empty")
    split.add_argument("--val", type=float, default=0.2, help="fraction of each class for val/ (default 0.2)")
    split.add_argument("--test", type=float, default=0.0, help="fraction of each class for test/ (default 0)")
    split.add_argument("--seed", type=int, default=0, help="the shuffle's seed (default 0)")
    how = split.add_mutually_exclusive_group()
    how.add_argument("--copy", dest="mode", action="store_const", const="copy", help="copy the files (default)")
    how.add_argument("--link", dest="mode", action="store_const", const="link",
                     help="symbolic links to the source files instead of copies")
    split.set_defaults(mode="copy")

    resize = chores.add_parser("resize", help="shrink every image whose longer side exceeds --max-side",
                               description="Seed 000's one-time resize: images whose longer side exceeds "
                                           "--max-side are resized, aspect ratio kept, EXIF orientation applied. "
                                           "IN PLACE unless -o OUT is given; with -o the tree is mirrored into OUT "
                                           "and DIR is left untouched. Non-images and corrupt files are skipped "
                                           "and counted.")
    resize.add_argument("dir", metavar="DIR")
    resize.add_argument("--max-side", type=int, default=500, help="longest side after resizing (default 500)")
    resize.add_argument("-o", "--output", metavar="OUT",
                        help="write the resized tree here (new or empty); without it DIR is rewritten in place")

    evaluate = sub.add_parser("eval", help="accuracy, per-class accuracy and confusion matrix of a checkpoint")
    evaluate.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint from archc train (RUN/best.pt)")
    evaluate.add_argument("--data", required=True, metavar="DIR",
                          help="an image-folder tree (DIR/<class>/...); DIR/val/ is used when it exists")
    evaluate.add_argument("--batch", type=int, default=64, help="images per forward pass (default 64)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")

    predict = sub.add_parser("predict", help="the top classes of each image, with probabilities",
                             description="Each image is prepared as validation prepares it (short side resized to "
                                         "the checkpoint's eval_resize, centre crop); a folder stands for the image "
                                         "files below it, found as archc train finds them.")
    predict.add_argument("checkpoint", metavar="CHECKPOINT")
    predict.add_argument("images", nargs="+", metavar="IMG|DIR")
    predict.add_argument("--top", type=int, default=5, help="classes shown per image (default 5)")
    predict.add_argument("--batch", type=int, default=64, help="images per forward pass (default 64)")
    shown = predict.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print a JSON list")
    shown.add_argument("--csv", metavar="OUT.csv",
                       help="write a CSV (image, class_1, probability_1, ..., error); - for standard output")

    cam = sub.add_parser("cam", help="class activation map of an image (CAM, or Grad-CAM for other heads)",
                         description="Draws the map over the view the network classifies (as archc predict: short "
                                     "side resized to the checkpoint's eval_resize, centre crop), with a colour bar "
                                     "and a caption. CAM (Zhou et al. 2016) where global average pooling is followed "
                                     "by at most one linear layer, Grad-CAM (Selvaraju et al. 2017) for other heads.")
    cam.add_argument("checkpoint", metavar="CHECKPOINT")
    cam.add_argument("image", metavar="IMG")
    cam.add_argument("-o", "--output", required=True, metavar="OUT.png")
    cam.add_argument("--class", dest="class_", metavar="NAME|INDEX",
                     help="the class whose map to draw (default: the predicted class)")
    cam.add_argument("--alpha", type=float, default=0.5, help="opacity of the heat map over the image (default 0.5)")


def run(args: argparse.Namespace) -> int:
    from .runtime.datatools import DataToolError

    try:
        if args.command == "data":
            return _split(args) if args.data_command == "split" else _resize(args)
    except DataToolError as error:
        raise Usage(str(error)) from None
    # eval, predict, cam: these import torch
    from .runtime.cam import CamError
    from .runtime.data import DataError
    from .runtime.infer import InferError

    try:
        return {"eval": _eval, "predict": _predict, "cam": _cam}[args.command](args)
    except (InferError, DataError, CamError) as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}{'es' if noun.endswith('s') else 's'}"


def _listed(title: str, paths: list, shown: int = 5) -> None:
    if paths:
        print(f"{title}: {len(paths):,}")
        for item in paths[:shown]:
            print(f"  {item if not isinstance(item, tuple) else f'{item[0]}: {item[1]}'}")
        if len(paths) > shown:
            print(f"  ... and {len(paths) - shown:,} more")


def _split(args) -> int:
    from .runtime.datatools import split_dataset

    try:
        report = split_dataset(args.src, args.dst, val=args.val, test=args.test, seed=args.seed, mode=args.mode)
    except OSError as error:
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    splits = ["train", "val"] + (["test"] if args.test > 0 else [])
    width = max(len("class"), *(len(name) for name in report.counts))
    print(f"{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in splits))
    for name, counts in report.counts.items():
        print(f"{name:<{width}}  " + "  ".join(f"{counts[s]:>7,}" for s in splits))
    totals = {s: sum(c[s] for c in report.counts.values()) for s in splits}
    print(f"{'total':<{width}}  " + "  ".join(f"{totals[s]:>7,}" for s in splits))
    _listed("files that are not images, left out", report.not_images)
    _listed("left out, not regular files (links to folders are not followed, as training does not follow them)",
            report.not_followed)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    verb = "linked" if args.mode == "link" else "copied"
    print(f"{verb} {_plural(sum(totals.values()), 'image')} of {_plural(len(report.counts), 'class')} "
          f"into {args.dst} (seed {args.seed})")
    return EXIT_OK


def _resize(args) -> int:
    from .runtime.datatools import resize_tree

    try:
        report = resize_tree(args.dir, max_side=args.max_side, out=args.output)
    except OSError as error:  # a write failed: disk full, permissions
        print(f"archc: error: {error}", file=sys.stderr)
        return EXIT_ERRORS
    where = f"into {args.output}" if args.output else "in place"
    print(f"resized {_plural(report.resized, 'image')} to at most {args.max_side} px {where}; "
          f"{report.rotated:,} only turned upright (EXIF); {report.unchanged:,} already small enough")
    _listed("skipped, not images", report.not_images)
    _listed("skipped, corrupt or unreadable", report.corrupt)
    _listed("skipped, not regular files (links to folders are not followed, as training does not follow them)",
            report.not_followed)
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK


def _eval(args) -> int:
    from .runtime.infer import evaluate, format_evaluation

    result = evaluate(args.checkpoint, args.data, batch=args.batch)
    print(dumps(result) if args.json else format_evaluation(result))
    return EXIT_OK


def _predict(args) -> int:
    from .runtime.infer import predict, write_csv

    results = predict(args.checkpoint, args.images, top=args.top, batch=args.batch)
    failed = [r for r in results if "error" in r]
    if args.json:
        print(dumps(results))
    elif args.csv:
        _write_csv(results, args.csv, write_csv)
    else:
        for result in results:
            if "top" in result:
                print(result["image"])
                for guess in result["top"]:
                    print(f"  {guess['probability']:7.2%}  {guess['class']}")
            elif "error" in result:
                print(f"{result['image']}: skipped: {result['error']}")
        skipped = [r for r in results if "skipped" in r]
        _listed("files in the folders that are not images, left out", [(r["image"], r["skipped"]) for r in skipped])
    return EXIT_OK if not failed else EXIT_ERRORS


def _write_csv(results: list, output: str, write) -> None:
    import io

    if output == "-":
        write(results, sys.stdout)
        return
    text = io.StringIO(newline="")
    write(results, text)
    try:
        Path(output).write_text(text.getvalue(), encoding="utf-8", newline="")
    except OSError as error:
        raise Usage(f"cannot write {output}: {error.strerror or error}") from None
    predicted = sum(1 for r in results if "top" in r)
    print(f"wrote {output}: {_plural(predicted, 'image')} predicted"
          + "".join(f", {n:,} {what}" for what, n in (("unreadable", sum("error" in r for r in results)),
                                                      ("skipped", sum("skipped" in r for r in results))) if n))


def _cam(args) -> int:
    from .runtime.cam import cam_for_image

    if args.output and Path(args.output).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise Usage(f"-o {args.output}: give a .png (or .jpg) file")
    result = cam_for_image(args.checkpoint, args.image, args.output, class_=args.class_, alpha=args.alpha)
    method = "Grad-CAM" if result["method"] == "grad-cam" else "class activation map"
    print(f"wrote {args.output}: {method} of {result['class']!r} (probability {result['probability']:.2%}) "
          f"from layer {result['feature_layer']}, over the view archc predict classifies ({result['view_described']})")
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    return EXIT_OK
