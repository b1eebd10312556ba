// OpenMP through libgomp, in plain C calls. "probe_omp set N" calls
// omp_set_num_threads(N) first, as torch.set_num_threads does; then, with
// or without it, one parallel region prints "team <threads>" and the main
// thread "max <omp_get_max_threads()>", which shows whether the call
// reached libgomp.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char** argv) {
  if (argc == 3 && std::strcmp(argv[1], "set") == 0) {
    omp_set_num_threads(std::atoi(argv[2]));
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: probe_omp [set N]\n");
    return 2;
  }

  int team = 0;
#pragma omp parallel
  {
#pragma omp single
    team = omp_get_num_threads();
  }
  std::printf("team %d\nmax %d\n", team, omp_get_max_threads());
  return 0;
}
