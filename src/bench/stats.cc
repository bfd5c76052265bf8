#include "bench/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace corral::bench {

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const double h = static_cast<double>(sorted.size() - 1) * q;
  const auto lo = static_cast<size_t>(std::floor(h));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (h - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return Percentile(values, 0.5);
}

Summary Summarize(std::vector<double> values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.n = values.size();
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(s.n);
  s.median = Percentile(values, 0.5);
  s.p10 = Percentile(values, 0.10);
  s.p90 = Percentile(values, 0.90);
  s.p99 = Percentile(values, 0.99);
  s.min = values.front();
  s.max = values.back();
  if (s.n >= 2) {
    double ss = 0;
    for (double v : values) ss += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(ss / static_cast<double>(s.n - 1));
  }
  s.cv = s.mean != 0 ? s.stddev / std::fabs(s.mean) : 0;
  s.iqr = Percentile(values, 0.75) - Percentile(values, 0.25);
  std::vector<double> dev;
  dev.reserve(s.n);
  for (double v : values) dev.push_back(std::fabs(v - s.median));
  s.mad = Median(std::move(dev));
  return s;
}

uint64_t SplitMix64::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::Below(uint64_t bound) {
  // Accept only values below the largest multiple of bound, so every index is equally likely.
  const uint64_t limit = std::numeric_limits<uint64_t>::max() - std::numeric_limits<uint64_t>::max() % bound;
  uint64_t x = Next();
  while (x >= limit) x = Next();
  return x % bound;
}

namespace {

double ResampledMedian(const std::vector<double>& v, SplitMix64& rng, std::vector<double>& scratch) {
  scratch.resize(v.size());
  for (double& x : scratch) x = v[rng.Below(v.size())];
  std::sort(scratch.begin(), scratch.end());
  return Percentile(scratch, 0.5);
}

}  // namespace

Interval BootstrapMedian(const std::vector<double>& values, uint64_t seed, int resamples) {
  Interval out;
  if (values.empty() || resamples < 1) return out;
  out.estimate = Median(values);
  SplitMix64 rng(seed);
  std::vector<double> medians, scratch;
  medians.reserve(static_cast<size_t>(resamples));
  for (int r = 0; r < resamples; ++r) medians.push_back(ResampledMedian(values, rng, scratch));
  std::sort(medians.begin(), medians.end());
  out.lo = Percentile(medians, 0.025);
  out.hi = Percentile(medians, 0.975);
  out.valid = true;
  return out;
}

Comparison BootstrapCompare(const std::vector<double>& a, const std::vector<double>& b, uint64_t seed, int resamples) {
  Comparison c;
  if (a.empty() || b.empty() || resamples < 1) return c;
  const double ma = Median(a);
  const double mb = Median(b);
  c.diff.estimate = mb - ma;
  c.ratio.estimate = ma != 0 ? mb / ma : 0;
  SplitMix64 rng(seed);
  std::vector<double> diffs, ratios, scratch;
  diffs.reserve(static_cast<size_t>(resamples));
  ratios.reserve(static_cast<size_t>(resamples));
  bool ratio_ok = ma != 0;
  for (int r = 0; r < resamples; ++r) {
    const double ra = ResampledMedian(a, rng, scratch);
    const double rb = ResampledMedian(b, rng, scratch);
    diffs.push_back(rb - ra);
    if (ra == 0) {
      ratio_ok = false;
    } else {
      ratios.push_back(rb / ra);
    }
  }
  std::sort(diffs.begin(), diffs.end());
  c.diff.lo = Percentile(diffs, 0.025);
  c.diff.hi = Percentile(diffs, 0.975);
  c.diff.valid = true;
  if (ratio_ok) {
    std::sort(ratios.begin(), ratios.end());
    c.ratio.lo = Percentile(ratios, 0.025);
    c.ratio.hi = Percentile(ratios, 0.975);
    c.ratio.valid = true;
  }
  c.significant = c.diff.lo > 0 || c.diff.hi < 0;
  return c;
}

}  // namespace corral::bench
