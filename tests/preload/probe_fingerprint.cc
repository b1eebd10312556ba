// Allocates a known sequence for the fingerprint tests, then leaves the way
// it is told:
//
//   probe_fingerprint ORDER LEAVE [COUNT]
//
// ORDER: "same" (sizes 16, 32, ... in a fixed order), "swap" (the same, with
// allocations 300 and 301 swapped; COUNT moves where: swap at COUNT and
// COUNT+1), "threads" (three threads allocate, each its own sizes), "fork"
// (a child allocates and exits too). Every run also allocates one 8 MiB
// block, touches it and keeps it to the end.
// LEAVE: exit, _exit, exec (exec's /bin/true), abort, kill (SIGKILL itself).
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void* g_keep[4096];

// Keeps the compiler from dropping a malloc whose result is unused.
void hold(size_t at, void* pointer) {
  g_keep[at % 4096] = pointer;
  asm volatile("" : : "r"(pointer) : "memory");
}

void sequence(size_t swap_at, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    size_t index = i;
    if (i == swap_at) {
      index = i + 1;
    } else if (i == swap_at + 1) {
      index = i - 1;
    }
    size_t size = 16 + (index % 97) * 16;
    std::free(g_keep[i % 4096]);
    hold(i, std::malloc(size));
  }
}

void* worker(void* argument) {
  auto base = reinterpret_cast<size_t>(argument);
  for (size_t i = 0; i < 500; ++i) {
    void* pointer = std::malloc(base + i % 13);
    asm volatile("" : : "r"(pointer) : "memory");
    std::free(pointer);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: probe_fingerprint same|swap|threads|fork LEAVE [COUNT]\n");
    return 2;
  }
  const char* order = argv[1];
  const char* leave = argv[2];
  size_t swap_at = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 300;

  auto* large = static_cast<char*>(std::malloc(8 << 20));
  std::memset(large, 1, 8 << 20);

  if (std::strcmp(order, "swap") == 0) {
    sequence(swap_at, 2000);
  } else {
    sequence(static_cast<size_t>(-2), 2000);
  }
  if (std::strcmp(order, "threads") == 0) {
    pthread_t threads[3];
    for (size_t i = 0; i < 3; ++i) {
      pthread_create(&threads[i], nullptr, worker, reinterpret_cast<void*>(100 * (i + 1)));
    }
    for (pthread_t thread : threads) {
      pthread_join(thread, nullptr);
    }
  }
  if (std::strcmp(order, "fork") == 0) {
    pid_t child = fork();
    if (child == 0) {
      sequence(static_cast<size_t>(-2), 100);
      std::exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
  }
  std::printf("large %p\n", static_cast<void*>(large));
  std::fflush(stdout);

  if (std::strcmp(leave, "_exit") == 0) {
    _exit(0);
  }
  if (std::strcmp(leave, "exec") == 0) {
    char* const args[] = {const_cast<char*>("/bin/true"), nullptr};
    execv("/bin/true", args);
    return 3;
  }
  if (std::strcmp(leave, "abort") == 0) {
    std::abort();
  }
  if (std::strcmp(leave, "kill") == 0) {
    kill(getpid(), SIGKILL);
  }
  return 0;
}
