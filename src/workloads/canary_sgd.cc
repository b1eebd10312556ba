#include "workloads/canary_sgd.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <latch>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "compare/npy.h"

namespace memdet::workloads {

namespace {

constexpr size_t kFeatures = 64;
// Enough that each thread's share of a step lasts far longer than the skew
// between threads leaving the barrier, so that their atomic additions
// overlap instead of running one thread after the other.
constexpr size_t kSamples = 4096;
// The ordered reduction's block count is fixed, not derived from the thread
// count, so that the summation order is a property of the data alone.
constexpr size_t kBlocks = 64;
constexpr size_t kBlockSamples = kSamples / kBlocks;
// Small atomic partials mean many additions into the shared gradient per
// step, so two threads interleave there on nearly every step.
constexpr size_t kAtomicPartialSamples = 8;
constexpr size_t kAtomicPartials = kSamples / kAtomicPartialSamples;
// Slow enough that 200 steps do not reach the float fixed point, where
// every run would round to the same weights whatever the summation order.
constexpr float kLearningRate = 0.05f;
constexpr float kNoise = 0.1f;
constexpr uint64_t kSeed = 0x6d656d646574;  // "memdet"
constexpr int kMaxThreads = 256;

static_assert(kSamples % kBlocks == 0 && kSamples % kAtomicPartialSamples == 0);

// splitmix64 (Steele, Lea, Flood 2014): a few lines whose output is fixed by
// the algorithm, unlike std:: distributions, whose output each standard
// library chooses.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }

  // Uniform in [-1, 1), exact: 24 random bits fit a float's significand.
  float uniform() { return static_cast<float>(next() >> 40) * 0x1p-23f - 1.0f; }

 private:
  uint64_t state_;
};

// Features x (row-major, kSamples by kFeatures) and targets y = x . w_true
// plus noise.
struct Problem {
  std::vector<float> x;
  std::vector<float> y;
};

Problem make_problem() {
  SplitMix64 random(kSeed);
  std::vector<float> truth(kFeatures);
  for (float& w : truth) w = random.uniform();

  Problem problem{std::vector<float>(kSamples * kFeatures), std::vector<float>(kSamples)};
  for (size_t i = 0; i < kSamples; ++i) {
    float target = 0;
    for (size_t j = 0; j < kFeatures; ++j) {
      const float value = random.uniform();
      problem.x[i * kFeatures + j] = value;
      target += value * truth[j];
    }
    problem.y[i] = target + kNoise * random.uniform();
  }
  return problem;
}

// A barrier whose waiters spin, yielding the processor, instead of sleeping.
// std::barrier sleeps in the kernel, so the thread woken last starts its
// share of a step tens of microseconds after the one that ran the
// completion; the threads' atomic additions then rarely interleave, and
// the canary gives the same bits far more often than an unordered
// reduction should. Spinning threads leave together.
template <typename Completion>
class SpinBarrier {
 public:
  SpinBarrier(size_t count, Completion completion) : count_(count), completion_(completion) {}

  void arrive_and_wait() {
    const uint64_t generation = generation_.load(std::memory_order_acquire);
    // acq_rel: the last arrival sees every write the others made before
    // arriving, which the completion reads.
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == count_) {
      completion_();
      arrived_.store(0, std::memory_order_relaxed);
      generation_.store(generation + 1, std::memory_order_release);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) std::this_thread::yield();
  }

 private:
  const size_t count_;
  Completion completion_;
  std::atomic<size_t> arrived_{0};
  std::atomic<uint64_t> generation_{0};
};

void add_atomic(float& target, float value) {
  std::atomic_ref<float>(target).fetch_add(value, std::memory_order_relaxed);
}

class Trainer {
 public:
  Trainer(const SgdOptions& options, const Problem& problem)
      : options_(options),
        problem_(problem),
        threads_(static_cast<size_t>(options.threads)),
        weights_(kFeatures, 0.0f),
        gradient_(kFeatures, 0.0f),
        block_gradients_(kBlocks * kFeatures),
        block_losses_(kBlocks),
        losses_(static_cast<size_t>(options.steps)),
        barrier_(threads_, FinishStep{this}) {}

  // Runs every step on the calling thread and threads - 1 others.
  Status train() {
    std::latch start(1);
    std::atomic<bool> abort{false};
    const auto work = [&](size_t thread) {
      start.wait();
      if (abort.load()) return;
      for (int step = 0; step < options_.steps; ++step) {
        compute_share(thread);
        barrier_.arrive_and_wait();
      }
    };

    // No worker touches the barrier before all are started, so a thread
    // that cannot be created leaves none waiting for it.
    std::vector<std::thread> workers;
    workers.reserve(threads_ - 1);
    std::string spawn_error;
    for (size_t thread = 1; thread < threads_; ++thread) {
      try {
        workers.emplace_back(work, thread);
      } catch (const std::system_error& error) {
        spawn_error = error.what();
        abort.store(true);
        break;
      }
    }
    start.count_down();
    work(0);
    for (std::thread& worker : workers) worker.join();

    if (!spawn_error.empty()) return make_error("cannot start a thread: " + spawn_error);
    return {};
  }

  const std::vector<float>& weights() const { return weights_; }
  const std::vector<float>& losses() const { return losses_; }

 private:
  struct FinishStep {
    Trainer* trainer;
    void operator()() const noexcept { trainer->finish_step(); }
  };

  // Adds samples [begin, end) in order: gradient[j] += r * x[j] and
  // loss += r * r, where r is the sample's residual.
  void sum_samples(size_t begin, size_t end, float* gradient, float& loss) const {
    for (size_t i = begin; i < end; ++i) {
      const float* row = &problem_.x[i * kFeatures];
      float prediction = 0;
      for (size_t j = 0; j < kFeatures; ++j) prediction += row[j] * weights_[j];

      const float residual = prediction - problem_.y[i];
      for (size_t j = 0; j < kFeatures; ++j) gradient[j] += residual * row[j];
      loss += residual * residual;
    }
  }

  // Each thread takes a contiguous range of units: atomic partials or
  // ordered blocks.
  std::pair<size_t, size_t> share(size_t thread, size_t units) const {
    return {thread * units / threads_, (thread + 1) * units / threads_};
  }

  void compute_share(size_t thread) {
    if (options_.reduce == SgdOptions::Reduce::ordered) {
      const auto [first, last] = share(thread, kBlocks);
      for (size_t block = first; block < last; ++block) {
        float* gradient = &block_gradients_[block * kFeatures];
        std::fill(gradient, gradient + kFeatures, 0.0f);
        block_losses_[block] = 0;
        sum_samples(block * kBlockSamples, (block + 1) * kBlockSamples, gradient,
                    block_losses_[block]);
      }
      return;
    }

    const auto [first, last] = share(thread, kAtomicPartials);
    for (size_t partial = first; partial < last; ++partial) {
      float gradient[kFeatures] = {};
      float loss = 0;
      sum_samples(partial * kAtomicPartialSamples, (partial + 1) * kAtomicPartialSamples, gradient,
                  loss);
      for (size_t j = 0; j < kFeatures; ++j) add_atomic(gradient_[j], gradient[j]);
      add_atomic(loss_sum_, loss);
    }
  }

  // Runs on one thread while the others wait at the barrier, so it may
  // touch every shared value without atomics.
  void finish_step() noexcept {
    if (options_.reduce == SgdOptions::Reduce::ordered) {
      for (size_t block = 0; block < kBlocks; ++block) {
        for (size_t j = 0; j < kFeatures; ++j) {
          gradient_[j] += block_gradients_[block * kFeatures + j];
        }
        loss_sum_ += block_losses_[block];
      }
    }

    constexpr float kScale = 1.0f / static_cast<float>(kSamples);
    losses_[step_] = 0.5f * loss_sum_ * kScale;
    for (size_t j = 0; j < kFeatures; ++j) {
      weights_[j] -= kLearningRate * (gradient_[j] * kScale);
      gradient_[j] = 0;
    }
    loss_sum_ = 0;
    ++step_;
  }

  const SgdOptions& options_;
  const Problem& problem_;
  const size_t threads_;
  std::vector<float> weights_;
  std::vector<float> gradient_;
  float loss_sum_ = 0;
  std::vector<float> block_gradients_;
  std::vector<float> block_losses_;
  std::vector<float> losses_;
  size_t step_ = 0;
  SpinBarrier<FinishStep> barrier_;
};

Status write_losses(const std::string& path, const std::vector<float>& losses) {
  std::FILE* file = std::fopen(path.c_str(), "we");
  if (file == nullptr) return make_error("cannot create " + path + ": " + std::strerror(errno));

  bool failed = false;
  for (size_t step = 0; step < losses.size(); ++step) {
    // %.17g gives enough digits to read back the same double, so two loss
    // files differ exactly when the losses do.
    failed |=
        std::fprintf(file, "step %zu loss %.17g\n", step, static_cast<double>(losses[step])) < 0;
  }
  failed |= std::fclose(file) != 0;
  if (failed) return make_error("cannot write " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

Status run_sgd_canary(const SgdOptions& options) {
  if (options.threads < 1 || options.threads > kMaxThreads) {
    return make_error("canary threads must be between 1 and " + std::to_string(kMaxThreads) +
                      ", got " + std::to_string(options.threads));
  }
  if (options.steps < 1) {
    return make_error("canary steps must be at least 1, got " + std::to_string(options.steps));
  }
  if (options.out_dir.empty()) return make_error("canary needs an output directory");

  std::error_code error;
  std::filesystem::create_directories(options.out_dir, error);
  if (error) return make_error("cannot create " + options.out_dir + ": " + error.message());

  const Problem problem = make_problem();
  Trainer trainer(options, problem);
  if (Status trained = trainer.train(); !trained) return trained;

  const std::filesystem::path dir(options.out_dir);
  const std::vector<uint64_t> shape = {kFeatures};
  if (Status written =
          compare::write_npy_f32((dir / "weights.npy").string(), trainer.weights().data(), shape);
      !written) {
    return written;
  }
  return write_losses((dir / "loss.txt").string(), trainer.losses());
}

}  // namespace memdet::workloads
