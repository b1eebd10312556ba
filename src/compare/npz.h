// Reading NumPy .npz archives (np.savez, np.savez_compressed): a zip of
// .npy members, stored or deflated.
//
// libzip reads the directory and decompresses deflated members, in bounded
// chunks. Stored members are compared straight from the file mapping: the
// data offset comes from each member's local header, which libzip does not
// expose, so the central directory's record of where that header lies is
// read here as well and checked against libzip's view of the same entry.
// Members start at any offset (numpy's first member's data is at byte 55),
// which the tensor comparison handles with unaligned loads.
#pragma once

#include <memory>
#include <string>

#include "compare/mapped_file.h"

#include "compare/tensor_diff.h"
#include "core/result.h"

namespace memdet::compare {

// Opens an .npz archive. Members are named by their path with ".npy"
// stripped, so "sub/a.npy" is tensor "sub/a"; two members that strip to one
// name, a member that is not an .npy file, an object array, and an encrypted
// or otherwise compressed member are errors. Errors start with the path.
Result<TensorSet> open_npz(const std::string& path);

// The same over a file already mapped, which the set keeps.
Result<TensorSet> open_npz(const std::string& path, std::shared_ptr<MappedFile> file);

}  // namespace memdet::compare
