// A regular file mapped read-only, for the readers that look at a whole
// artifact without copying it: safetensors, npz, and .npy in `memdet diff`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace memdet::compare {

class MappedFile {
 public:
  // Opens and maps path. A FIFO or device in its place is refused without
  // blocking; an empty file maps to no bytes. Errors carry errno's text and
  // leave naming the file to the caller.
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::string_view bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }

 private:
  MappedFile(const char* data, size_t size) : data_(data), size_(size) {}

  const char* data_;
  size_t size_;
};

}  // namespace memdet::compare
