// Starts a grandchild that leaves the process group with setsid and sleeps,
// writes its pid to the file named by argv[1], then either exits at once
// ("exit") or sleeps too ("stay"). Used to show that memdet ends processes
// that escape the workload's group.
#include <unistd.h>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc < 3) {
    return 2;
  }
  pid_t child = fork();
  if (child < 0) {
    return 2;
  }
  if (child == 0) {
    setsid();
    sleep(300);
    _exit(0);
  }
  std::FILE* out = std::fopen(argv[1], "w");
  if (out == nullptr) {
    return 2;
  }
  std::fprintf(out, "%d\n", static_cast<int>(child));
  std::fclose(out);
  if (std::strcmp(argv[2], "stay") == 0) {
    sleep(300);
  }
  return 0;
}
