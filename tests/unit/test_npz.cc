#include "compare/npz.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "compare/tensor_diff.h"
#include "scratch.h"

namespace memdet::compare {
namespace {

using testing_support::Scratch;

constexpr const char* kPython = "/usr/bin/python3";

// Writes the archives the tests read with numpy itself, so they are laid out
// exactly as np.savez and np.savez_compressed lay them out: one ULP up at
// w[2, 1] and at f[1, 0] (a Fortran-order member) in the b archives.
constexpr const char* kScript = R"PY(
import io, zipfile
import numpy as np

w = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
f = np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3))
i = np.arange(5, dtype=np.int64)
w2 = w.copy(); w2[2, 1] = np.nextafter(w2[2, 1], np.float32(np.inf))
f2 = f.copy(order="F"); f2[1, 0] = np.nextafter(f2[1, 0], np.inf)
assert f2.flags.f_contiguous

np.savez("a.npz", w=w, i=i, **{"sub/f": f})
np.savez("b.npz", w=w2, i=i, **{"sub/f": f2})
np.savez_compressed("a_deflated.npz", w=w, i=i, **{"sub/f": f})
np.savez_compressed("b_deflated.npz", w=w2, i=i, **{"sub/f": f2})

# Where each stored member's data starts, to show the test reads unaligned
# members.
with zipfile.ZipFile("a.npz") as z, open("a.npz", "rb") as raw, open("offsets", "w") as out:
    data = raw.read()
    for info in z.infolist():
        local = info.header_offset
        name_length = int.from_bytes(data[local + 26:local + 28], "little")
        extra_length = int.from_bytes(data[local + 28:local + 30], "little")
        start = local + 30 + name_length + extra_length
        header_length = int.from_bytes(data[start + 8:start + 10], "little")
        out.write("%s %d\n" % (info.filename, start + 10 + header_length))

# Zip64 offsets and sizes in the central directory as well, which numpy
# writes for members past 4 GiB; a lower limit makes zipfile write them here.
saved = zipfile.ZIP64_LIMIT
zipfile.ZIP64_LIMIT = 64
np.savez("a_zip64.npz", w=w, i=i)
np.savez("b_zip64.npz", w=w2, i=i)
zipfile.ZIP64_LIMIT = saved

def member(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()

with zipfile.ZipFile("clash.npz", "w") as z:
    z.writestr("a", member(w))
    z.writestr("a.npy", member(w))
with zipfile.ZipFile("not_npy.npz", "w") as z:
    z.writestr("x.npy", b"hello, not an array")
np.savez("object.npz", o=np.array([1, "x"], dtype=object))
lying = member(w)[:-8]
with zipfile.ZipFile("lying.npz", "w", compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr("w.npy", lying)
with open("a_deflated.npz", "rb") as src:
    whole = src.read()
open("cut.npz", "wb").write(whole[: len(whole) // 2])
)PY";

// The archives are written once for the suite: numpy takes a second to load.
class Npz : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system((std::string(kPython) + " -c 'import numpy' 2>/dev/null").c_str()) != 0) {
      return;
    }
    scratch_ = std::make_unique<Scratch>();
    scratch_->write("make.py", kScript);
    const std::string command =
        "cd '" + scratch_->path() + "' && " + std::string(kPython) + " make.py";
    written_ = std::system(command.c_str()) == 0;
  }
  static void TearDownTestSuite() { scratch_.reset(); }

  void SetUp() override {
    if (scratch_ == nullptr) GTEST_SKIP() << kPython << " with numpy is needed to write .npz files";
    ASSERT_TRUE(written_) << "the script that writes the archives failed";
  }

  static std::string path(const std::string& name) { return scratch_->path() + "/" + name; }

  static inline std::unique_ptr<Scratch> scratch_;
  static inline bool written_ = false;
};

const TensorFinding* finding_for(const DiffReport& report, const std::string& tensor) {
  for (const TensorFinding& finding : report.findings) {
    if (finding.tensor == tensor) return &finding;
  }
  return nullptr;
}

void expect_injected(const DiffReport& report) {
  EXPECT_EQ(report.verdict, Verdict::kDiffer);
  ASSERT_EQ(report.findings.size(), 3u);

  const TensorFinding* w = finding_for(report, "w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->kind, FindingKind::kDiffers);
  EXPECT_EQ(w->diff.differing, 1u);
  EXPECT_EQ(w->diff.max_ulp, 1u);
  EXPECT_EQ(w->diff.first_index, (std::vector<uint64_t>{2, 1}));

  const TensorFinding* f = finding_for(report, "sub/f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->kind, FindingKind::kDiffers);
  EXPECT_EQ(f->diff.differing, 1u);
  EXPECT_EQ(f->diff.max_ulp, 1u);
  EXPECT_EQ(f->diff.first_index, (std::vector<uint64_t>{1, 0}));

  const TensorFinding* i = finding_for(report, "i");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->kind, FindingKind::kIdentical);
}

TEST_F(Npz, ReadsStoredMembersAtUnalignedOffsets) {
  std::ifstream offsets(path("offsets"));
  std::string name;
  uint64_t offset = 0;
  bool unaligned = false;
  while (offsets >> name >> offset) unaligned |= offset % 4 != 0;
  EXPECT_TRUE(unaligned) << "numpy placed every member's data at a multiple of 4";

  auto set = open_npz(path("a.npz"));
  ASSERT_TRUE(set) << set.error().message;
  ASSERT_EQ(set->tensors.size(), 3u);
  EXPECT_EQ(set->tensors[0].name, "w");
  EXPECT_EQ(set->tensors[1].name, "i");
  EXPECT_EQ(set->tensors[2].name, "sub/f");
  EXPECT_TRUE(set->tensors[2].layout.fortran_order);
}

TEST_F(Npz, OneUlpInStoredMembersIsNamedWithItsCoordinate) {
  auto report = diff_paths(path("a.npz"), path("b.npz"), {});
  ASSERT_TRUE(report) << report.error().message;
  expect_injected(*report);
  auto same = diff_paths(path("a.npz"), path("a.npz"), {});
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(same->verdict, Verdict::kIdentical);
}

TEST_F(Npz, OneUlpInDeflatedMembersIsNamedWithItsCoordinate) {
  auto report = diff_paths(path("a_deflated.npz"), path("b_deflated.npz"), {});
  ASSERT_TRUE(report) << report.error().message;
  expect_injected(*report);
}

TEST_F(Npz, StoredAgainstDeflatedComparesTheArrays) {
  auto same = diff_paths(path("a.npz"), path("a_deflated.npz"), {});
  ASSERT_TRUE(same) << same.error().message;
  EXPECT_EQ(same->verdict, Verdict::kIdentical);
  auto report = diff_paths(path("a.npz"), path("b_deflated.npz"), {});
  ASSERT_TRUE(report) << report.error().message;
  expect_injected(*report);
}

TEST_F(Npz, ReadsZip64ExtraFieldsInTheCentralDirectory) {
  auto report = diff_paths(path("a_zip64.npz"), path("b_zip64.npz"), {});
  ASSERT_TRUE(report) << report.error().message;
  const TensorFinding* w = finding_for(*report, "w");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->diff.first_index, (std::vector<uint64_t>{2, 1}));
  EXPECT_EQ(finding_for(*report, "i")->kind, FindingKind::kIdentical);
}

std::string error_of(const std::string& file) {
  auto report = diff_paths(file, file, {});
  if (report) return "";
  EXPECT_EQ(report.error().message.rfind(file + ": ", 0), 0u) << report.error().message;
  return report.error().message;
}

TEST_F(Npz, RefusesNameCollisionsNonNpyMembersAndObjectArrays) {
  EXPECT_NE(error_of(path("clash.npz")).find("members 'a' and 'a.npy' both name tensor 'a'"),
            std::string::npos);
  EXPECT_NE(error_of(path("not_npy.npz")).find("member 'x.npy': not an npy file"),
            std::string::npos);
  EXPECT_NE(error_of(path("object.npz")).find("member 'o.npy': object arrays are not supported"),
            std::string::npos);
}

TEST_F(Npz, RefusesLyingAndTruncatedArchives) {
  EXPECT_NE(error_of(path("lying.npz")).find("member 'w.npy': header says 48 bytes of data"),
            std::string::npos);
  EXPECT_NE(error_of(path("cut.npz")).find("not a valid zip archive"), std::string::npos);
}

}  // namespace
}  // namespace memdet::compare
