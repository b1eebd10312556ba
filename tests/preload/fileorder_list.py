"""Lists a directory through one Python interface and prints the names it
gives, one a line, in the order given:
    fileorder_list.py listdir|scandir|glob|pathlib|walk DIR"""
import glob
import os
import pathlib
import sys

mode, directory = sys.argv[1], sys.argv[2]
if mode == "listdir":
    names = os.listdir(directory)
elif mode == "scandir":
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries]
elif mode == "glob":
    names = [os.path.basename(path) for path in glob.glob(os.path.join(directory, "*"))]
elif mode == "pathlib":
    names = [path.name for path in pathlib.Path(directory).iterdir()]
elif mode == "walk":
    names = [name for root, _, files in os.walk(directory) if root == directory for name in files]
else:
    sys.exit(f"unknown mode {mode}")
print("\n".join(names))
