#!/usr/bin/python3
"""Writes the saved machines that `memdet doctor --root` replays.

Each machine is a folder laid out like "/": the /proc and /sys files doctor
reads, the /etc/alternatives link that picks the BLAS, the libraries that
tell which OpenMP runtime is installed, proc/self/environ (the environment,
NUL-separated as the kernel shows it) and memdet/probes (what the live
probes found there). Run it from anywhere; it rewrites the folders beside
it. The expected outputs (*.expected) are memdet's, checked by hand.
"""

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
LIB = "usr/lib/x86_64-linux-gnu"


def cpu_list(cpus):
    """A sorted CPU set in the kernel's list format: 0-15,32-47."""
    cpus = sorted(cpus)
    ranges, start = [], None
    for i, cpu in enumerate(cpus):
        if start is None:
            start = cpu
        if i + 1 == len(cpus) or cpus[i + 1] != cpu + 1:
            ranges.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(ranges)


def cpu_mask(cpus, width):
    """The kernel's hex mask format, 32 bits per comma-separated word."""
    value = sum(1 << cpu for cpu in cpus)
    words = max(1, (width + 31) // 32)
    return ",".join(f"{(value >> (32 * w)) & 0xFFFFFFFF:08x}" for w in reversed(range(words)))


class Machine:
    def __init__(self, name):
        self.root = os.path.join(HERE, name)
        shutil.rmtree(self.root, ignore_errors=True)
        os.makedirs(self.root)

    def write(self, path, text):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)

    def link(self, path, target):
        full = os.path.join(self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        os.symlink(target, full)

    def topology(self, packages, cores, threads, nodes_per_package=1, smt_active=None):
        """CPUs numbered as Linux does on Intel servers: every core's first
        thread, package by package, then the second threads."""
        total_cores = packages * cores
        total = total_cores * threads
        cpu = "sys/devices/system/cpu"
        self.write(f"{cpu}/online", cpu_list(range(total)) + "\n")
        self.write(f"{cpu}/possible", cpu_list(range(total)) + "\n")
        self.write(f"{cpu}/present", cpu_list(range(total)) + "\n")
        if smt_active is not None:
            self.write(f"{cpu}/smt/active", f"{smt_active}\n")
        node_cpus = {}
        for number in range(total):
            core_index = number % total_cores
            package = core_index // cores
            core = core_index % cores
            siblings = [core_index + t * total_cores for t in range(threads)]
            package_cpus = [c for c in range(total) if (c % total_cores) // cores == package]
            node = package * nodes_per_package + core * nodes_per_package // cores
            node_cpus.setdefault(node, []).append(number)
            top = f"{cpu}/cpu{number}/topology"
            self.write(f"{top}/physical_package_id", f"{package}\n")
            self.write(f"{top}/die_id", "0\n")
            self.write(f"{top}/core_id", f"{core}\n")
            self.write(f"{top}/core_cpus_list", cpu_list(siblings) + "\n")
            self.write(f"{top}/core_cpus", cpu_mask(siblings, total) + "\n")
            self.write(f"{top}/thread_siblings_list", cpu_list(siblings) + "\n")
            self.write(f"{top}/thread_siblings", cpu_mask(siblings, total) + "\n")
            self.write(f"{top}/package_cpus_list", cpu_list(package_cpus) + "\n")
            self.write(f"{top}/package_cpus", cpu_mask(package_cpus, total) + "\n")
            self.write(f"{top}/core_siblings_list", cpu_list(package_cpus) + "\n")
            self.write(f"{top}/core_siblings", cpu_mask(package_cpus, total) + "\n")
        node = "sys/devices/system/node"
        count = len(node_cpus)
        self.write(f"{node}/online", cpu_list(range(count)) + "\n")
        self.write(f"{node}/possible", cpu_list(range(count)) + "\n")
        self.write(f"{node}/has_cpu", cpu_list(range(count)) + "\n")
        self.write(f"{node}/has_memory", cpu_list(range(count)) + "\n")
        for n, members in node_cpus.items():
            self.write(f"{node}/node{n}/cpulist", cpu_list(members) + "\n")
            self.write(f"{node}/node{n}/cpumap", cpu_mask(members, total) + "\n")
            distances = " ".join("10" if m == n else "21" for m in range(count))
            self.write(f"{node}/node{n}/distance", distances + "\n")
            self.write(f"{node}/node{n}/meminfo", f"Node {n} MemTotal:       65536000 kB\n")

    def governor(self, cpus, governor):
        for number in range(cpus):
            self.write(f"sys/devices/system/cpu/cpu{number}/cpufreq/scaling_governor",
                       governor + "\n")

    def kernel(self, aslr, paranoid, numa_balancing=None):
        self.write("proc/sys/kernel/randomize_va_space", f"{aslr}\n")
        self.write("proc/sys/kernel/perf_event_paranoid", f"{paranoid}\n")
        if numa_balancing is not None:
            self.write("proc/sys/kernel/numa_balancing", f"{numa_balancing}\n")

    def thp(self, enabled, defrag):
        modes = ["always", "madvise", "never"]
        self.write("sys/kernel/mm/transparent_hugepage/enabled",
                   " ".join(f"[{m}]" if m == enabled else m for m in modes) + "\n")
        modes = ["always", "defer", "defer+madvise", "madvise", "never"]
        self.write("sys/kernel/mm/transparent_hugepage/defrag",
                   " ".join(f"[{m}]" if m == defrag else m for m in modes) + "\n")

    def hugepages(self, kib, total, free):
        pool = f"sys/kernel/mm/hugepages/hugepages-{kib}kB"
        self.write(f"{pool}/nr_hugepages", f"{total}\n")
        self.write(f"{pool}/free_hugepages", f"{free}\n")

    def process(self, memlock, cap_eff, environment):
        limit = "unlimited" if memlock is None else str(memlock)
        self.write("proc/self/limits",
                   "Limit                     Soft Limit           Hard Limit           Units     \n"
                   "Max open files            1048576              1048576              files     \n"
                   f"Max locked memory         {limit:<21}{limit:<21}bytes     \n")
        self.write("proc/self/status", f"Name:\tmemdet\nCapEff:\t{cap_eff}\n")
        self.write("proc/self/environ", "".join(f"{k}={v}\0" for k, v in environment))

    def blas(self, target):
        self.link("etc/alternatives/libblas.so.3-x86_64-linux-gnu", target)

    def libraries(self, *names):
        for name in names:
            self.write(f"{LIB}/{name}", "")

    def probes(self, personality, software, hardware, nvidia_smi=("absent",)):
        lines = ["# What the live probes of memdet doctor found on this machine.",
                 f"personality: {personality}",
                 f"perf software: {software}",
                 f"perf hardware: {hardware}"]
        lines += [f"nvidia-smi: {line}" for line in nvidia_smi]
        self.write("memdet/probes", "\n".join(lines) + "\n")

    def gpu(self, bus, model):
        self.write(f"proc/driver/nvidia/gpus/{bus}/information",
                   f"Model: \t\t {model}\nIRQ:   \t\t 150\nBus Location: \t {bus}\n")


FULL_CAPS = "000001ffffffffff"  # root outside a container: CAP_IPC_LOCK (bit 14) set
DOCKER_CAPS = "00000000a80425fb"  # Docker's default set: no CAP_IPC_LOCK, no CAP_SYS_ADMIN
USER_CAPS = "0000000000000000"

# A two-socket GPU server: balancing on, THP always, SMT on, the powersave
# governor, a user without CAP_IPC_LOCK and the old 64 KiB lock limit, and an
# environment that sets knobs which do nothing or are ignored.
m = Machine("two-socket")
m.topology(packages=2, cores=16, threads=2, smt_active=1)
m.governor(64, "powersave")
m.kernel(aslr=2, paranoid=2, numa_balancing=1)
m.thp("always", "always")
m.hugepages(2048, 0, 0)
m.hugepages(1048576, 0, 0)
m.process(65536, USER_CAPS, [
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("HOME", "/home/trainer"),
    ("LD_PRELOAD", f"/{LIB}/libjemalloc.so.2"),
    ("MALLOC_CONF", "background_thread:true,narenas:4,dirty_decay:0"),
    ("KMP_AFFINITY", "granularity=fine,compact,1,0"),
    ("OMP_NUM_THREADS", "16"),
    ("CUDNN_DETERMINISTIC", "1"),
    ("CUDA_CACHE_DISABLE", "1"),
    ("NCCL_DEBUG", "INFO"),
    ("NCCL_IB_DISABLE", "1"),
])
m.blas(f"/{LIB}/openblas-pthread/libblas.so.3")
m.libraries("libgomp.so.1", "libjemalloc.so.2", "openblas-pthread/libblas.so.3")
m.probes("allowed", "opened exclude_kernel", "opened",
         ["GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-0d7e)", "GPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-4c21)"])
m.write("sys/bus/event_source/devices/cpu/type", "4\n")
m.gpu("0000:07:00.0", "NVIDIA A100-SXM4-80GB")
m.gpu("0000:0f:00.0", "NVIDIA A100-SXM4-80GB")

# A Docker container under the default seccomp profile: personality and
# perf_event_open refused, no cpufreq or SMT files, root without
# CAP_IPC_LOCK, tcmalloc preloaded with a jemalloc setting.
m = Machine("container")
m.topology(packages=1, cores=4, threads=1)
m.kernel(aslr=2, paranoid=2, numa_balancing=0)
m.thp("madvise", "madvise")
m.hugepages(2048, 0, 0)
m.process(8388608, DOCKER_CAPS, [
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOSTNAME", "4f2a9c1d7e3b"),
    ("LD_PRELOAD", f"/{LIB}/libtcmalloc_minimal.so.4"),
    ("MALLOC_CONF", "narenas:2"),
    ("MLNX_NON_PREFERRED", "1"),
    ("MPI_PRELOAD", "1"),
    ("OPENBLAS_NUM_THREADS", "4"),
])
m.blas(f"/{LIB}/openblas-openmp/libblas.so.3")
m.libraries("libgomp.so.1", "libtcmalloc_minimal.so.4", "openblas-openmp/libblas.so.3")
m.probes("refused EPERM", "refused EPERM", "refused EPERM")

# A one-socket workstation with a reserved 1 GiB pool (two of four pages in
# use), THP off, ASLR off, Debian's reference BLAS selected, a kernel built
# without automatic NUMA balancing, and a valid jemalloc setting.
m = Machine("hugepages-reference-blas")
m.topology(packages=1, cores=8, threads=2, smt_active=1)
m.governor(16, "performance")
m.kernel(aslr=0, paranoid=1)
m.thp("never", "madvise")
m.hugepages(2048, 512, 512)
m.hugepages(1048576, 4, 2)
m.process(None, FULL_CAPS, [
    ("PATH", "/usr/bin:/bin"),
    ("LD_PRELOAD", f"/{LIB}/libjemalloc.so.2"),
    ("MALLOC_CONF", "narenas:1,tcache:false,dirty_decay_ms:0,muzzy_decay_ms:0"),
    ("OMP_NUM_THREADS", "8"),
    ("OMP_PROC_BIND", "close"),
])
m.blas(f"/{LIB}/blas/libblas.so.3")
m.libraries("libgomp.so.1", "libomp.so.5", "libjemalloc.so.2", "blas/libblas.so.3")
m.write("sys/bus/event_source/devices/cpu/type", "4\n")
m.probes("allowed", "opened", "opened")

# The shape of the KVM guest memdet is developed on: two CPUs, one node, no
# PMU, no cpufreq, SMT reported off, THP madvise, root in a container whose
# seccomp profile allows personality.
m = Machine("kvm-guest")
m.topology(packages=1, cores=2, threads=1, smt_active=0)
m.kernel(aslr=2, paranoid=2, numa_balancing=0)
m.thp("madvise", "madvise")
m.hugepages(2048, 0, 0)
m.hugepages(1048576, 0, 0)
m.process(8388608, "000001fffeffffff", [
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("HOME", "/root"),
    ("CUDA_HOME", "/usr/local/cuda"),
])
m.blas(f"/{LIB}/openblas-pthread/libblas.so.3")
m.libraries("libgomp.so.1", "libjemalloc.so.2", "libtcmalloc_minimal.so.4",
            "openblas-pthread/libblas.so.3")
m.probes("allowed", "opened", "refused ENOENT")
