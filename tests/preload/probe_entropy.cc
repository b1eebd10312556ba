// Reads OS entropy through one source, named by the first argument, and
// prints what it got as "<label> <hex>" lines, for tests/preload/entropy.sh.
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>

extern char** environ;

namespace {

void print_hex(const char* label, const void* data, size_t size) {
  std::string text;
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    char pair[3];
    snprintf(pair, sizeof pair, "%02x", bytes[i]);
    text += pair;
  }
  printf("%s %s\n", label, text.c_str());
}

void print_words(const char* label, const uint32_t* words, size_t count) {
  printf("%s", label);
  for (size_t i = 0; i < count; ++i) {
    printf(" %08x", words[i]);
  }
  printf("\n");
}

[[noreturn]] void die(const char* what) {
  perror(what);
  exit(2);
}

int open_or_die(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    die(path);
  }
  return fd;
}

void read_fd(const char* label, int fd, size_t size) {
  unsigned char buffer[64];
  ssize_t got = read(fd, buffer, size);
  if (got != static_cast<ssize_t>(size)) {
    die("read");
  }
  print_hex(label, buffer, size);
}

void print_getrandom(const char* label) {
  unsigned char buffer[16];
  if (getrandom(buffer, sizeof buffer, 0) != static_cast<ssize_t>(sizeof buffer)) {
    die("getrandom");
  }
  print_hex(label, buffer, sizeof buffer);
}

void* thread_read(void* out) {
  if (getrandom(out, 16, 0) != 16) {
    die("getrandom");
  }
  return nullptr;
}

FILE* fopen_or_die(const char* path) {
  FILE* file = fopen(path, "rb");
  if (file == nullptr) {
    die(path);
  }
  return file;
}

int run(const std::string& mode, int argc, char** argv) {
  unsigned char buffer[64];
  if (mode == "getrandom") {
    print_getrandom("getrandom");
  } else if (mode == "getentropy") {
    if (getentropy(buffer, 16) != 0) {
      die("getentropy");
    }
    print_hex("getentropy", buffer, 16);
  } else if (mode == "arc4random") {
    uint32_t words[4] = {arc4random(), arc4random(), arc4random(), arc4random()};
    print_words("arc4random", words, 4);
  } else if (mode == "arc4random_buf") {
    arc4random_buf(buffer, 16);
    print_hex("arc4random_buf", buffer, 16);
  } else if (mode == "arc4random_uniform") {
    uint32_t words[4] = {arc4random_uniform(1000000), arc4random_uniform(1000000),
                         arc4random_uniform(1000000), arc4random_uniform(1000000)};
    for (uint32_t word : words) {
      if (word >= 1000000) {
        fprintf(stderr, "arc4random_uniform out of range: %u\n", word);
        return 1;
      }
    }
    print_words("arc4random_uniform", words, 4);
  } else if (mode == "syscall") {
    if (syscall(SYS_getrandom, buffer, 16, 0) != 16) {
      die("syscall");
    }
    print_hex("syscall", buffer, 16);
    // Another system call passes through with its arguments.
    if (syscall(SYS_getpid) != getpid()) {
      fprintf(stderr, "syscall(SYS_getpid) differs from getpid()\n");
      return 1;
    }
  } else if (mode == "urandom" || mode == "random") {
    int fd = open_or_die(mode == "urandom" ? "/dev/urandom" : "/dev/random");
    read_fd(mode.c_str(), fd, 16);
    close(fd);
  } else if (mode == "openat") {
    int fd = openat(AT_FDCWD, "/dev/urandom", O_RDONLY);
    if (fd < 0) {
      die("openat");
    }
    read_fd("openat", fd, 16);
    close(fd);
  } else if (mode == "readv") {
    int fd = open_or_die("/dev/urandom");
    iovec vectors[2] = {{buffer, 8}, {buffer + 8, 8}};
    if (readv(fd, vectors, 2) != 16) {
      die("readv");
    }
    print_hex("readv", buffer, 16);
    close(fd);
  } else if (mode == "pread") {
    int fd = open_or_die("/dev/urandom");
    if (pread(fd, buffer, 16, 0) != 16) {
      die("pread");
    }
    print_hex("pread", buffer, 16);
    close(fd);
  } else if (mode == "dup") {
    int fd = open_or_die("/dev/urandom");
    int copy = dup(fd);
    int second = dup2(fd, 40);
    int third = fcntl(fd, F_DUPFD_CLOEXEC, 50);
    if (copy < 0 || second != 40 || third < 50) {
      die("dup");
    }
    read_fd("dup", copy, 16);
    read_fd("dup2", second, 16);
    read_fd("fcntl", third, 16);
    // A number closed behind the library's back and reused by a pipe
    // reads what it now names.
    syscall(SYS_close, copy);
    int ends[2];
    if (pipe(ends) != 0 || ends[0] != copy) {
      fprintf(stderr, "expected the pipe at %d, got %d\n", copy, ends[0]);
      return 1;
    }
    memset(buffer, 0, 16);
    if (write(ends[1], buffer, 16) != 16) {
      die("write");
    }
    read_fd("pipe", ends[0], 16);
    close(fd);
  } else if (mode == "uuid") {
    int fd = open_or_die("/proc/sys/kernel/random/uuid");
    ssize_t got = read(fd, buffer, sizeof buffer);
    if (got != 37) {
      fprintf(stderr, "uuid read gave %zd bytes\n", got);
      return 1;
    }
    printf("uuid %.36s\n", reinterpret_cast<char*>(buffer));
    close(fd);
  } else if (mode == "fopen") {
    FILE* file = fopen_or_die("/dev/urandom");
    if (fread(buffer, 1, 16, file) != 16) {
      die("fread");
    }
    print_hex("fopen", buffer, 16);
    fclose(file);
  } else if (mode == "fread_unlocked") {
    FILE* file = fopen_or_die("/dev/urandom");
    if (fread_unlocked(buffer, 4, 4, file) != 4) {
      die("fread_unlocked");
    }
    print_hex("fread_unlocked", buffer, 16);
    fclose(file);
  } else if (mode == "fgetc") {
    FILE* file = fopen_or_die("/dev/urandom");
    // Through a pointer: with optimisation glibc's stdio.h inlines
    // getc_unlocked, which then reads the stream's buffer itself.
    int (*volatile unlocked)(FILE*) = getc_unlocked;
    int values[4] = {fgetc(file), getc(file), unlocked(file), fgetc(file)};
    for (int i = 0; i < 4; ++i) {
      buffer[i] = static_cast<unsigned char>(values[i]);
    }
    print_hex("fgetc", buffer, 4);
    fclose(file);
  } else if (mode == "fgets") {
    FILE* file = fopen_or_die("/proc/sys/kernel/random/uuid");
    char line[64];
    if (fgets(line, sizeof line, file) == nullptr || strlen(line) != 37) {
      die("fgets");
    }
    printf("fgets %.36s\n", line);
    if (fgets(line, sizeof line, file) != nullptr || !feof(file)) {
      fprintf(stderr, "a second fgets of the uuid file gave more\n");
      return 1;
    }
    fclose(file);
  } else if (mode == "freopen") {
    FILE* file = freopen("/dev/urandom", "rb", stdin);
    if (file == nullptr || fread(buffer, 1, 16, file) != 16) {
      die("freopen");
    }
    print_hex("freopen", buffer, 16);
  } else if (mode == "random_device") {
    std::random_device device;
    uint32_t words[4] = {device(), device(), device(), device()};
    print_words("random_device", words, 4);
  } else if (mode == "fork") {
    for (int child = 1; child <= 2; ++child) {
      fflush(stdout);
      pid_t pid = fork();
      if (pid < 0) {
        die("fork");
      }
      if (pid == 0) {
        std::string label = "child" + std::to_string(child);
        print_getrandom(label.c_str());
        fflush(stdout);
        _exit(0);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "child %d failed\n", child);
        return 1;
      }
    }
    print_getrandom("parent");
  } else if (mode == "threads") {
    unsigned char results[3][16];
    pthread_t threads[3];
    for (int i = 0; i < 3; ++i) {
      pthread_create(&threads[i], nullptr, thread_read, results[i]);
    }
    for (int i = 0; i < 3; ++i) {
      pthread_join(threads[i], nullptr);
    }
    for (int i = 0; i < 3; ++i) {
      std::string label = "thread" + std::to_string(i + 1);
      print_hex(label.c_str(), results[i], 16);
    }
    print_getrandom("main");
  } else if (mode == "exec") {
    // The parent reads, then replaces itself with a child that reads.
    print_getrandom(argc > 2 ? "child" : "parent");
    const char* variable = getenv("MEMDET_PRELOAD");
    printf("%s_environment %zu\n", argc > 2 ? "child" : "parent",
           variable != nullptr ? strlen(variable) : 0);
    if (argc == 2) {
      fflush(stdout);
      char* child_argv[] = {argv[0], const_cast<char*>("exec"), const_cast<char*>("child"),
                            nullptr};
      execv(argv[0], child_argv);
      die("execv");
    }
  } else if (mode == "exec_sh") {
    print_getrandom("parent");
    fflush(stdout);
    std::string command = std::string(argv[0]) + " getrandom";
    char* child_argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"), command.data(),
                          nullptr};
    execv("/bin/sh", child_argv);
    die("execv");
  } else if (mode == "spawn") {
    print_getrandom("parent");
    fflush(stdout);
    for (int child = 1; child <= 2; ++child) {
      char* child_argv[] = {argv[0], const_cast<char*>("getrandom"), nullptr};
      pid_t pid = 0;
      int result = child == 1 ? posix_spawn(&pid, argv[0], nullptr, nullptr, child_argv, environ)
                              : posix_spawnp(&pid, argv[0], nullptr, nullptr, child_argv, environ);
      int status = 0;
      if (result != 0 || waitpid(pid, &status, 0) != pid || status != 0) {
        fprintf(stderr, "spawned child %d failed\n", child);
        return 1;
      }
    }
  } else if (mode == "window") {
    for (int i = 1; i <= 3; ++i) {
      std::string label = "read" + std::to_string(i);
      print_getrandom(label.c_str());
    }
  } else {
    fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe_entropy MODE\n");
    return 2;
  }
  return run(argv[1], argc, argv);
}
