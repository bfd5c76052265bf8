// The router's rules, without processes: a scripted ChildControl stands in for the
// supervisor and an injected clock stands in for time, so every rule is checked at exact
// times and nothing sleeps. What the router does on its starter thread is awaited as an
// event (a start or stop reaching the fake, an answer reaching a request); "did not happen"
// is asserted against a sentinel that must happen after it (see IdleTtl...).
#include "daemon/router.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "daemon/models.h"
#include "supervisor/launch.h"
#include "support/test_support.h"

namespace corral::daemon {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::seconds;
using supervisor::ChildInfo;
using supervisor::ChildState;

// A clock the test moves by hand. Starts far from the steady clock on purpose: the router
// must never mix the two.
class FakeClock {
 public:
  Clock::time_point Now() const { return Clock::time_point(seconds(1'000'000) + offset_.load()); }
  void Advance(Clock::duration d) { offset_.store(offset_.load() + d); }

 private:
  std::atomic<Clock::duration> offset_{Clock::duration::zero()};
};

// The supervisor as the router sees it, scripted. Children start in kStarting; the test
// makes them ready (or failed) and tells the router, as the monitor thread would.
class FakeChildren : public supervisor::ChildControl {
 public:
  struct StopRecord {
    std::string name;
    Clock::time_point at;
    bool request_ended;  // the test's flag at the moment of the stop
  };
  explicit FakeChildren(const FakeClock& clock) : clock_(clock) {}

  Result<ChildInfo> Start(const supervisor::LaunchSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    attempts_.push_back(spec.model);
    if (!fail_next_.empty()) {
      Status s = fail_next_.front();
      fail_next_.erase(fail_next_.begin());
      return s;
    }
    if (max_running_ > 0 && children_.size() >= max_running_) {
      return Status(StatusCode::kResourceExhausted, "not enough memory for '" + spec.name + "'");
    }
    ChildInfo c;
    c.name = spec.name;
    c.model = spec.model;
    c.model_path = spec.model_path;
    c.state = ChildState::kStarting;
    c.port = next_port_++;
    children_[c.name] = c;
    starts_.push_back(spec.model);
    specs_.push_back(spec);
    cv_.notify_all();
    return c;
  }
  Result<ChildInfo> Stop(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(name);
    if (it == children_.end()) return NotFound("no model named '" + name + "'");
    ChildInfo c = it->second;
    children_.erase(it);
    stops_.push_back({name, clock_.Now(), request_ended.load()});
    cv_.notify_all();
    return c;
  }
  std::vector<ChildInfo> List() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ChildInfo> out;
    for (const auto& [n, c] : children_) out.push_back(c);
    return out;
  }
  Result<ChildInfo> Get(const std::string& name) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = children_.find(name);
    if (it == children_.end()) return NotFound("no model named '" + name + "'");
    return it->second;
  }

  // Scripting.
  // A child started by the control plane (`corral start`), ready at once.
  ChildInfo AddReady(const std::string& name, const std::string& model, const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    ChildInfo c;
    c.name = name;
    c.model = model;
    c.model_path = path;
    c.state = ChildState::kReady;
    c.port = next_port_++;
    children_[name] = c;
    return c;
  }
  void FailNextStart(Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_next_.push_back(std::move(s));
  }
  void SetMaxRunning(size_t n) {
    std::lock_guard<std::mutex> lock(mu_);
    max_running_ = n;
  }
  // The child serving `model` (the one started last); "" when none.
  std::string ChildOf(const std::string& model) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const auto& [n, c] : children_) {
      if (c.model == model) out = n;
    }
    return out;
  }
  void SetState(const std::string& child, ChildState state) {
    std::lock_guard<std::mutex> lock(mu_);
    children_.at(child).state = state;
  }
  // Waits (real time, bounded) until `n` children were started / stopped.
  bool WaitStarts(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return starts_.size() >= n; });
  }
  bool WaitStops(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, seconds(10), [&] { return stops_.size() >= n; });
  }
  std::vector<std::string> starts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return starts_;
  }
  std::vector<std::string> attempts() const {  // successful or not
    std::lock_guard<std::mutex> lock(mu_);
    return attempts_;
  }
  std::vector<supervisor::LaunchSpec> specs() const {  // successful starts, in order
    std::lock_guard<std::mutex> lock(mu_);
    return specs_;
  }
  std::vector<StopRecord> stops() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stops_;
  }

  std::atomic<bool> request_ended{false};

 private:
  const FakeClock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ChildInfo> children_;
  std::vector<std::string> starts_;    // model names, successful starts
  std::vector<std::string> attempts_;  // model names, every call
  std::vector<StopRecord> stops_;
  std::vector<supervisor::LaunchSpec> specs_;
  std::vector<Status> fail_next_;
  size_t max_running_ = 0;
  int next_port_ = 40000;
};

// Answers to EnsureReady, awaited one by one.
class Answers {
 public:
  std::function<void(proxy::EnsureResult)> Sink(const std::string& tag) {
    return [this, tag](proxy::EnsureResult r) {
      std::lock_guard<std::mutex> lock(mu_);
      got_[tag] = std::move(r);
      cv_.notify_all();
    };
  }
  std::optional<proxy::EnsureResult> Wait(const std::string& tag) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, seconds(10), [&] { return got_.count(tag) != 0; })) return std::nullopt;
    return got_[tag];
  }
  bool Has(const std::string& tag) {
    std::lock_guard<std::mutex> lock(mu_);
    return got_.count(tag) != 0;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, proxy::EnsureResult> got_;
};

proxy::EnsureErrorCode ErrorCode(const proxy::EnsureResult& r) {
  return std::get<proxy::EnsureError>(r).code;
}

// Five small models, made once for the binary.
class Models {
 public:
  static Models& Get() {
    static Models m;  // destroyed at exit, which removes its directory
    return m;
  }
  std::string dir() const { return dir_.path(); }

 private:
  Models() {
    for (const char* n : {"alpha", "beta", "gamma", "delta", "epsilon"}) {
      testing::MakeModel(dir_.path(), std::string(n) + ".gguf",
                         {"--name", n, "--n-embd", "32", "--n-layer", "1", "--n-head", "2", "--n-ff", "64"});
    }
  }
  testing::TempDir dir_;
};

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("XDG_CACHE_HOME", cache_.path().c_str(), 1);  // the catalog's index cache
    config_.model_paths = {Models::Get().dir()};
    config_.scan_huggingface = config_.scan_ollama = config_.scan_lmstudio = config_.scan_llamacpp = false;
    config_.aliases = std::map<std::string, std::string>{{"fav", "alpha"}};
    auto cat = catalog::Catalog::Load(config_);
    ASSERT_TRUE(cat.ok()) << cat.status().ToString();
    for (const auto& m : cat->models()) {
      if (m.path.rfind(Models::Get().dir() + "/", 0) != 0) continue;  // Corral's default models
      const std::string stem = m.path.substr(m.path.rfind('/') + 1);
      name_[stem.substr(0, stem.size() - 5)] = m.name;
      path_[stem.substr(0, stem.size() - 5)] = m.path;
    }
    ASSERT_EQ(name_.size(), 5u);
  }
  void TearDown() override {
    if (router_) router_->Shutdown();
  }

  ModelRouter& Router(RouterOptions o = {}) {
    o.clock = [this] { return clock_.Now(); };
    router_ = std::make_unique<ModelRouter>(config_, children_, routes_, o);
    return *router_;
  }
  // A deadline far enough for tests that do not test deadlines.
  Clock::time_point Later() const { return clock_.Now() + seconds(3600); }

  // Asks for `stem`'s model, waits for the start, makes the child ready; returns its child.
  std::string StartReady(const std::string& stem) {
    const size_t before = children_.starts().size();
    router_->EnsureReady(name_[stem], Later(), answers_.Sink("ready " + stem));
    EXPECT_TRUE(children_.WaitStarts(before + 1));
    const std::string child = children_.ChildOf(name_[stem]);
    EXPECT_FALSE(child.empty()) << stem;
    children_.SetState(child, ChildState::kReady);
    router_->OnSupervisorChange();
    auto r = answers_.Wait("ready " + stem);
    EXPECT_TRUE(r && std::holds_alternative<proxy::Endpoint>(*r)) << stem;
    Barrier();
    return child;
  }
  // `corral start`: the control plane starts the child, then registers it pinned.
  std::string StartPinned(const std::string& stem) {
    const std::string child = stem + "-pinned";
    children_.AddReady(child, name_[stem], path_[stem]);
    router_->RegisterStarted(child, {name_[stem]}, /*pinned=*/true);
    return child;
  }
  // Returns once the starter thread has finished everything queued before: it takes
  // starts in order, so the answer to a start queued now (a name nothing has) comes after.
  void Barrier() {
    const std::string tag = "barrier " + std::to_string(++barriers_);
    router_->EnsureReady("no-such-model-zz", Later(), answers_.Sink(tag));
    auto r = answers_.Wait(tag);
    ASSERT_TRUE(r && std::holds_alternative<proxy::EnsureError>(*r));
  }
  proxy::Endpoint EndpointOf(const std::string& child) {
    auto c = children_.Get(child);
    return proxy::Endpoint{"127.0.0.1", static_cast<uint16_t>(c->port)};
  }
  std::vector<std::string> StopNames() {
    std::vector<std::string> out;
    for (const auto& s : children_.stops()) out.push_back(s.name);
    return out;
  }

  testing::TempDir cache_;
  config::Config config_;
  std::map<std::string, std::string> name_;  // file stem -> catalog name
  std::map<std::string, std::string> path_;  // file stem -> file
  FakeClock clock_;
  FakeChildren children_{clock_};
  proxy::RoutingTable routes_;
  Answers answers_;
  std::unique_ptr<ModelRouter> router_;
  int barriers_ = 0;
};

TEST_F(RouterTest, ManyWaitersShareOneStartAndAreAnsweredWhenReady) {
  ModelRouter& r = Router();
  r.EnsureReady(name_["alpha"], Later(), answers_.Sink("a1"));
  r.EnsureReady("fav", Later(), answers_.Sink("a2"));  // the alias: the same model, the same start
  ASSERT_TRUE(children_.WaitStarts(1));
  const std::string child = children_.ChildOf(name_["alpha"]);
  EXPECT_FALSE(answers_.Has("a1"));
  children_.SetState(child, ChildState::kReady);
  r.OnSupervisorChange();
  for (const char* tag : {"a1", "a2"}) {
    auto a = answers_.Wait(tag);
    ASSERT_TRUE(a && std::holds_alternative<proxy::Endpoint>(*a)) << tag;
    EXPECT_EQ(std::get<proxy::Endpoint>(*a), EndpointOf(child));
  }
  EXPECT_EQ(children_.starts().size(), 1u);
  // Routed by its name and its alias from now on.
  auto map = routes_.Load();
  EXPECT_EQ(map->routes.count(name_["alpha"]), 1u);
  EXPECT_EQ(map->routes.count("fav"), 1u);
}

TEST_F(RouterTest, AFullQueueIsAnsweredAtOnceWithRetryAfter) {
  RouterOptions o;
  o.max_waiters = 2;
  ModelRouter& r = Router(o);
  r.EnsureReady(name_["alpha"], Later(), answers_.Sink("1"));
  r.EnsureReady(name_["beta"], Later(), answers_.Sink("2"));
  r.EnsureReady(name_["gamma"], Later(), answers_.Sink("3"));
  ASSERT_TRUE(answers_.Has("3"));  // answered inline: nothing was queued for it
  auto a = answers_.Wait("3");
  EXPECT_EQ(ErrorCode(*a), proxy::EnsureErrorCode::kQueueFull);
  EXPECT_GT(std::get<proxy::EnsureError>(*a).retry_after_s, 0);
  EXPECT_FALSE(answers_.Has("1"));
  EXPECT_FALSE(answers_.Has("2"));
}

TEST_F(RouterTest, ADeadlineIsAnsweredWhenTheClockPassesItAndNotBefore) {
  ModelRouter& r = Router();
  const auto t0 = clock_.Now();
  r.EnsureReady(name_["alpha"], t0 + seconds(5), answers_.Sink("soon"));
  r.EnsureReady(name_["alpha"], t0 + seconds(10), answers_.Sink("later"));
  ASSERT_TRUE(children_.WaitStarts(1));  // loading, and it stays so
  clock_.Advance(seconds(6));
  r.Poke();
  auto a = answers_.Wait("soon");
  ASSERT_TRUE(a);
  EXPECT_EQ(ErrorCode(*a), proxy::EnsureErrorCode::kTimeout);
  // Expired waiters are answered together in one pass: the later one is still parked.
  EXPECT_FALSE(answers_.Has("later"));
  clock_.Advance(seconds(5));
  r.Poke();
  a = answers_.Wait("later");
  ASSERT_TRUE(a);
  EXPECT_EQ(ErrorCode(*a), proxy::EnsureErrorCode::kTimeout);
}

TEST_F(RouterTest, AFailedStartBacksOffPerFileForEverySpelling) {
  RouterOptions o;
  o.failed_backoff = seconds(5);
  ModelRouter& r = Router(o);
  children_.FailNextStart(Status(StatusCode::kUnavailable, "exec failed: /secret/path/llama-server"));
  r.EnsureReady(name_["alpha"], Later(), answers_.Sink("first"));
  auto a = answers_.Wait("first");
  ASSERT_TRUE(a);
  EXPECT_EQ(ErrorCode(*a), proxy::EnsureErrorCode::kStartFailed);
  EXPECT_EQ(std::get<proxy::EnsureError>(*a).message.find("/secret"), std::string::npos);  // no paths

  // Within the backoff, by another spelling: answered from the remembered failure.
  clock_.Advance(seconds(4));
  r.EnsureReady("fav", Later(), answers_.Sink("again"));
  a = answers_.Wait("again");
  ASSERT_TRUE(a);
  EXPECT_EQ(ErrorCode(*a), proxy::EnsureErrorCode::kStartFailed);
  EXPECT_EQ(std::get<proxy::EnsureError>(*a).retry_after_s, 2);  // 1 s left, rounded up + 1
  EXPECT_EQ(children_.attempts().size(), 1u);

  // After it: a real start again.
  clock_.Advance(seconds(1));
  r.EnsureReady(name_["alpha"], Later(), answers_.Sink("after"));
  ASSERT_TRUE(children_.WaitStarts(1));
}

TEST_F(RouterTest, EvictionTakesTheLeastRecentlyUsedIdleModelNeverPinnedOrBusy) {
  ModelRouter& r = Router();
  children_.SetMaxRunning(4);
  // alpha pinned (`corral start`), beta busy, gamma idle since t+1, epsilon idle since t+2.
  const std::string a = StartPinned("alpha");
  const std::string b = StartReady("beta");
  r.OnRequestStart(name_["beta"], EndpointOf(b));
  clock_.Advance(seconds(1));
  const std::string g = StartReady("gamma");
  clock_.Advance(seconds(1));
  const std::string e = StartReady("epsilon");
  clock_.Advance(seconds(1));

  // delta needs room: one eviction, the oldest idle unpinned model, and the log says so.
  ::testing::internal::CaptureStderr();
  StartReady("delta");
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(StopNames(), std::vector<std::string>{g});
  EXPECT_NE(log.find("evicting " + g + " (least recently used, idle 2s) to make room for "), std::string::npos) << log;

  // gamma again: now epsilon (t+2) is older than delta (t+3); alpha and beta stay.
  clock_.Advance(seconds(1));
  StartReady("gamma");
  EXPECT_EQ(StopNames(), (std::vector<std::string>{g, e}));
}

TEST_F(RouterTest, NothingToEvictRefusesTheStartForMemory) {
  ModelRouter& r = Router();
  children_.SetMaxRunning(1);
  const std::string a = StartReady("alpha");
  r.OnRequestStart(name_["alpha"], EndpointOf(a));  // busy: never evicted
  r.EnsureReady(name_["beta"], Later(), answers_.Sink("beta"));
  auto ans = answers_.Wait("beta");
  ASSERT_TRUE(ans);
  EXPECT_EQ(ErrorCode(*ans), proxy::EnsureErrorCode::kUnavailable);
  EXPECT_NE(std::get<proxy::EnsureError>(*ans).message.find("not enough memory"), std::string::npos);
  EXPECT_TRUE(children_.stops().empty());
}

TEST_F(RouterTest, KeepAliveZeroUnloadsWhenTheLastRequestEndsNeverBeforeNorWhenPinned) {
  ModelRouter& r = Router();
  StartPinned("alpha");
  const std::string b = StartReady("beta");
  r.OnRequestStart(name_["beta"], EndpointOf(b));
  EXPECT_TRUE(r.SetKeepAlive(name_["alpha"], seconds(0)));  // accepted, changes nothing for a pinned model
  EXPECT_TRUE(r.SetKeepAlive(name_["beta"], seconds(0)));
  children_.request_ended = true;
  r.OnRequestEnd(name_["beta"], EndpointOf(b));
  ASSERT_TRUE(children_.WaitStops(1));
  const auto stops = children_.stops();
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].name, b);
  EXPECT_TRUE(stops[0].request_ended);  // not while the request was in flight
}

TEST_F(RouterTest, IdleTtlUnloadsAtTheExactTimeAndKeepAliveOverridesIt) {
  RouterOptions o;
  o.idle_ttl = seconds(10);
  ModelRouter& r = Router(o);
  const auto t0 = clock_.Now();
  const std::string a = StartReady("alpha");
  const std::string b = StartReady("beta");
  ASSERT_TRUE(r.SetKeepAlive(name_["beta"], seconds(5)));  // the sentinel: due at t0+5
  clock_.Advance(seconds(9));
  r.Poke();
  ASSERT_TRUE(children_.WaitStops(1));
  EXPECT_EQ(StopNames(), std::vector<std::string>{b});  // alpha (ttl 10) not yet at t0+9
  // Capture before the clock moves: the router's own thread may see t0+11 and unload alpha
  // before the Poke (CI caught the line written just before the capture began).
  ::testing::internal::CaptureStderr();
  clock_.Advance(seconds(2));
  r.Poke();
  const bool stopped = children_.WaitStops(2);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(stopped);
  EXPECT_NE(log.find("unloading " + a + ": idle for 11s, its TTL is 10s"), std::string::npos) << log;
  EXPECT_EQ(children_.stops()[1].name, a);
  EXPECT_EQ(children_.stops()[1].at, t0 + seconds(11));
}

TEST_F(RouterTest, ReloadForgetsRemovedAliasesButTheModelStaysRouted) {
  ModelRouter& r = Router();
  StartReady("alpha");
  ASSERT_EQ(routes_.Load()->routes.count("fav"), 1u);
  config::Config next = config_;
  next.aliases = std::map<std::string, std::string>{{"best", "alpha"}};
  EXPECT_TRUE(r.UpdateConfig(next).empty());
  r.OnSupervisorChange();
  auto map = routes_.Load();
  EXPECT_EQ(map->routes.count("fav"), 0u);
  EXPECT_EQ(map->routes.count("best"), 1u);
  EXPECT_EQ(map->routes.count(name_["alpha"]), 1u);
  EXPECT_TRUE(children_.stops().empty());  // the child keeps running
}

// Restart pending (issue 12 item 3): a request for a model whose child crashed and that the
// supervisor's restart policy will start again waits for it (no start of its own, no
// failure), bounded by its deadline, counts for the queue-full rule, and is answered with the
// child's endpoint when it is back.
TEST_F(RouterTest, ARequestForARestartPendingModelWaitsAndIsAnsweredWhenItIsBack) {
  RouterOptions o;
  o.max_waiters = 3;
  ModelRouter& r = Router(o);
  const std::string a = StartReady("alpha");
  children_.SetState(a, ChildState::kRestartPending);
  r.OnSupervisorChange();
  EXPECT_EQ(routes_.Load()->routes.count(name_["alpha"]), 0u);  // no process: not routed

  const auto t0 = clock_.Now();
  r.EnsureReady(name_["alpha"], t0 + seconds(3), answers_.Sink("soon"));
  r.EnsureReady("fav", t0 + seconds(60), answers_.Sink("w1"));  // the alias waits for the same child
  r.EnsureReady(name_["alpha"], t0 + seconds(60), answers_.Sink("w2"));
  EXPECT_EQ(r.waiting(), 3u);
  r.EnsureReady(name_["beta"], Later(), answers_.Sink("full"));
  ASSERT_TRUE(answers_.Has("full"));
  EXPECT_EQ(ErrorCode(*answers_.Wait("full")), proxy::EnsureErrorCode::kQueueFull);

  // Its deadline, not the restart, answers the first one: at t0+3 exactly.
  clock_.Advance(seconds(2));
  r.Poke();
  clock_.Advance(seconds(1));
  r.Poke();
  auto soon = answers_.Wait("soon");
  ASSERT_TRUE(soon);
  EXPECT_EQ(ErrorCode(*soon), proxy::EnsureErrorCode::kTimeout);
  EXPECT_EQ(r.waiting(), 2u);
  Barrier();  // the starter did all it was asked: no start of alpha
  EXPECT_EQ(children_.attempts().size(), 1u);
  EXPECT_FALSE(answers_.Has("w1"));

  children_.SetState(a, ChildState::kStarting);  // the policy's restart
  r.OnSupervisorChange();
  EXPECT_FALSE(answers_.Has("w1"));
  children_.SetState(a, ChildState::kReady);
  r.OnSupervisorChange();
  for (const char* tag : {"w1", "w2"}) {
    auto w = answers_.Wait(tag);
    ASSERT_TRUE(w && std::holds_alternative<proxy::Endpoint>(*w)) << tag;
    EXPECT_EQ(std::get<proxy::Endpoint>(*w), EndpointOf(a)) << tag;
  }
  EXPECT_EQ(r.waiting(), 0u);
  EXPECT_EQ(children_.starts().size(), 1u);
  EXPECT_EQ(routes_.Load()->routes.count("fav"), 1u);
}

// A restart-pending child has no process: it is not routed, listed as failed (the wire's
// word for it), and never chosen for eviction although it is the least recently used.
TEST_F(RouterTest, ARestartPendingChildIsNotRoutedNorEvicted) {
  ModelRouter& r = Router();
  children_.SetMaxRunning(2);  // the supervisor keeps a restart-pending child's reservation
  const std::string a = StartReady("alpha");
  clock_.Advance(seconds(1));
  const std::string b = StartReady("beta");
  clock_.Advance(seconds(1));
  children_.SetState(a, ChildState::kRestartPending);
  r.OnSupervisorChange();
  auto map = routes_.Load();
  for (const std::string& n : {a, name_["alpha"], std::string("fav")}) EXPECT_EQ(map->routes.count(n), 0u) << n;
  EXPECT_EQ(map->routes.count(name_["beta"]), 1u);
  bool listed = false;
  for (const auto& m : r.ListModels()) {
    if (m.name != name_["alpha"]) continue;
    listed = true;
    EXPECT_EQ(m.state, proxy::ModelState::kFailed);
    EXPECT_EQ(m.expires_at, std::chrono::system_clock::time_point{});  // no TTL runs
  }
  EXPECT_TRUE(listed);

  // gamma needs room: beta goes, though alpha was used longer ago.
  StartReady("gamma");
  EXPECT_EQ(StopNames(), std::vector<std::string>{b});
}

// Speculative decoding (issue 17): finished requests' draft counts reach the fallback rule
// through the child that served them; a draft that does not pay marks the model file for its
// next start, and nothing is stopped (a busy model keeps serving). A reload clears the mark.
TEST_F(RouterTest, LowDraftAcceptanceMarksTheFileForItsNextStartAndStopsNothing) {
  ModelRouter& r = Router();
  const std::string a = StartReady("alpha");
  const std::string b = StartReady("beta");
  const proxy::Endpoint ea = EndpointOf(a), eb = EndpointOf(b);
  proxy::RequestRecord rec;
  rec.status = 200;
  for (int i = 0; i < 10; ++i) {  // alpha: 300 draft tokens at 10 %; beta: 300 at 90 %
    r.OnRequestStart(name_["alpha"], ea);
    rec.draft_tokens = 30;
    rec.draft_accepted = 3;
    r.OnRequestFinished(name_["alpha"], ea, rec);
    r.OnRequestStart(name_["beta"], eb);
    rec.draft_accepted = 27;
    r.OnRequestFinished(name_["beta"], eb, rec);
  }
  rec.draft_tokens = rec.draft_accepted = -1;  // a response without a draft changes nothing
  r.OnRequestStart(name_["alpha"], ea);
  r.OnRequestFinished(name_["alpha"], ea, rec);
  auto why = r.SpecFallbackReason(path_["alpha"]);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("below 30%"), std::string::npos) << *why;
  EXPECT_FALSE(r.SpecFallbackReason(path_["beta"]));
  auto ta = r.SpecTotals(a);
  ASSERT_TRUE(ta);
  EXPECT_EQ(ta->drafted, 300u);
  EXPECT_EQ(ta->accepted, 30u);
  EXPECT_NEAR(r.SpecTotals(b)->acceptance(), 0.9, 1e-12);
  EXPECT_FALSE(r.SpecTotals("no-such-child"));
  Barrier();
  EXPECT_TRUE(children_.stops().empty());  // marked, not restarted
  EXPECT_TRUE(r.UpdateConfig(config_).empty());
  EXPECT_FALSE(r.SpecFallbackReason(path_["alpha"]));
}

// Every field of a launch spec, for comparing two (the argv covers ctx, args, kv and spec).
std::string Describe(const supervisor::LaunchSpec& s) {
  std::string out = supervisor::ShellQuote(supervisor::BuildArgv("llama-server", s));
  out += " | name=" + s.name + " model=" + s.model + " bytes=" + std::to_string(s.model_bytes) +
         " reserved=" + std::to_string(s.reserved_bytes) + " port=" + std::to_string(s.port) +
         " restart=" + std::to_string(static_cast<int>(s.restart)) +
         " force=" + std::to_string(static_cast<int>(s.force)) + " kv_budget=" + std::to_string(s.kv_budget_bytes) +
         " note=" + s.spec_note + " env=" + std::to_string(s.env.size());
  return out;
}

// One launch-spec builder (issue 12 item 4): an on-demand start builds exactly the spec that
// `corral start` without flags builds for the same model and settings (ctx, args, restart,
// kv_keep, spec, reserved bytes); `corral start`'s flags win over the `models:` settings.
TEST_F(RouterTest, OnDemandAndCorralStartBuildTheSameLaunchSpec) {
  config::ModelSettings a;
  a.ref = "alpha";
  a.ctx = 512;
  a.args = {"--threads", "1"};
  a.restart = true;
  a.kv_keep = false;
  a.spec = "off";
  config::ModelSettings b;
  b.ref = "beta";
  b.ctx = 256;
  config_.models = {a, b};
  config_.kv_keep = true;
  config_.kv_keep_budget = "1GiB";
  ModelRouter& r = Router();
  const std::vector<std::string> stems = {"alpha", "beta", "gamma"};
  std::vector<std::string> child;
  for (const auto& stem : stems) child.push_back(StartReady(stem));
  const std::vector<supervisor::LaunchSpec> on_demand = children_.specs();
  ASSERT_EQ(on_demand.size(), stems.size());
  const catalog::Catalog cat = r.CatalogSnapshot();
  for (size_t i = 0; i < stems.size(); ++i) {
    auto model = ResolveModel(config_, name_[stems[i]]);  // `corral start NAME`
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    LaunchRequest no_flags;
    no_flags.name = child[i];
    auto plan = BuildLaunchSpec(config_, *model, r.LaunchSettingsFor(path_[stems[i]]), no_flags, cat);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    EXPECT_EQ(Describe(plan->spec), Describe(on_demand[i])) << stems[i];
    EXPECT_EQ(plan->spec.preset_args, on_demand[i].preset_args) << stems[i];
  }
  // The settings reached the on-demand spec.
  EXPECT_EQ(on_demand[0].ctx, 512u);
  EXPECT_EQ(on_demand[0].preset_args, a.args);
  EXPECT_TRUE(on_demand[0].restart);
  EXPECT_TRUE(on_demand[0].kv_root.empty());
  EXPECT_FALSE(on_demand[0].spec_mtp || !on_demand[0].draft_path.empty());
  EXPECT_EQ(on_demand[1].ctx, 256u);
  EXPECT_FALSE(on_demand[1].restart);
  EXPECT_FALSE(on_demand[1].kv_root.empty());
  EXPECT_EQ(on_demand[1].kv_budget_bytes, uint64_t{1} << 30);
  EXPECT_EQ(on_demand[2].ctx, 0u);
  EXPECT_TRUE(on_demand[2].preset_args.empty());
  for (const auto& s : on_demand) EXPECT_GT(s.reserved_bytes, s.model_bytes) << s.model;

  // `corral start alpha -c 1024 --port 5555 --force -- --threads 2`: the flags win;
  // `restart` is either's.
  auto model = ResolveModel(config_, name_["alpha"]);
  ASSERT_TRUE(model.ok());
  LaunchRequest flags;
  flags.name = "x";
  flags.ctx = 1024;
  flags.port = 5555;
  flags.force = true;
  flags.raw_args = {"--threads", "2"};
  flags.env = {"A=1"};
  auto plan = BuildLaunchSpec(config_, *model, r.LaunchSettingsFor(path_["alpha"]), flags, cat);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->spec.ctx, 1024u);
  EXPECT_TRUE(plan->spec.preset_args.empty());
  EXPECT_EQ(plan->spec.raw_args, flags.raw_args);
  EXPECT_EQ(plan->spec.env, flags.env);
  EXPECT_EQ(plan->spec.port, 5555);
  EXPECT_TRUE(plan->spec.force);
  EXPECT_TRUE(plan->spec.restart);
  EXPECT_EQ(plan->spec.reserved_bytes, EstimateModelMemory(config_, *model, 1024));
}

}  // namespace
}  // namespace corral::daemon
