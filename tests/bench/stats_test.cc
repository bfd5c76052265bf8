// Known inputs give known order statistics; the bootstrap is deterministic for a seed.
#include "bench/stats.h"

#include <gtest/gtest.h>

namespace corral::bench {
namespace {

TEST(Percentile, LinearInterpolationBetweenRanks) {
  const std::vector<double> v = {1, 2, 3, 4, 5};
  EXPECT_DOUBLE_EQ(Percentile(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.5), 3);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.9), 4.6);
  EXPECT_DOUBLE_EQ(Percentile(v, 0.99), 4.96);
  EXPECT_DOUBLE_EQ(Percentile(v, 1.0), 5);
  EXPECT_DOUBLE_EQ(Percentile({}, 0.5), 0);
  EXPECT_DOUBLE_EQ(Percentile({7}, 0.99), 7);
}

TEST(Median, EvenCountAveragesTheMiddlePair) {
  EXPECT_DOUBLE_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(Median({9, 1, 5}), 5);
}

TEST(Summarize, KnownSample) {
  Summary s = Summarize({9, 2, 4, 4, 4, 5, 5, 7});
  EXPECT_EQ(s.n, 8u);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_DOUBLE_EQ(s.min, 2);
  EXPECT_DOUBLE_EQ(s.max, 9);
  EXPECT_NEAR(s.stddev, 2.1380899, 1e-6);  // sqrt(32/7)
  EXPECT_NEAR(s.cv, 2.1380899 / 5, 1e-6);
  EXPECT_DOUBLE_EQ(s.iqr, 1.5);  // p75 5.5 - p25 4
  EXPECT_DOUBLE_EQ(s.mad, 0.5);
  EXPECT_DOUBLE_EQ(s.p90, 7.6);  // h = 6.3: 7 + 0.3 * (9 - 7)
}

TEST(Summarize, EmptyAndSingle) {
  EXPECT_EQ(Summarize({}).n, 0u);
  Summary one = Summarize({3});
  EXPECT_EQ(one.n, 1u);
  EXPECT_DOUBLE_EQ(one.median, 3);
  EXPECT_DOUBLE_EQ(one.stddev, 0);
  EXPECT_DOUBLE_EQ(one.cv, 0);
}

TEST(SplitMix64, ReferenceSequence) {
  SplitMix64 r(0);
  EXPECT_EQ(r.Next(), 0xE220A8397B1DCDAFULL);  // the published SplitMix64 output for seed 0
  SplitMix64 b(7);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(b.Below(3), 3u);
}

TEST(Bootstrap, DeterministicForASeed) {
  const std::vector<double> a = {10, 11, 9, 10.5, 10.2, 9.8, 10.1, 10.4};
  const std::vector<double> b = {12, 12.5, 11.8, 12.2, 13, 11.9, 12.1, 12.4};
  Comparison x = BootstrapCompare(a, b, 42);
  Comparison y = BootstrapCompare(a, b, 42);
  EXPECT_DOUBLE_EQ(x.diff.lo, y.diff.lo);
  EXPECT_DOUBLE_EQ(x.diff.hi, y.diff.hi);
  EXPECT_DOUBLE_EQ(x.ratio.lo, y.ratio.lo);
  Comparison z = BootstrapCompare(a, b, 43);
  EXPECT_TRUE(z.diff.lo != x.diff.lo || z.diff.hi != x.diff.hi);
  EXPECT_DOUBLE_EQ(x.diff.estimate, Median(b) - Median(a));
  EXPECT_LE(x.diff.lo, x.diff.estimate);
  EXPECT_GE(x.diff.hi, x.diff.estimate);
  EXPECT_TRUE(x.significant);
  EXPECT_TRUE(x.ratio.valid);
  EXPECT_GT(x.ratio.lo, 1.0);
}

TEST(Bootstrap, ConstantGroupsGiveAnExactInterval) {
  Comparison c = BootstrapCompare({1, 1, 1}, {3, 3, 3, 3}, 1);
  EXPECT_DOUBLE_EQ(c.diff.lo, 2);
  EXPECT_DOUBLE_EQ(c.diff.hi, 2);
  EXPECT_DOUBLE_EQ(c.ratio.estimate, 3);
  EXPECT_DOUBLE_EQ(c.ratio.lo, 3);
}

TEST(Bootstrap, SameDistributionIsNotSignificant) {
  const std::vector<double> a = {5, 6, 7, 5.5, 6.5, 6, 5.8, 6.2, 6.1, 5.9};
  Comparison c = BootstrapCompare(a, a, 9);
  EXPECT_DOUBLE_EQ(c.diff.estimate, 0);
  EXPECT_LE(c.diff.lo, 0);
  EXPECT_GE(c.diff.hi, 0);
  EXPECT_FALSE(c.significant);
}

TEST(Bootstrap, EmptyOrZeroBaseline) {
  EXPECT_FALSE(BootstrapCompare({}, {1}, 1).diff.valid);
  Comparison z = BootstrapCompare({0, 0}, {1, 1}, 1);
  EXPECT_TRUE(z.diff.valid);
  EXPECT_FALSE(z.ratio.valid);
}

}  // namespace
}  // namespace corral::bench

namespace corral::bench {
namespace {

TEST(BootstrapMedian, DeterministicAndExactOnConstants) {
  const std::vector<double> v = {1.1, 1.0, 1.2, 1.05, 1.15, 0.95, 1.1};
  Interval a = BootstrapMedian(v, 5), b = BootstrapMedian(v, 5);
  EXPECT_TRUE(a.valid);
  EXPECT_DOUBLE_EQ(a.estimate, 1.1);
  EXPECT_DOUBLE_EQ(a.lo, b.lo);
  EXPECT_DOUBLE_EQ(a.hi, b.hi);
  EXPECT_LE(a.lo, a.estimate);
  EXPECT_GE(a.hi, a.estimate);
  Interval c = BootstrapMedian({2, 2, 2}, 1);
  EXPECT_DOUBLE_EQ(c.lo, 2);
  EXPECT_DOUBLE_EQ(c.hi, 2);
  EXPECT_FALSE(BootstrapMedian({}, 1).valid);
}

}  // namespace
}  // namespace corral::bench
