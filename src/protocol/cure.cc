#include "protocol/cure.h"

#include <fstream>

namespace memdet::protocol {

std::string torch_cure_hook() {
  return R"(# Written by memdet isolate --try-fix. On PYTHONPATH as sitecustomize, it
# makes torch deterministic as soon as it is imported, marks the run, and
# then runs the sitecustomize it hides.
import os
import sys


def _memdet_cure():
    import importlib.abc
    import importlib.machinery
    import importlib.util

    marker = os.path.join(os.environ.get("MEMDET_RUN_DIR", ""), "cure-applied")

    class TorchFinder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "torch":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                module.use_deterministic_algorithms(True)
                if os.environ.get("MEMDET_RUN_DIR"):
                    with open(marker, "w") as out:
                        out.write("torch.use_deterministic_algorithms(True)\n")

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, TorchFinder())
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_memdet_cure()
del _memdet_cure
)";
}

bool loads_torch(const RunRecord& run) {
  for (const host::LoadedLibrary& object : run.loaded.objects) {
    for (const std::string* path : {&object.loaded_as, &object.resolved}) {
      size_t slash = path->find_last_of('/');
      std::string name = path->substr(slash == std::string::npos ? 0 : slash + 1);
      if (name.rfind("libtorch", 0) == 0) {
        return true;
      }
    }
  }
  return false;
}

std::string nondeterministic_operation(const RunRecord& run) {
  std::ifstream in(run.dir + "/stderr.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("does not have a deterministic implementation") != std::string::npos) {
      return line.size() > 400 ? line.substr(0, 400) + "..." : line;
    }
  }
  return {};
}

}  // namespace memdet::protocol
