"""Judges the visits a walk printed (probe_fileorder walk): one a line,
path, typeflag, level, base and working directory, then "return R".
    fileorder_walk.py structure ROOT pre|post FILE
        "ok" when every directory's descendants come as one run right
        after it (pre) or right before it (post), every entry's directory
        was visited, and level and base agree with the path (nftw);
        otherwise what is wrong
    fileorder_walk.py children ROOT FILE
        each directory, a tab, and the names under it in the order the
        walk reached them, one directory a line
    fileorder_walk.py sorted ROOT FILE
        "ok" when every directory's names come in byte order"""
import os
import sys


def visits(path):
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        rows = [line.rstrip("\n").split("\t") for line in lines]
    return [row for row in rows if not row[0].startswith("return ")]


def inside(path, directory):
    return path.startswith(directory + "/")


def structure(root, order, rows):
    paths = [row[0] for row in rows]
    seen = set(paths)
    for index, (path, _, level, base, _) in enumerate(rows):
        if path != root:
            if not inside(path, root):
                return f"{path} is outside {root}"
            if os.path.dirname(path) not in seen:
                return f"{path} came without its directory"
        if level != "-":
            want_level = 0 if path == root else path[len(root):].count("/")
            want_base = len(os.path.dirname(path)) + 1 if "/" in path else 0
            if (int(level), int(base)) != (want_level, want_base):
                return f"{path}: level {level} base {base}, expected {want_level} {want_base}"
        below = [i for i, other in enumerate(paths) if inside(other, path)]
        if not below:
            continue
        if paths.count(path) != 1:
            return f"{path} visited {paths.count(path)} times"
        first = index + 1 if order == "pre" else index - len(below)
        if below != list(range(first, first + len(below))):
            return f"the entries under {path} are not one run {order} it"
    return "ok"


def children(root, rows):
    """Each directory's names, in the order the walk first reached them."""
    found = {}
    for path, *_ in rows:
        if path == root:
            continue
        parts = path[len(root) + 1:].split("/")
        directory = root
        for part in parts:
            names = found.setdefault(directory, [])
            if part not in names:
                names.append(part)
            directory += "/" + part
    return found


def main():
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "structure":
        print(structure(root, sys.argv[3], visits(sys.argv[4])))
    elif mode == "children":
        for directory, names in children(root, visits(sys.argv[3])).items():
            print(directory + "\t" + " ".join(names))
    elif mode == "sorted":
        for directory, names in children(root, visits(sys.argv[3])).items():
            if names != sorted(names, key=os.fsencode):
                print(f"{directory}: {' '.join(names)}")
                return
        print("ok")
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
