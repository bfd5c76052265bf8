// Statistics for benchmark samples: order statistics, spread and a seeded bootstrap.
//
// Percentiles use linear interpolation between closest ranks (R type 7, numpy's default):
// for sorted x[0..n-1] and q in [0,1], h = (n-1)q, result x[floor h] + (h - floor h)(x[ceil h] - x[floor h]).
// The bootstrap resamples each group with replacement from a SplitMix64 stream seeded by
// the caller, drawing indices by rejection sampling, so the same inputs and seed give the
// same interval on every platform and standard library.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace corral::bench {

struct Summary {
  size_t n = 0;
  double mean = 0, median = 0, p10 = 0, p90 = 0, p99 = 0, min = 0, max = 0;
  double stddev = 0;  // sample standard deviation (n-1); 0 when n < 2
  double cv = 0;      // stddev / |mean|; 0 when the mean is 0
  double iqr = 0;     // p75 - p25
  double mad = 0;     // median absolute deviation from the median (unscaled)
};

// The q-quantile (0 <= q <= 1) of `sorted` (ascending). 0 for an empty vector.
double Percentile(const std::vector<double>& sorted, double q);

double Median(std::vector<double> values);

// Summary of the values (any order). All fields 0 for an empty input.
Summary Summarize(std::vector<double> values);

// A deterministic 64-bit generator (SplitMix64) and an unbiased index draw.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, bound), bound > 0; rejection sampling, no modulo bias.
  uint64_t Below(uint64_t bound);

 private:
  uint64_t state_;
};

struct Interval {
  double estimate = 0;  // the statistic on the observed samples
  double lo = 0;        // 2.5th percentile of the bootstrap distribution
  double hi = 0;        // 97.5th percentile
  bool valid = false;   // false when a group was empty (or a ratio divided by zero)
};

struct Comparison {
  Interval diff;   // median(b) - median(a)
  Interval ratio;  // median(b) / median(a)
  // The 95 % interval of the difference excludes 0.
  bool significant = false;
};

// Bootstrap 95 % interval of the median of `values` (e.g. per-pair differences).
Interval BootstrapMedian(const std::vector<double>& values, uint64_t seed, int resamples = 2000);

// Bootstrap 95 % intervals of the difference and ratio of medians, b relative to a.
Comparison BootstrapCompare(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed,
                            int resamples = 2000);

}  // namespace corral::bench
