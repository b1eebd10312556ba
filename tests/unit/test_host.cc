#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "host/host_info.h"
#include "host/loaded_libraries.h"
#include "host/program.h"
#include "scratch.h"

namespace memdet::host {
namespace {

namespace fs = std::filesystem;

using testing_support::Scratch;

TEST(HostInfo, ReadsARecordedMachine) {
  Scratch root;
  root.write("proc/sys/kernel/osrelease", "5.15.0-test\n");
  root.write("proc/cpuinfo",
             "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n"
             "flags\t\t: fpu sse2 sse4_2 avx avx2 fma avx512f avx512_bf16 amx_tile\n\n"
             "processor\t: 1\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n");
  HostInfo info = read_host_info(root.path());
  EXPECT_EQ(info.kernel, "5.15.0-test");
  EXPECT_EQ(info.cpu_model, "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_EQ(info.vector_extensions,
            (std::vector<std::string>{"sse2", "sse4_2", "avx", "fma", "avx2", "avx512f",
                                      "avx512_bf16", "amx_tile"}));
  EXPECT_NE(info.libc.find("glibc"), std::string::npos);
}

TEST(HostInfo, ReadsArmFeatures) {
  Scratch root;
  root.write("proc/cpuinfo", "processor\t: 0\nFeatures\t: fp asimd asimdhp sve bf16\n");
  HostInfo info = read_host_info(root.path());
  EXPECT_EQ(info.vector_extensions, (std::vector<std::string>{"asimd", "asimdhp", "sve", "bf16"}));
}

TEST(LoadedLibraries, NamesTheBlasBehindDebiansLink) {
  Scratch dir;
  // A link standing in for /etc/alternatives: libblas.so.3 is what numpy
  // loads, the link decides which implementation that is.
  std::string real = dir.write("usr/lib/openblas-pthread/libblas.so.3", "");
  fs::create_directories(fs::path(dir.path()) / "lib");
  std::string link = dir.path() + "/lib/libblas.so.3";
  fs::create_symlink(real, link);
  std::string list = dir.write("objects.txt", "100\t/lib/x86_64-linux-gnu/libc.so.6\n100\t" + link +
                                                  "\n101\t" + link + "\n");
  LoadedLibraries loaded = read_loaded_libraries(list);
  ASSERT_TRUE(loaded.recorded);
  EXPECT_EQ(loaded.processes, 2);
  EXPECT_EQ(loaded.objects.size(), 2u);
  ASSERT_EQ(loaded.blas.size(), 1u);
  EXPECT_EQ(loaded.blas[0].resolved, real);
  EXPECT_EQ(loaded.blas_name, "OpenBLAS (pthread)");
  EXPECT_EQ(loaded.allocator, "glibc malloc");
}

TEST(LoadedLibraries, FindsAPreloadedAllocator) {
  Scratch dir;
  std::string list = dir.write(
      "objects.txt", "7\t/usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n7\t/usr/lib/libfoo.so\n");
  LoadedLibraries loaded = read_loaded_libraries(list);
  EXPECT_EQ(loaded.allocator, "jemalloc");
  EXPECT_EQ(loaded.blas_name, "none loaded");
}

TEST(LoadedLibraries, ObjectsOfAWrapperAreNotTakenForTheProgram) {
  Scratch dir;
  std::string list =
      dir.write("objects.txt", "9\t!/usr/bin/env\n9\t/lib/x86_64-linux-gnu/libc.so.6\n");
  LoadedLibraries loaded = read_loaded_libraries(list);
  ASSERT_TRUE(loaded.recorded);
  EXPECT_EQ(loaded.programs, std::vector<std::string>{"/usr/bin/env"});
  EXPECT_EQ(loaded.objects.size(), 1u);

  LoadedLibraries reached = loaded;
  require_program(reached, "/usr/bin/env");
  EXPECT_TRUE(reached.recorded);

  require_program(loaded, "/bin/true");
  EXPECT_FALSE(loaded.recorded);
  EXPECT_NE(loaded.note.find("never ran in"), std::string::npos);
  EXPECT_EQ(loaded.blas_name, "not recorded");
}

TEST(Program, NamesTheInterpreterOfAShebangScript) {
  Scratch dir;
  std::string script = dir.write("run.py", "#!/usr/bin/python3 -u\nprint(1)\n");
  ProgramRecord record = identify_program(script, {script});
  EXPECT_EQ(record.interpreter, "/usr/bin/python3");
  EXPECT_EQ(record.script, script);
  EXPECT_EQ(record.executable, "/usr/bin/python3");
}

TEST(LoadedLibraries, AMissingListSaysWhy) {
  LoadedLibraries loaded = read_loaded_libraries("/nonexistent/objects.txt");
  EXPECT_FALSE(loaded.recorded);
  EXPECT_NE(loaded.note.find("static or setuid"), std::string::npos);
}

TEST(LoadedLibraries, DescribesCommonBlasBuilds) {
  EXPECT_EQ(describe_blas("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"), "reference BLAS");
  EXPECT_EQ(describe_blas("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"),
            "OpenBLAS (OpenMP)");
  EXPECT_EQ(describe_blas("/opt/intel/lib/libmkl_rt.so.2"), "Intel MKL");
}

TEST(Program, FindsThePythonScriptPastOptions) {
  Scratch dir;
  std::string script = dir.write("train.py", "print(1)\n");
  ProgramRecord record =
      identify_program("/usr/bin/python3", {"python3", "-u", "-W", "ignore", script, "--lr", "1"});
  EXPECT_EQ(record.interpreter, "python3");
  EXPECT_EQ(record.script, script);
  EXPECT_EQ(record.script_digest.size(), 32u);
}

TEST(Program, LooksThroughEnv) {
  Scratch dir;
  std::string script = dir.write("run.sh", "echo hi\n");
  ProgramRecord record = identify_program("/usr/bin/env", {"env", "-u", "X", "A=1", "sh", script});
  EXPECT_EQ(record.interpreter, "sh");
  EXPECT_EQ(record.script, script);
  EXPECT_NE(record.executable, "/usr/bin/env");
}

TEST(Program, SaysWhenThereIsNoScriptFile) {
  ProgramRecord code = identify_program("/usr/bin/python3", {"python3", "-c", "print(1)"});
  EXPECT_TRUE(code.script.empty());
  EXPECT_NE(code.note.find("-c"), std::string::npos);
  ProgramRecord module = identify_program("/usr/bin/python3", {"python3", "-m", "pytest"});
  EXPECT_NE(module.note.find("pytest"), std::string::npos);
  ProgramRecord binary = identify_program("/bin/true", {"true"});
  EXPECT_TRUE(binary.interpreter.empty());
  EXPECT_EQ(binary.digest.size(), 32u);
}

TEST(Program, KeepsOnlyTheVariablesThatSteerNumerics) {
  std::vector<std::string> kept =
      numeric_environment({"HOME=/root", "OMP_NUM_THREADS=2", "PYTHONHASHSEED=0",
                           "TF_CLI_CONFIG_FILE=x", "CUBLAS_WORKSPACE_CONFIG=:4096:8", "PATH=/bin",
                           "MALLOC_ARENA_MAX=1", "LD_PRELOAD=/usr/lib/libjemalloc.so.2"});
  EXPECT_EQ(kept, (std::vector<std::string>{"OMP_NUM_THREADS=2", "PYTHONHASHSEED=0",
                                            "CUBLAS_WORKSPACE_CONFIG=:4096:8", "MALLOC_ARENA_MAX=1",
                                            "LD_PRELOAD=/usr/lib/libjemalloc.so.2"}));
}

}  // namespace
}  // namespace memdet::host
