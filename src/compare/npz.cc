#include "compare/npz.h"

#include <zip.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "compare/mapped_file.h"

namespace memdet::compare {

namespace {

constexpr std::string_view kNpyMagic = "\x93NUMPY";
constexpr size_t kChunkBytes = 1 << 20;
// The most an .npy preamble and header can take before the header parser
// refuses it; read_npy_header bounds its own reads the same way.
constexpr uint64_t kMaxNpyHeader = (uint64_t{1} << 20) + 12;

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64End = 0x06064b50;
constexpr uint16_t kZip64Extra = 0x0001;

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

uint64_t load_le(std::string_view bytes, size_t offset, size_t width) {
  uint64_t value = 0;
  for (size_t i = 0; i < width; ++i) {
    value |= uint64_t{static_cast<unsigned char>(bytes[offset + i])} << (8 * i);
  }
  return value;
}

// Where each central directory entry says its local header lies, with the
// entry's raw name, in directory order.
struct DirectoryRecord {
  std::string name;
  uint64_t local_header = 0;
};

// Reads the central directory's records of where local headers are; the
// rest of the directory is libzip's to read. Every offset is checked
// against the file before it is followed.
Result<std::vector<DirectoryRecord>> read_local_offsets(std::string_view file) {
  const auto bad = [](const std::string& what) {
    return make_error("not a valid zip archive: " + what);
  };
  // The end record is 22 bytes and may be followed by a comment of up to
  // 65535 bytes; the last signature whose comment reaches the end is it.
  if (file.size() < 22) return bad("too short for an end of central directory record");
  size_t end = std::string_view::npos;
  const size_t lowest = file.size() > 22 + 65535 ? file.size() - 22 - 65535 : 0;
  for (size_t at = file.size() - 22 + 1; at-- > lowest;) {
    if (load_le(file, at, 4) == kEndOfDirectory &&
        at + 22 + load_le(file, at + 20, 2) == file.size()) {
      end = at;
      break;
    }
  }
  if (end == std::string_view::npos) return bad("no end of central directory record");

  uint64_t entries = load_le(file, end + 10, 2);
  uint64_t directory_size = load_le(file, end + 12, 4);
  uint64_t directory_offset = load_le(file, end + 16, 4);
  if (entries == 0xffff || directory_size == 0xffffffff || directory_offset == 0xffffffff) {
    if (end < 20 || load_le(file, end - 20, 4) != kZip64Locator) {
      return bad("zip64 sizes without a zip64 locator");
    }
    const uint64_t zip64_end = load_le(file, end - 20 + 8, 8);
    if (zip64_end > file.size() || file.size() - zip64_end < 56 ||
        load_le(file, zip64_end, 4) != kZip64End) {
      return bad("zip64 end record out of place");
    }
    entries = load_le(file, zip64_end + 32, 8);
    directory_size = load_le(file, zip64_end + 40, 8);
    directory_offset = load_le(file, zip64_end + 48, 8);
  }
  if (directory_offset > file.size() || directory_size > file.size() - directory_offset) {
    return bad("central directory runs past the end of the file");
  }

  std::vector<DirectoryRecord> records;
  const std::string_view directory = file.substr(directory_offset, directory_size);
  size_t at = 0;
  // Each record takes at least 46 bytes, which bounds the count that a
  // lying end record can make this reserve.
  records.reserve(std::min<uint64_t>(entries, directory.size() / 46));
  for (uint64_t i = 0; i < entries; ++i) {
    if (directory.size() - at < 46 || load_le(directory, at, 4) != kCentralHeader) {
      return bad("central directory entry " + std::to_string(i) + " is malformed");
    }
    const size_t name_length = load_le(directory, at + 28, 2);
    const size_t extra_length = load_le(directory, at + 30, 2);
    const size_t comment_length = load_le(directory, at + 32, 2);
    if (directory.size() - at - 46 < name_length + extra_length + comment_length) {
      return bad("central directory entry " + std::to_string(i) + " runs past the directory");
    }
    DirectoryRecord record;
    record.name = std::string(directory.substr(at + 46, name_length));
    record.local_header = load_le(directory, at + 42, 4);

    // The zip64 extra field holds, in this order, whichever of the sizes
    // and the offset did not fit in 32 bits.
    if (record.local_header == 0xffffffff) {
      const std::string_view extra = directory.substr(at + 46 + name_length, extra_length);
      size_t field = 0;
      bool found = false;
      while (extra.size() - field >= 4) {
        const uint64_t id = load_le(extra, field, 2);
        const size_t size = load_le(extra, field + 2, 2);
        if (extra.size() - field - 4 < size) break;
        if (id == kZip64Extra) {
          size_t skip = 0;
          if (load_le(directory, at + 24, 4) == 0xffffffff) skip += 8;
          if (load_le(directory, at + 20, 4) == 0xffffffff) skip += 8;
          if (size >= skip + 8) {
            record.local_header = load_le(extra, field + 4 + skip, 8);
            found = true;
          }
          break;
        }
        field += 4 + size;
      }
      if (!found) return bad("entry " + in_quotes(record.name) + " has no zip64 offset");
    }
    records.push_back(std::move(record));
    at += 46 + name_length + extra_length + comment_length;
  }
  return records;
}

// Where a stored member's data begins: after its local header, its name and
// its extra field, whose lengths the local header gives.
Result<uint64_t> stored_data_offset(std::string_view file, uint64_t local_header) {
  if (local_header > file.size() || file.size() - local_header < 30 ||
      load_le(file, local_header, 4) != kLocalHeader) {
    return make_error("local header out of place");
  }
  return local_header + 30 + load_le(file, local_header + 26, 2) +
         load_le(file, local_header + 28, 2);
}

// The archive, closed when the last stream reading from it goes. It reads
// from the mapping, which it keeps.
struct Archive {
  std::shared_ptr<MappedFile> file;
  zip_t* zip = nullptr;
  ~Archive() {
    if (zip != nullptr) zip_discard(zip);
  }
};

// A deflated member's data, decompressed by libzip a chunk at a time.
class ZipStream : public ByteStream {
 public:
  ZipStream(std::shared_ptr<Archive> archive, zip_file_t* member, std::string name, uint64_t left)
      : archive_(std::move(archive)), member_(member), name_(std::move(name)), left_(left) {}
  ZipStream(const ZipStream&) = delete;
  ZipStream& operator=(const ZipStream&) = delete;
  ~ZipStream() override { zip_fclose(member_); }

  // Reads exactly bytes into buffer_ (at most kChunkBytes).
  Status fill(size_t bytes) {
    buffer_.resize(std::max(buffer_.size(), bytes));
    size_t done = 0;
    while (done < bytes) {
      const zip_int64_t n = zip_fread(member_, buffer_.data() + done, bytes - done);
      if (n < 0)
        return make_error("member " + in_quotes(name_) + ": " + zip_file_strerror(member_));
      if (n == 0) {
        return make_error("member " + in_quotes(name_) +
                          " holds less data than its directory entry says");
      }
      done += static_cast<size_t>(n);
    }
    return {};
  }

  // Discards the first bytes of the member: its .npy header.
  Status skip(uint64_t bytes) {
    while (bytes > 0) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(bytes, kChunkBytes));
      if (Status filled = fill(n); !filled) return filled;
      bytes -= n;
    }
    return {};
  }

  Result<std::string_view> next(size_t max) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>({max, left_, kChunkBytes}));
    if (Status filled = fill(n); !filled) return filled.error();
    left_ -= n;
    if (left_ == 0) {
      // One read past the end lets libzip check the member's CRC.
      char probe;
      const zip_int64_t extra = zip_fread(member_, &probe, 1);
      if (extra < 0)
        return make_error("member " + in_quotes(name_) + ": " + zip_file_strerror(member_));
      if (extra > 0) {
        return make_error("member " + in_quotes(name_) + " holds more data than its header says");
      }
    }
    return std::string_view(buffer_.data(), n);
  }

 private:
  std::shared_ptr<Archive> archive_;
  zip_file_t* member_;
  std::string name_;
  uint64_t left_;
  std::vector<char> buffer_;
};

Result<zip_file_t*> open_member(const Archive& archive, zip_uint64_t index,
                                const std::string& name) {
  zip_file_t* member = zip_fopen_index(archive.zip, index, 0);
  if (member == nullptr) {
    return make_error("member " + in_quotes(name) + ": " + zip_strerror(archive.zip));
  }
  return member;
}

// The first bytes of a member, decompressed: bytes of them, or all the
// member has when it is shorter.
Result<std::string> read_member_prefix(const Archive& archive, zip_uint64_t index,
                                       const std::string& name, uint64_t bytes) {
  auto member = open_member(archive, index, name);
  if (!member) return member.error();
  std::string prefix(static_cast<size_t>(bytes), '\0');
  size_t done = 0;
  while (done < prefix.size()) {
    const zip_int64_t n = zip_fread(*member, prefix.data() + done, prefix.size() - done);
    if (n < 0) {
      Error error = make_error("member " + in_quotes(name) + ": " + zip_file_strerror(*member));
      zip_fclose(*member);
      return error;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  zip_fclose(*member);
  prefix.resize(done);
  return prefix;
}

// A deflated member: its header decompressed and parsed now, its data
// streamed when the comparison asks for it.
Result<TensorSource> deflated_tensor(const std::shared_ptr<Archive>& archive, zip_uint64_t index,
                                     const std::string& member_name, std::string tensor_name,
                                     uint64_t size) {
  auto start = read_member_prefix(*archive, index, member_name, std::min<uint64_t>(size, 12));
  if (!start) return start.error();
  if (!start->starts_with(kNpyMagic)) return make_error("not an npy file (bad magic)");

  // The preamble gives the header's length; what is read for it is bounded
  // by the header parser's own limit, whatever the member claims.
  uint64_t header_end = start->size();
  if (start->size() >= 10 && (*start)[6] == 1) header_end = 10 + load_le(*start, 8, 2);
  if (start->size() >= 12 && (*start)[6] != 1) header_end = 12 + load_le(*start, 8, 4);
  auto prefix =
      read_member_prefix(*archive, index, member_name, std::min({size, header_end, kMaxNpyHeader}));
  if (!prefix) return prefix.error();
  auto header = parse_npy_header(*prefix, size);
  if (!header) return header.error();

  TensorSource source = npy_source(std::move(tensor_name), *header);
  const uint64_t data_offset = header->data_offset;
  const uint64_t data_bytes = header->data_bytes;
  source.open = [archive, index, member_name, data_offset,
                 data_bytes]() -> Result<std::unique_ptr<ByteStream>> {
    auto member = open_member(*archive, index, member_name);
    if (!member) return member.error();
    auto stream = std::make_unique<ZipStream>(archive, *member, member_name, data_bytes);
    if (Status skipped = stream->skip(data_offset); !skipped) return skipped.error();
    return std::unique_ptr<ByteStream>(std::move(stream));
  };
  return source;
}

Result<std::shared_ptr<Archive>> open_archive(std::shared_ptr<MappedFile> file) {
  auto archive = std::make_shared<Archive>();
  archive->file = std::move(file);
  zip_error_t error;
  zip_error_init(&error);
  const std::string_view bytes = archive->file->bytes();
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source != nullptr) {
    archive->zip = zip_open_from_source(source, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (archive->zip == nullptr) zip_source_free(source);
  }
  if (archive->zip == nullptr) {
    Error refused =
        make_error(std::string("not a valid zip archive: ") + zip_error_strerror(&error));
    zip_error_fini(&error);
    return refused;
  }
  zip_error_fini(&error);
  return archive;
}

Result<TensorSet> read_npz(const std::shared_ptr<MappedFile>& file) {
  auto archive = open_archive(file);
  if (!archive) return archive.error();
  const std::string_view bytes = file->bytes();
  auto records = read_local_offsets(bytes);
  if (!records) return records.error();
  const zip_int64_t count = zip_get_num_entries((*archive)->zip, 0);
  if (count < 0 || static_cast<uint64_t>(count) != records->size()) {
    return make_error(
        "not a valid zip archive: libzip and the central directory disagree on "
        "the number of members");
  }

  TensorSet set;
  set.keep_alive.push_back(*archive);
  std::map<std::string, std::string> member_of_tensor;
  for (zip_int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<zip_uint64_t>(i);
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index((*archive)->zip, index, ZIP_FL_ENC_RAW, &stat) != 0) {
      return make_error(std::string("member ") + std::to_string(i) + ": " +
                        zip_strerror((*archive)->zip));
    }
    const std::string name = stat.name != nullptr ? stat.name : "";
    const DirectoryRecord& record = (*records)[index];
    if (record.name != name) {
      return make_error("not a valid zip archive: member " + std::to_string(i) + " is named " +
                        in_quotes(name) + " by libzip and " + in_quotes(record.name) +
                        " by the central directory");
    }
    if (name.ends_with('/')) continue;  // a folder entry

    const auto refuse = [&name](const std::string& problem) {
      return make_error("member " + in_quotes(name) + ": " + problem);
    };
    std::string tensor = name.ends_with(".npy") ? name.substr(0, name.size() - 4) : name;
    const auto [clash, inserted] = member_of_tensor.emplace(tensor, name);
    if (!inserted) {
      return make_error("members " + in_quotes(clash->second) + " and " + in_quotes(name) +
                        " both name tensor " + in_quotes(tensor));
    }
    if ((stat.valid & ZIP_STAT_ENCRYPTION_METHOD) != 0 && stat.encryption_method != ZIP_EM_NONE) {
      return refuse("encrypted members are not supported");
    }

    if (stat.comp_method == ZIP_CM_STORE) {
      if (stat.comp_size != stat.size) return refuse("stored, but its two sizes differ");
      auto offset = stored_data_offset(bytes, record.local_header);
      if (!offset) return refuse(offset.error().message);
      if (*offset > bytes.size() || bytes.size() - *offset < stat.size) {
        return refuse("data runs past the end of the file");
      }
      const std::string_view member = bytes.substr(*offset, stat.size);
      if (!member.starts_with(kNpyMagic)) return refuse("not an npy file (bad magic)");
      auto source = npy_tensor(std::move(tensor), member);
      if (!source) return refuse(source.error().message);
      set.tensors.push_back(std::move(*source));
    } else if (stat.comp_method == ZIP_CM_DEFLATE) {
      auto source = deflated_tensor(*archive, index, name, std::move(tensor), stat.size);
      if (!source) return refuse(source.error().message);
      set.tensors.push_back(std::move(*source));
    } else {
      return refuse("compression method " + std::to_string(stat.comp_method) +
                    " is not supported (only stored and deflated)");
    }
  }
  return set;
}

}  // namespace

Result<TensorSet> open_npz(const std::string& path) {
  auto file = MappedFile::open(path);
  if (!file) return make_error(path + ": " + file.error().message);
  return open_npz(path, std::move(*file));
}

Result<TensorSet> open_npz(const std::string& path, std::shared_ptr<MappedFile> file) {
  auto set = read_npz(file);
  if (!set) return make_error(path + ": " + set.error().message);
  set->keep_alive.push_back(std::move(file));
  return set;
}

}  // namespace memdet::compare
