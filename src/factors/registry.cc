#include <algorithm>
#include <numeric>

#include "factors/factor.h"

namespace memdet::factors {

// Defined one per file in this folder.
const Factor& aslr_factor();
const Factor& stack_factor();
const Factor& heap_factor();
const Factor& allocator_factor();
const Factor& mlock_factor();
const Factor& hugepages_factor();
const Factor& thp_factor();
const Factor& numa_factor();
const Factor& numa_balancing_factor();
const Factor& cpu_factor();
const Factor& threads_factor();
const Factor& noise_factor();
const Factor& env_factor();
const Factor& uninit_factor();
const Factor& entropy_factor();
const Factor& clock_factor();
const Factor& fileorder_factor();

const std::vector<const Factor*>& all_factors() {
  static const std::vector<const Factor*> factors = {
      &aslr_factor(),      &stack_factor(),     &heap_factor(),
      &allocator_factor(), &mlock_factor(),     &hugepages_factor(),
      &thp_factor(),       &numa_factor(),      &numa_balancing_factor(),
      &cpu_factor(),       &threads_factor(),   &noise_factor(),
      &env_factor(),       &uninit_factor(),    &entropy_factor(),
      &clock_factor(),     &fileorder_factor(),
  };
  return factors;
}

const Factor* find_factor(const std::string& name) {
  for (const Factor* factor : all_factors()) {
    if (name == factor->name()) {
      return factor;
    }
  }
  return nullptr;
}

uint64_t mix_seed(uint64_t seed, uint64_t salt) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (salt + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t mix_seed(uint64_t seed, const std::string& salt) {
  // FNV-1a of the salt, so a factor's seed depends on its name only.
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char byte : salt) {
    hash = (hash ^ byte) * 0x100000001b3ULL;
  }
  return mix_seed(seed, hash);
}

std::vector<SystemWrite> Factor::system_writes(const std::string&, const Host&) const { return {}; }

std::vector<std::string> Factor::alternatives(const std::string&, const Host&) const { return {}; }

std::string Factor::perturbed_value(const std::string& reference, const std::string&, int k,
                                    uint64_t seed, const Host& host) const {
  std::vector<std::string> values = alternatives(reference, host);
  values.erase(std::remove(values.begin(), values.end(), reference), values.end());
  if (values.empty() || k < 1) {
    return {};
  }
  // A seeded order of the alternatives, then round after round of it: every
  // other value is used once before any repeats.
  std::vector<size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = order.size(); i > 1; --i) {
    size_t j = mix_seed(seed, i) % i;
    std::swap(order[i - 1], order[j]);
  }
  return values[order[static_cast<size_t>(k - 1) % order.size()]];
}

}  // namespace memdet::factors
