#include "compare/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core/sys.h"

namespace memdet::compare {

Result<std::shared_ptr<MappedFile>> MappedFile::open(const std::string& path) {
  // O_NONBLOCK: a FIFO in the artifact's place must not stall the open.
  sys::ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return make_error("cannot open: " + sys::errno_text(errno));

  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return make_error("cannot stat: " + sys::errno_text(errno));
  if (!S_ISREG(st.st_mode)) return make_error("not a regular file");

  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0) return std::shared_ptr<MappedFile>(new MappedFile(nullptr, 0));
  void* data = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (data == MAP_FAILED) return make_error("cannot map: " + sys::errno_text(errno));
  // The comparison reads front to back; read-ahead keeps it at disk speed.
  (void)::madvise(data, size, MADV_SEQUENTIAL);
  return std::shared_ptr<MappedFile>(new MappedFile(static_cast<const char*>(data), size));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(const_cast<char*>(data_), size_);
}

}  // namespace memdet::compare
