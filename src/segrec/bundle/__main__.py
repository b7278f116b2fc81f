"""``python -m segrec.bundle PATH``: verify a bundle (or ``latest``) and print its summary.

Exit status 0 when the bundle would be served, 1 (with every problem listed) when it would
be refused: the check an operator or a deploy script runs before pointing a service at it.
"""

from __future__ import annotations

import sys

from segrec.bundle.verify import BundleError, verify_bundle


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m segrec.bundle PATH", file=sys.stderr)
        return 2
    try:
        root, manifest = verify_bundle(args[0])
    except BundleError as e:
        print(e, file=sys.stderr)
        return 1
    size = sum(f.bytes for f in manifest.files.values()) / 2**20
    print(
        f"{root}: OK, model version {manifest.model_version}, created {manifest.created_at}, "
        f"{len(manifest.files)} files, {size:.1f} MiB, {manifest.contents.get('n_items')} "
        f"items, {manifest.contents.get('n_customers')} customers, {manifest.index['kind']} "
        f"index"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
