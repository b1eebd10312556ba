#include "preload/caller.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdint>

#include "preload/prim.h"

namespace memdet::preload {
namespace {

// The few CPython entry points the frame walk needs, found in the process
// (the interpreter exports them for its extension modules). All or none.
struct Python {
  int (*is_initialized)() = nullptr;
  void* (*unchecked_thread_state)() = nullptr;
  int (*gil_check)() = nullptr;
  void* (*current_frame)() = nullptr;
  void* (*frame_back)(void*) = nullptr;  // new reference
  void* (*frame_code)(void*) = nullptr;  // new reference
  int (*frame_line)(void*) = nullptr;
  void* (*get_attribute)(void*, const char*) = nullptr;  // new reference
  const char* (*utf8)(void*) = nullptr;
  void (*release)(void*) = nullptr;
  void (*clear_error)() = nullptr;
  // Optional: taking the lock back for a thread that released it.
  void* (*this_thread_state)() = nullptr;  // PyGILState_GetThisThreadState
  int (*ensure)() = nullptr;               // PyGILState_Ensure
  void (*release_state)(int) = nullptr;    // PyGILState_Release
  int (*finalizing)() = nullptr;           // Py_IsFinalizing, _Py_IsFinalizing
  bool complete = false;
  bool can_take_lock = false;
};

constexpr int kUnresolved = 0;
constexpr int kResolving = 1;
constexpr int kResolved = 2;
std::atomic<int> g_python_state{kUnresolved};
Python g_python;

template <typename Function>
void find(Function& function, const char* name) {
  function = reinterpret_cast<Function>(::dlsym(RTLD_DEFAULT, name));
}

// Looked up once; a program that is not Python finds none of them.
const Python* python() {
  int state = g_python_state.load(std::memory_order_acquire);
  if (state == kResolved) {
    return g_python.complete ? &g_python : nullptr;
  }
  int expected = kUnresolved;
  if (!g_python_state.compare_exchange_strong(expected, kResolving, std::memory_order_acq_rel)) {
    return nullptr;  // another thread is resolving: skip the frames this once
  }
  Python& p = g_python;
  find(p.is_initialized, "Py_IsInitialized");
  find(p.unchecked_thread_state, "PyThreadState_GetUnchecked");
  if (p.unchecked_thread_state == nullptr) {
    find(p.unchecked_thread_state, "_PyThreadState_UncheckedGet");
  }
  find(p.gil_check, "PyGILState_Check");
  find(p.current_frame, "PyEval_GetFrame");
  find(p.frame_back, "PyFrame_GetBack");
  find(p.frame_code, "PyFrame_GetCode");
  find(p.frame_line, "PyFrame_GetLineNumber");
  find(p.get_attribute, "PyObject_GetAttrString");
  find(p.utf8, "PyUnicode_AsUTF8");
  find(p.release, "Py_DecRef");
  find(p.clear_error, "PyErr_Clear");
  find(p.this_thread_state, "PyGILState_GetThisThreadState");
  find(p.ensure, "PyGILState_Ensure");
  find(p.release_state, "PyGILState_Release");
  find(p.finalizing, "Py_IsFinalizing");
  if (p.finalizing == nullptr) {
    find(p.finalizing, "_Py_IsFinalizing");
  }
  p.complete = p.is_initialized != nullptr && p.unchecked_thread_state != nullptr &&
               p.gil_check != nullptr && p.current_frame != nullptr && p.frame_back != nullptr &&
               p.frame_code != nullptr && p.frame_line != nullptr && p.get_attribute != nullptr &&
               p.utf8 != nullptr && p.release != nullptr && p.clear_error != nullptr;
  p.can_take_lock = p.this_thread_state != nullptr && p.ensure != nullptr &&
                    p.release_state != nullptr && p.finalizing != nullptr;
  g_python_state.store(kResolved, std::memory_order_release);
  return p.complete ? &p : nullptr;
}

// Appends to a fixed buffer, never past capacity - 1, replacing the
// report's separators.
struct Out {
  char* data;
  size_t capacity;
  size_t used = 0;

  void character(char c) {
    if (used + 1 < capacity) {
      data[used++] = (c == '\t' || c == '\n' || c == '\r') ? ' ' : c;
    }
  }
  void text(const char* value) {
    for (; value != nullptr && *value != '\0'; ++value) {
      character(*value);
    }
  }
  void hex(uint64_t value) {
    char digits[16];
    size_t count = 0;
    do {
      digits[count++] = "0123456789abcdef"[value & 15];
      value >>= 4;
    } while (value != 0);
    while (count > 0) {
      character(digits[--count]);
    }
  }
  void number(uint64_t value) {
    char digits[prim::kDecimalDigits];
    size_t count = prim::decimal(value, digits);
    for (size_t i = 0; i < count; ++i) {
      character(digits[i]);
    }
  }
};

const char* base_name(const char* path) {
  const char* base = path;
  for (const char* c = path; *c != '\0'; ++c) {
    if (*c == '/') {
      base = c + 1;
    }
  }
  return base;
}

// The calling thread's Python frames, innermost first, walked while this
// thread holds the interpreter's lock: at most 8 written, out of the first
// 64. The import machinery's frozen frames ("<frozen importlib...>") are
// passed over, so that a read made while a module is imported reaches the
// program's own `import` line.
void walk_frames(const Python* p, Out& out) {
  void* frame = p->current_frame();  // borrowed
  if (frame == nullptr) {
    return;
  }
  out.text("|py:");
  void* owned = nullptr;  // the reference PyFrame_GetBack gave us
  int written = 0;
  for (int depth = 0; frame != nullptr && depth < 64 && written < 8; ++depth) {
    void* code = p->frame_code(frame);
    if (code != nullptr) {
      void* name = p->get_attribute(code, "co_filename");
      const char* file = name != nullptr ? p->utf8(name) : nullptr;
      const bool frozen = file != nullptr && prim::starts_with(file, "<frozen");
      if (!frozen) {
        if (written > 0) {
          out.character(';');
        }
        out.text(file != nullptr ? file : "?");
        out.character(':');
        int line = p->frame_line(frame);
        out.number(line > 0 ? static_cast<uint64_t>(line) : 0);
        ++written;
      }
      if (name != nullptr) {
        p->release(name);
      }
      p->release(code);
      p->clear_error();
    }
    void* back = p->frame_back(frame);
    if (owned != nullptr) {
      p->release(owned);
    }
    owned = back;
    frame = back;
  }
  if (owned != nullptr) {
    p->release(owned);
  }
}

// Only while this thread holds the interpreter's lock, or, with kTakeLock,
// has a thread state of its own whose lock it released: a thread the
// interpreter does not know, or the interpreter starting or finalizing
// (where taking the lock ends the thread), gives none.
void python_frames(Out& out, PythonFrames frames) {
  const Python* p = python();
  if (p == nullptr || p->is_initialized() == 0) {
    return;
  }
  if (p->unchecked_thread_state() != nullptr && p->gil_check() != 0) {
    walk_frames(p, out);
    return;
  }
  if (frames != PythonFrames::kTakeLock || !p->can_take_lock || p->this_thread_state() == nullptr ||
      p->finalizing() != 0) {
    return;
  }
  int state = p->ensure();
  walk_frames(p, out);
  p->release_state(state);
}

}  // namespace

size_t describe_caller(const void* address, char* out, size_t capacity, PythonFrames frames) {
  if (capacity == 0) {
    return 0;
  }
  Out text{out, capacity};
  Dl_info info;
  if (address != nullptr && ::dladdr(address, &info) != 0 && info.dli_fname != nullptr) {
    text.text(base_name(info.dli_fname));
    text.text("+0x");
    text.hex(reinterpret_cast<uintptr_t>(address) - reinterpret_cast<uintptr_t>(info.dli_fbase));
    if (info.dli_sname != nullptr) {
      text.character(':');
      text.text(info.dli_sname);
    }
  } else {
    text.text("0x");
    text.hex(reinterpret_cast<uintptr_t>(address));
  }
  python_frames(text, frames);
  out[text.used] = '\0';
  return text.used;
}

}  // namespace memdet::preload
