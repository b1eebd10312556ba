// Threads for the pinning tests. The main thread creates 4 threads, one
// after another; while all are alive each prints the CPUs sched_getaffinity
// gives it ("thread <index> <tid> <list>"), and the main thread prints every
// task's Cpus_allowed_list from /proc/self/task ("task <tid> <list>") and its
// own mask ("main <list>"). Thread 1 also creates a nested thread ("nested")
// and forks a child that prints its mask ("child <list>").
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int kThreads = 4;
pthread_barrier_t g_all_started;
pthread_barrier_t g_main_looked;

std::string own_mask() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) != 0) {
    return "?";
  }
  std::string list;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) {
      list += (list.empty() ? "" : ",") + std::to_string(cpu);
    }
  }
  return list;
}

long tid() { return ::syscall(SYS_gettid); }

void* nested(void*) {
  std::printf("nested %ld %s\n", tid(), own_mask().c_str());
  return nullptr;
}

void* worker(void* argument) {
  auto index = reinterpret_cast<intptr_t>(argument);
  std::printf("thread %ld %ld %s\n", static_cast<long>(index), tid(), own_mask().c_str());
  std::fflush(stdout);
  if (index == 1) {
    pthread_t inner;
    if (::pthread_create(&inner, nullptr, nested, nullptr) == 0) {
      ::pthread_join(inner, nullptr);
    }
    pid_t child = ::fork();
    if (child == 0) {
      std::printf("child %s\n", own_mask().c_str());
      std::fflush(stdout);
      std::exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
  }
  ::pthread_barrier_wait(&g_all_started);
  ::pthread_barrier_wait(&g_main_looked);
  return nullptr;
}

void print_tasks() {
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) {
    return;
  }
  while (dirent* entry = ::readdir(tasks)) {
    if (entry->d_name[0] == '.') {
      continue;
    }
    std::string path = std::string("/proc/self/task/") + entry->d_name + "/status";
    std::FILE* status = std::fopen(path.c_str(), "r");
    if (status == nullptr) {
      continue;
    }
    char line[512];
    while (std::fgets(line, sizeof line, status) != nullptr) {
      if (std::strncmp(line, "Cpus_allowed_list:", 18) == 0) {
        std::printf("task %s %s", entry->d_name, line + 18 + std::strspn(line + 18, " \t"));
      }
    }
    std::fclose(status);
  }
  ::closedir(tasks);
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  ::pthread_barrier_init(&g_all_started, nullptr, kThreads + 1);
  ::pthread_barrier_init(&g_main_looked, nullptr, kThreads + 1);
  pthread_t threads[kThreads];
  for (intptr_t i = 0; i < kThreads; ++i) {
    if (::pthread_create(&threads[i], nullptr, worker, reinterpret_cast<void*>(i + 1)) != 0) {
      return 1;
    }
  }
  ::pthread_barrier_wait(&g_all_started);
  std::printf("main %ld %s\n", tid(), own_mask().c_str());
  print_tasks();
  ::pthread_barrier_wait(&g_main_looked);
  for (pthread_t thread : threads) {
    ::pthread_join(thread, nullptr);
  }
  return 0;
}
