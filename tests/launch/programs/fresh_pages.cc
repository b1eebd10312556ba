// Writes one byte to each of N fresh anonymous pages (N the first
// argument), advised MADV_NOHUGEPAGE so that every page is its own minor
// fault whatever the THP mode: a program whose page-fault count the counter
// tests can predict.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fresh_pages N\n");
    return 2;
  }
  char* end = nullptr;
  long pages = std::strtol(argv[1], &end, 10);
  if (*end != '\0' || pages < 0) {
    std::fprintf(stderr, "fresh_pages: N must be a count of pages\n");
    return 2;
  }
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const size_t bytes = static_cast<size_t>(pages) * page;
  if (bytes == 0) {
    return 0;
  }
  void* mapped = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    std::perror("fresh_pages: mmap");
    return 1;
  }
  if (::madvise(mapped, bytes, MADV_NOHUGEPAGE) != 0) {
    std::perror("fresh_pages: madvise");
    return 1;
  }
  volatile char* bytes_at = static_cast<char*>(mapped);
  for (size_t offset = 0; offset < bytes; offset += page) {
    bytes_at[offset] = 1;
  }
  return 0;
}
