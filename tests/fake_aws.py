#!/usr/bin/env python3
"""A stand-in for the AWS CLI, for the model-cache script tests: the two calls the script makes.

``s3api list-objects-v2 --bucket B --prefix P --query 'Contents[].[Key,ETag,Size]' --output text``
prints ``key<TAB>"etag"<TAB>size`` per object under ``$FAKE_S3/B/`` (``None`` when there is
none, as the real CLI does). ``s3 sync s3://B/P DEST [--exclude|--include PATTERN]...`` copies
the objects under the prefix that the filters admit: every file starts included, the filters
are applied in order and the last one that matches wins, patterns match the path relative to
the source (the AWS CLI's documented semantics). Every call and every copied file is appended
to ``$FAKE_LOG``. ``FAKE_AWS_SLOW`` (seconds per file) makes a sync slow; ``FAKE_AWS_DIE_AFTER=N``
kills its whole process group with SIGKILL after N files, as a pod killed mid-download loses
every process at once (the tests start each script in its own session);
``FAKE_AWS_SKIP=rel`` silently skips one file (a sync that lies).
"""

import fnmatch
import hashlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path


def log(line: str) -> None:
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(line + "\n")


def objects(bucket: str, prefix: str) -> list[tuple[str, Path]]:
    root = Path(os.environ["FAKE_S3"]) / bucket
    keys = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file())
    return [(k, p) for k, p in keys if k.startswith(prefix)]


def opt(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def list_objects(args: list[str]) -> None:
    assert opt(args, "--query") == "Contents[].[Key,ETag,Size]" and opt(args, "--output") == "text", args
    found = objects(opt(args, "--bucket"), opt(args, "--prefix"))
    log("list")
    if not found:
        print("None")
    for key, path in found:
        data = path.read_bytes()
        print(f'{key}\t"{hashlib.md5(data).hexdigest()}"\t{len(data)}')


def admitted(rel: str, filters: list[tuple[str, str]]) -> bool:
    ok = True
    for kind, pattern in filters:
        if fnmatch.fnmatchcase(rel, pattern):
            ok = kind == "--include"
    return ok


def sync(args: list[str]) -> None:
    src, dest = args[0], Path(args[1])
    bucket, _, prefix = src[len("s3://"):].partition("/")
    prefix = prefix.rstrip("/") + "/"
    filters = [(args[i], args[i + 1]) for i in range(2, len(args)) if args[i] in ("--include", "--exclude")]
    log("sync " + " ".join(args[2:]))
    copied = 0
    for key, path in objects(bucket, prefix):
        rel = key[len(prefix):]
        if not admitted(rel, filters) or rel == os.environ.get("FAKE_AWS_SKIP"):
            continue
        time.sleep(float(os.environ.get("FAKE_AWS_SLOW", "0")))
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest / rel)
        log(f"copy {rel}")
        copied += 1
        if copied == int(os.environ.get("FAKE_AWS_DIE_AFTER", "0")):
            os.killpg(0, signal.SIGKILL)


def main(argv: list[str]) -> None:
    if argv[:2] == ["s3api", "list-objects-v2"]:
        list_objects(argv[2:])
    elif argv[:2] == ["s3", "sync"]:
        sync(argv[2:])
    else:
        sys.exit(f"fake aws: unexpected call {argv}")


if __name__ == "__main__":
    main(sys.argv[1:])
