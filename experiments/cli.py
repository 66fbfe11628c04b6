"""The `rnnlab` command line."""

from __future__ import annotations

import argparse
import sys


def check_datasets_package() -> None:
    """Fail clearly when `import datasets` finds Hugging Face's package instead of ours.

    Our data package is called `datasets`, like Hugging Face's. If both are installed, whichever comes
    first on sys.path wins; ours marks itself with `RNNLAB = True`.
    """
    import datasets

    if not getattr(datasets, "RNNLAB", False):
        location = getattr(datasets, "__file__", "?")
        raise SystemExit(
            f"rnnlab: `import datasets` resolved to another package ({location}), most likely "
            "Hugging Face's `datasets`. RNN Cell Lab ships its own `datasets` package: run rnnlab "
            "from a virtual environment without Hugging Face's (`make run` creates one in .venv), "
            "or `pip uninstall datasets` there and reinstall this project."
        )


def cmd_cells(args: argparse.Namespace) -> int:
    import cells

    for name in cells.names():
        cls = type(cells.get(name, units=1))
        summary = (cls.__doc__ or "").strip().splitlines()[0]
        print(f"{name:10s} {cls.__name__:18s} {summary}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("cells", help="list the recurrent cells and their equations' summaries")
    p.set_defaults(func=cmd_cells)
    return parser


def main(argv: list[str] | None = None) -> int:
    check_datasets_package()
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
