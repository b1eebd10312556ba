// Writes each argument after argv[0] to stdout, NUL-terminated, so a test can
// see exactly what arrived: spaces, quotes and empty strings included.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::fwrite(argv[i], 1, std::strlen(argv[i]) + 1, stdout);
  }
  return 0;
}
