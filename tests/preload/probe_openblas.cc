// OpenBLAS's run-time setter, called as numpy's threadpool helpers and
// user code call it: "probe_openblas N" calls openblas_set_num_threads(N)
// and prints "threads <openblas_get_num_threads()>". OpenBLAS calls its
// own goto_set_num_threads from inside, through its PLT.
#include <cstdio>
#include <cstdlib>

extern "C" void openblas_set_num_threads(int count);
extern "C" int openblas_get_num_threads(void);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: probe_openblas N\n");
    return 2;
  }
  openblas_set_num_threads(std::atoi(argv[1]));
  std::printf("threads %d\n", openblas_get_num_threads());
  return 0;
}
