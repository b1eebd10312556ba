// Who made a call the library serves: the native code address as module and
// offset (and symbol when dladdr names one), and, when the calling thread
// runs Python code and holds the interpreter's lock, the Python frames.
#pragma once

#include <cstddef>

namespace memdet::preload {

// Whether the Python frames of a thread that has released the interpreter's
// lock (CPython drops it around blocking calls, os.urandom's getrandom
// among them) are read too, by taking the lock back for the walk. Only for
// calls where waiting for the lock cannot deadlock: the thread holds no
// lock of its own there, as in a system call made between
// Py_BEGIN_ALLOW_THREADS and Py_END_ALLOW_THREADS.
enum class PythonFrames { kIfHeld, kTakeLock };

// Writes the caller of `address` (a return address) into `out` as
//   <module basename>+0x<offset>[:<symbol>][|py:<file>:<line>;<file>:<line>...]
// with the Python frames innermost first (at most 8), tabs and newlines
// replaced by spaces, and terminates it. Returns the length written. Never
// allocates through the hooks except inside the interpreter's own calls.
size_t describe_caller(const void* address, char* out, size_t capacity,
                       PythonFrames frames = PythonFrames::kIfHeld);

}  // namespace memdet::preload
