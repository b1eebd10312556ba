// Lists a directory through one libc interface and prints the names it
// gives, one a line, in the order given ("." and ".." left out), or checks
// one property of the DIR stream and prints "ok" or what went wrong.
//   probe_fileorder readdir|readdir64|readdir_r|scandir|scandir64|scandirat|
//                   scandir_compare|glob_nosort|glob_sorted|fts|filesystem DIR
//                   DIR...
//   probe_fileorder twice|tell|rewind|many|full|threads DIR
//   probe_fileorder walk nftw|nftw64|ftw|ftw64 FLAGS DESCRIPTORS DIR ACTION
// walk prints each visit as path, typeflag, level, base and the working
// directory, tab-separated (level and base "-" for ftw), then
// "return R" and, when R is -1, the errno name. FLAGS: "-" or a comma
// list of phys, mount, chdir, depth, actionretval, unknown (a flag nftw
// rejects). ACTION: "-"; skip=NAME, FTW_SKIP_SUBTREE from the directory
// NAME; stop=N:V, V from the N-th visit.
#include <dirent.h>
#include <fcntl.h>
#include <fts.h>
#include <ftw.h>
#include <glob.h>
#include <limits.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace {

using Names = std::vector<std::string>;

bool is_dot(const char* name) {
  return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0;
}

Names read_stream(DIR* dir) {
  Names names;
  while (struct dirent* entry = readdir(dir)) {
    if (!is_dot(entry->d_name)) {
      names.push_back(entry->d_name);
    }
  }
  return names;
}

Names list_readdir(const char* path) {
  DIR* dir = opendir(path);
  if (dir == nullptr) {
    std::perror("opendir");
    std::exit(2);
  }
  Names names = read_stream(dir);
  closedir(dir);
  return names;
}

Names list_readdir64(const char* path) {
  DIR* dir = opendir(path);
  Names names;
  while (struct dirent64* entry = readdir64(dir)) {
    if (!is_dot(entry->d_name)) {
      names.push_back(entry->d_name);
    }
  }
  closedir(dir);
  return names;
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
Names list_readdir_r(const char* path) {
  DIR* dir = opendir(path);
  Names names;
  struct dirent entry;
  struct dirent* result = nullptr;
  while (readdir_r(dir, &entry, &result) == 0 && result != nullptr) {
    if (!is_dot(entry.d_name)) {
      names.push_back(entry.d_name);
    }
  }
  closedir(dir);
  return names;
}
#pragma GCC diagnostic pop

template <typename Entry>
Names take_scandir(int count, Entry** list) {
  if (count < 0) {
    std::perror("scandir");
    std::exit(2);
  }
  Names names;
  for (int i = 0; i < count; ++i) {
    if (!is_dot(list[i]->d_name)) {
      names.push_back(list[i]->d_name);
    }
    std::free(list[i]);
  }
  std::free(list);
  return names;
}

int descending(const struct dirent** a, const struct dirent** b) {
  return std::strcmp((*b)->d_name, (*a)->d_name);
}

Names list_glob(const char* path, int flags) {
  std::string pattern = std::string(path) + "/*";
  glob_t found{};
  if (glob(pattern.c_str(), flags, nullptr, &found) != 0) {
    std::perror("glob");
    std::exit(2);
  }
  Names names;
  for (size_t i = 0; i < found.gl_pathc; ++i) {
    names.push_back(std::strrchr(found.gl_pathv[i], '/') + 1);
  }
  globfree(&found);
  return names;
}

Names list_fts(const char* path) {
  char* roots[] = {const_cast<char*>(path), nullptr};
  FTS* stream = fts_open(roots, FTS_PHYSICAL, nullptr);
  Names names;
  while (FTSENT* entry = fts_read(stream)) {
    if (entry->fts_level == 1 && entry->fts_info != FTS_DP) {
      names.push_back(entry->fts_name);
    }
  }
  fts_close(stream);
  return names;
}

Names list_filesystem(const char* path) {
  Names names;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

std::string joined(const Names& names) {
  std::string text;
  for (const std::string& name : names) {
    text += name + " ";
  }
  return text;
}

// telldir gives a position that seekdir returns to, in the middle of the
// stream and at its end.
int check_tell(const char* path) {
  DIR* dir = opendir(path);
  for (int i = 0; i < 5; ++i) {
    readdir(dir);
  }
  long middle = telldir(dir);
  std::string expected = readdir(dir)->d_name;
  readdir(dir);
  readdir(dir);
  seekdir(dir, middle);
  std::string again = readdir(dir)->d_name;
  if (again != expected) {
    std::printf("telldir %ld gave %s, then %s\n", middle, expected.c_str(), again.c_str());
    return 1;
  }
  while (readdir(dir) != nullptr) {
  }
  long end = telldir(dir);
  seekdir(dir, middle);
  seekdir(dir, end);
  if (readdir(dir) != nullptr) {
    std::printf("seekdir to the end %ld still reads\n", end);
    return 1;
  }
  closedir(dir);
  std::printf("ok\n");
  return 0;
}

// rewinddir drops the snapshot: a file created meanwhile shows.
int check_rewind(const char* path) {
  DIR* dir = opendir(path);
  Names before = read_stream(dir);
  std::string added = std::string(path) + "/added_after_listing";
  close(open(added.c_str(), O_CREAT | O_WRONLY, 0644));
  rewinddir(dir);
  Names after = read_stream(dir);
  closedir(dir);
  unlink(added.c_str());
  bool seen = false;
  for (const std::string& name : after) {
    seen = seen || name == "added_after_listing";
  }
  if (!seen || after.size() != before.size() + 1) {
    std::printf("after rewinddir: %zu entries (before %zu), new file seen: %d\n", after.size(),
                before.size(), seen);
    return 1;
  }
  std::printf("ok\n");
  return 0;
}

// `count` streams of one directory open at once, read one entry each in
// turn: each must give the whole listing, all in one order.
int check_many(const char* path, int count) {
  std::vector<DIR*> dirs;
  for (int i = 0; i < count; ++i) {
    dirs.push_back(opendir(path));
    if (dirs.back() == nullptr) {
      std::perror("opendir");
      return 2;
    }
  }
  std::vector<Names> lists(dirs.size());
  for (bool more = true; more;) {
    more = false;
    for (size_t i = 0; i < dirs.size(); ++i) {
      if (struct dirent* entry = readdir(dirs[i])) {
        more = true;
        if (!is_dot(entry->d_name)) {
          lists[i].push_back(entry->d_name);
        }
      }
    }
  }
  for (DIR* dir : dirs) {
    closedir(dir);
  }
  Names reference = list_readdir(path);
  for (const Names& list : lists) {
    if (list.size() != reference.size()) {
      std::printf("a stream gave %zu entries, expected %zu\n", list.size(), reference.size());
      return 1;
    }
  }
  // Only the streams the library ordered need agree; with the table full
  // the rest come in the stream's own order.
  int same = 0;
  for (const Names& list : lists) {
    same += list == reference ? 1 : 0;
  }
  std::printf("ok %d of %zu in one order\n", same, lists.size());
  return 0;
}

// Threads listing one directory at once, each its own streams: every
// listing whole and in one order.
int check_threads(const char* path) {
  Names reference = list_readdir(path);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (list_readdir(path) != reference) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  if (wrong.load() != 0) {
    std::printf("%d of 1600 listings differ\n", wrong.load());
    return 1;
  }
  std::printf("ok\n");
  return 0;
}

// What the walk callbacks do, set from the command line.
struct WalkAction {
  std::string skip;  // FTW_SKIP_SUBTREE from the directory of this name
  int stop_at = 0;   // this visit returns stop_value (0: none)
  int stop_value = 0;
  int visits = 0;
};
WalkAction g_action;

int visited(const char* path, int flag, const struct FTW* ftw) {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof cwd) == nullptr) {
    std::strcpy(cwd, "?");
  }
  if (ftw != nullptr) {
    std::printf("%s\t%d\t%d\t%d\t%s\n", path, flag, ftw->level, ftw->base, cwd);
  } else {
    std::printf("%s\t%d\t-\t-\t%s\n", path, flag, cwd);
  }
  ++g_action.visits;
  if (g_action.visits == g_action.stop_at) {
    return g_action.stop_value;
  }
  const char* name = std::strrchr(path, '/');
  name = name == nullptr ? path : name + 1;
  if (flag == FTW_D && !g_action.skip.empty() && g_action.skip == name) {
    return FTW_SKIP_SUBTREE;
  }
  return 0;
}

int on_nftw(const char* path, const struct stat*, int flag, struct FTW* ftw) {
  return visited(path, flag, ftw);
}
int on_nftw64(const char* path, const struct stat64*, int flag, struct FTW* ftw) {
  return visited(path, flag, ftw);
}
int on_ftw(const char* path, const struct stat*, int flag) { return visited(path, flag, nullptr); }
int on_ftw64(const char* path, const struct stat64*, int flag) {
  return visited(path, flag, nullptr);
}

int walk_flags(const std::string& list) {
  struct Named {
    const char* name;
    int flag;
  };
  static const Named kFlags[] = {{"phys", FTW_PHYS},
                                 {"mount", FTW_MOUNT},
                                 {"chdir", FTW_CHDIR},
                                 {"depth", FTW_DEPTH},
                                 {"actionretval", FTW_ACTIONRETVAL},
                                 {"unknown", 0x4000}};
  int flags = 0;
  std::string rest = list == "-" ? "" : list + ",";
  for (size_t comma; (comma = rest.find(',')) != std::string::npos; rest.erase(0, comma + 1)) {
    std::string name = rest.substr(0, comma);
    int flag = -1;
    for (const Named& known : kFlags) {
      flag = name == known.name ? known.flag : flag;
    }
    if (flag == -1) {
      std::fprintf(stderr, "unknown flag %s\n", name.c_str());
      std::exit(2);
    }
    flags |= flag;
  }
  return flags;
}

int walk(char** argv) {
  std::string api = argv[0];
  int flags = walk_flags(argv[1]);
  int descriptors = std::atoi(argv[2]);
  const char* path = argv[3];
  std::string action = argv[4];
  if (action.rfind("skip=", 0) == 0) {
    g_action.skip = action.substr(5);
  } else if (action.rfind("stop=", 0) == 0) {
    g_action.stop_at = std::atoi(action.c_str() + 5);
    g_action.stop_value = std::atoi(action.c_str() + action.find(':') + 1);
  }
  errno = 0;
  int result = api == "nftw"     ? nftw(path, on_nftw, descriptors, flags)
               : api == "nftw64" ? nftw64(path, on_nftw64, descriptors, flags)
               : api == "ftw"    ? ftw(path, on_ftw, descriptors)
                                 : ftw64(path, on_ftw64, descriptors);
  int error = errno;
  std::printf("return %d", result);
  if (result == -1) {
    std::printf(" %s", error == ENOENT ? "ENOENT" : error == EINVAL ? "EINVAL" : strerror(error));
  }
  std::printf("\n");
  return 0;
}

// Names one listing mode; false for a mode that is no listing.
bool list(const std::string& mode, const char* path, Names& names) {
  if (mode == "readdir") {
    names = list_readdir(path);
  } else if (mode == "readdir64") {
    names = list_readdir64(path);
  } else if (mode == "readdir_r") {
    names = list_readdir_r(path);
  } else if (mode == "scandir") {
    struct dirent** list = nullptr;
    int count = scandir(path, &list, nullptr, nullptr);
    names = take_scandir(count, list);
  } else if (mode == "scandir64") {
    struct dirent64** list = nullptr;
    int count = scandir64(path, &list, nullptr, nullptr);
    names = take_scandir(count, list);
  } else if (mode == "scandirat") {
    struct dirent** list = nullptr;
    int count = scandirat(AT_FDCWD, path, &list, nullptr, nullptr);
    names = take_scandir(count, list);
  } else if (mode == "scandir_compare") {
    struct dirent** list = nullptr;
    int count = scandir(path, &list, nullptr, descending);
    names = take_scandir(count, list);
  } else if (mode == "glob_nosort") {
    names = list_glob(path, GLOB_NOSORT);
  } else if (mode == "glob_sorted") {
    names = list_glob(path, 0);
  } else if (mode == "fts") {
    names = list_fts(path);
  } else if (mode == "filesystem") {
    names = list_filesystem(path);
  } else {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: probe_fileorder MODE DIR...\n");
    return 2;
  }
  std::string mode = argv[1];
  const char* path = argv[2];
  Names names;
  if (list(mode, path, names)) {
    for (int i = 3; i < argc; ++i) {
      Names more;
      list(mode, argv[i], more);
      names.insert(names.end(), more.begin(), more.end());
    }
    for (const std::string& name : names) {
      std::printf("%s\n", name.c_str());
    }
    return 0;
  }
  if (mode == "twice") {
    Names first = list_readdir(path);
    Names second = list_readdir(path);
    std::printf(first == second ? "ok\n" : "differ: %s| %s\n", joined(first).c_str(),
                joined(second).c_str());
    return first == second ? 0 : 1;
  }
  if (mode == "tell") {
    return check_tell(path);
  }
  if (mode == "rewind") {
    return check_rewind(path);
  }
  if (mode == "many") {
    return check_many(path, 40);
  }
  if (mode == "full") {
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_max < 1200) {
      std::printf("skip: descriptor limit %lu\n", static_cast<unsigned long>(limit.rlim_max));
      return 0;
    }
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    return check_many(path, 1100);
  }
  if (mode == "threads") {
    return check_threads(path);
  }
  if (mode == "walk") {
    if (argc != 7) {
      std::fprintf(stderr, "usage: probe_fileorder walk API FLAGS DESCRIPTORS DIR ACTION\n");
      return 2;
    }
    return walk(argv + 2);
  }
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}
