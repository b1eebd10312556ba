// The cure isolate --try-fix tries: which runs loaded torch, what PyTorch
// said when it refused an operation, and the start-up hook being Python
// that chains to the sitecustomize it hides.
#include "protocol/cure.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "scratch.h"

namespace memdet::protocol {
namespace {

RunRecord run_with(std::vector<std::string> objects) {
  RunRecord run;
  for (std::string& path : objects) {
    run.loaded.objects.push_back({path, path});
  }
  return run;
}

TEST(Cure, TorchIsSeenByItsLibraryName) {
  EXPECT_TRUE(loads_torch(run_with({"/usr/lib/x86_64-linux-gnu/libc.so.6",
                                    "/usr/lib/python3/dist-packages/torch/lib/libtorch_cpu.so"})));
  EXPECT_TRUE(loads_torch(run_with({"/opt/lib/libtorch.so"})));
  EXPECT_FALSE(loads_torch(run_with({"/usr/lib/x86_64-linux-gnu/libc.so.6"})));
  // A folder named after torch is no library of it.
  EXPECT_FALSE(loads_torch(run_with({"/home/me/libtorch-notes/libfoo.so"})));
}

TEST(Cure, TheRefusedOperationIsReadFromStderr) {
  testing_support::Scratch scratch;
  RunRecord run;
  run.dir = scratch.path();
  scratch.write("stderr.txt",
                "Traceback (most recent call last):\n"
                "RuntimeError: scatter_add_cuda_kernel does not have a deterministic "
                "implementation, but you set 'torch.use_deterministic_algorithms(True)'.\n");
  EXPECT_NE(nondeterministic_operation(run).find("scatter_add_cuda_kernel"), std::string::npos);
  scratch.write("stderr.txt", "some other failure\n");
  EXPECT_EQ(nondeterministic_operation(run), "");
}

// The hook is real Python: with a stand-in torch and a sitecustomize of
// its own further down the path, importing torch turns deterministic mode
// on, marks the run, and the hidden sitecustomize still runs.
TEST(Cure, TheHookArmsTorchAndChainsToTheHiddenSitecustomize) {
  if (std::system("/usr/bin/python3 -c pass >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "/usr/bin/python3 is missing";
  }
  testing_support::Scratch scratch;
  scratch.write("hook/sitecustomize.py", torch_cure_hook());
  scratch.write("lib/sitecustomize.py", "import os\nos.environ['HIDDEN_RAN'] = '1'\n");
  scratch.write("lib/torch/__init__.py",
                "deterministic = False\n"
                "def use_deterministic_algorithms(flag):\n"
                "    global deterministic\n"
                "    deterministic = flag\n");
  scratch.write("probe.py",
                "import os, torch\n"
                "print(torch.deterministic, os.environ.get('HIDDEN_RAN'))\n");
  std::string command = "cd " + scratch.path() + " && MEMDET_RUN_DIR=" + scratch.path() +
                        " PYTHONPATH=" + scratch.path() + "/hook:" + scratch.path() +
                        "/lib /usr/bin/python3 probe.py > out.txt 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << scratch.read("out.txt");
  EXPECT_EQ(scratch.read("out.txt"), "True 1\n");
  EXPECT_EQ(scratch.read(kCureMarker), "torch.use_deterministic_algorithms(True)\n");
}

}  // namespace
}  // namespace memdet::protocol
