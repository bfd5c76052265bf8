// proxy_hop: measures what the proxy hop costs, same llama-server behind both paths.
//
//   proxy_hop --direct PORT --proxy PORT [--model NAME] [--n 60] [--max-tokens 64]
//             [--concurrency 64] [--rounds 3]
//
// Sequential part: alternating requests direct / proxied (streaming chat, temperature 0,
// fixed max_tokens, ignore_eos) after a warm-up. llama-server (cpp-httplib) closes the
// connection after every streamed response although it advertises keep-alive, so the
// direct side connects afresh for each request (as any client of it must); the proxied
// side keeps its client connection (--proxy-fresh 1: connect afresh too, counted in TTFT);
// reports TTFT (send -> first content byte) p50/p99 on both sides, the added TTFT
// (difference of the percentiles and median of pairwise differences) and the decode ratio
// (tokens per second after the first token, median proxied / median direct).
// Concurrent part: `concurrency` streams at once, alternating rounds direct / proxied;
// reports aggregate tokens/s and errors. Steady clock timestamps; one thread per stream.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Sample {
  bool ok = false;
  double ttft_ms = 0;
  double decode_tps = 0;  // tokens after the first / time after the first
  int tokens = 0;
};

int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// One streaming request. `fd` < 0: connect first (the connect counts in TTFT); the
// connection is kept in `fd` unless `fresh`. Counts content events.
Sample Stream(int port, int& fd, bool fresh, const std::string& request) {
  Sample s;
  auto t0 = Clock::now();
  if (fd < 0) fd = Connect(port);
  if (fd < 0) return s;
  struct Closer {
    int& fd;
    bool fresh;
    ~Closer() {
      if (fresh && fd >= 0) {
        ::close(fd);
        fd = -1;
      }
    }
  } closer{fd, fresh};
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return s;
  std::string buf;
  buf.reserve(1 << 16);
  char tmp[16384];
  size_t scan = 0;
  Clock::time_point first{}, last{};
  const std::string kContent = "\"content\":\"";
  for (;;) {
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) {
      std::fprintf(stderr, "connection closed after %zu bytes: %.200s\n", buf.size(), buf.c_str());
      ::close(fd);
      fd = -1;
      return s;
    }
    auto now = Clock::now();
    buf.append(tmp, static_cast<size_t>(n));
    size_t at;
    while ((at = buf.find(kContent, scan)) != std::string::npos) {
      if (s.tokens == 0) first = now;
      last = now;
      ++s.tokens;
      scan = at + kContent.size();
    }
    if (buf.size() > 12) scan = std::max(scan, buf.size() - 12);
    size_t done = buf.find("data: [DONE]");
    if (done != std::string::npos && buf.find("\r\n0\r\n\r\n", done) != std::string::npos) break;
  }
  if (buf.compare(0, 12, "HTTP/1.1 200") != 0 || s.tokens == 0) {
    std::fprintf(stderr, "bad response (%d tokens): %.300s\n", s.tokens, buf.c_str());
    return s;
  }
  s.ok = true;
  s.ttft_ms = std::chrono::duration<double, std::milli>(first - t0).count();
  double decode_s = std::chrono::duration<double>(last - first).count();
  s.decode_tps = decode_s > 0 ? (s.tokens - 1) / decode_s : 0;
  return s;
}

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

std::string Request(const std::string& model, int max_tokens, int seq) {
  std::string body = "{\"model\":\"" + model + "\",\"messages\":[{\"role\":\"user\",\"content\":\"Write about " +
                     std::to_string(seq % 7) +
                     " things\"}],\"stream\":true,\"temperature\":0,\"max_tokens\":" + std::to_string(max_tokens) +
                     ",\"ignore_eos\":true}";
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

int main(int argc, char** argv) {
  int direct = 0, proxy = 0, n = 60, max_tokens = 64, concurrency = 64, rounds = 3, proxy_fresh = 0;
  std::string model = "tiny";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--direct")
      direct = std::atoi(v);
    else if (k == "--proxy")
      proxy = std::atoi(v);
    else if (k == "--n")
      n = std::atoi(v);
    else if (k == "--max-tokens")
      max_tokens = std::atoi(v);
    else if (k == "--concurrency")
      concurrency = std::atoi(v);
    else if (k == "--rounds")
      rounds = std::atoi(v);
    else if (k == "--model")
      model = v;
    else if (k == "--proxy-fresh")
      proxy_fresh = std::atoi(v);
  }
  if (direct == 0 || proxy == 0) {
    std::fprintf(stderr, "usage: proxy_hop --direct PORT --proxy PORT [--model M] [--n N] [--max-tokens T]\n");
    return 64;
  }
#if !defined(__OPTIMIZE__)
  std::fprintf(stderr, "WARNING: built without optimisation\n");
#endif
  int fd_direct = -1, fd_proxy = -1;
  const bool pf = proxy_fresh != 0;
  for (int i = 0; i < 5; ++i) {  // warm-up: pools, caches, the prompt cache
    Stream(direct, fd_direct, true, Request(model, max_tokens, i));
    Stream(proxy, fd_proxy, pf, Request(model, max_tokens, i));
  }
  std::vector<double> ttft_d, ttft_p, tps_d, tps_p, diff;
  int errors = 0;
  for (int i = 0; i < n; ++i) {
    // Alternate which side goes first so drift and cache effects cancel.
    bool proxy_first = i % 2 == 1;
    Sample a = proxy_first ? Stream(proxy, fd_proxy, pf, Request(model, max_tokens, i))
                           : Stream(direct, fd_direct, true, Request(model, max_tokens, i));
    Sample b = proxy_first ? Stream(direct, fd_direct, true, Request(model, max_tokens, i))
                           : Stream(proxy, fd_proxy, pf, Request(model, max_tokens, i));
    const Sample& d = proxy_first ? b : a;
    const Sample& p = proxy_first ? a : b;
    if (!d.ok || !p.ok) {
      ++errors;
      continue;
    }
    ttft_d.push_back(d.ttft_ms);
    ttft_p.push_back(p.ttft_ms);
    tps_d.push_back(d.decode_tps);
    tps_p.push_back(p.decode_tps);
    diff.push_back(p.ttft_ms - d.ttft_ms);
  }
  std::printf("sequential: %zu pairs, %d errors, max_tokens %d, proxy client connection %s\n", ttft_d.size(), errors,
              max_tokens, pf ? "fresh per request" : "kept alive");
  std::printf("  TTFT direct  p50 %.3f ms  p99 %.3f ms\n", Pct(ttft_d, 0.5), Pct(ttft_d, 0.99));
  std::printf("  TTFT proxied p50 %.3f ms  p99 %.3f ms\n", Pct(ttft_p, 0.5), Pct(ttft_p, 0.99));
  std::printf("  added TTFT: p50 %+.3f ms  p99 %+.3f ms  (median of pairwise differences %+.3f ms)\n",
              Pct(ttft_p, 0.5) - Pct(ttft_d, 0.5), Pct(ttft_p, 0.99) - Pct(ttft_d, 0.99), Pct(diff, 0.5));
  std::printf("  decode tok/s direct p50 %.1f  proxied p50 %.1f  ratio %.4f\n", Pct(tps_d, 0.5), Pct(tps_p, 0.5),
              Pct(tps_p, 0.5) / Pct(tps_d, 0.5));
  if (fd_proxy >= 0) ::close(fd_proxy);

  if (concurrency <= 0) return 0;
  double agg[2] = {0, 0};
  int errs[2] = {0, 0};
  std::vector<double> cttft[2];
  for (int r = 0; r < 2 * rounds; ++r) {
    int side = r % 2;  // 0 direct, 1 proxied
    int port = side == 0 ? direct : proxy;
    std::atomic<int> tokens{0}, failed{0};
    std::vector<double> ttfts(static_cast<size_t>(concurrency), -1);
    std::vector<std::thread> threads;
    auto t0 = Clock::now();
    for (int c = 0; c < concurrency; ++c) {
      threads.emplace_back([&, c] {
        int fd = -1;
        Sample s = Stream(port, fd, true, Request(model, max_tokens, c));
        if (!s.ok) {
          failed++;
          return;
        }
        tokens += s.tokens;
        ttfts[static_cast<size_t>(c)] = s.ttft_ms;
      });
    }
    for (auto& t : threads) t.join();
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    agg[side] += tokens.load() / secs / rounds;
    errs[side] += failed.load();
    for (double t : ttfts) {
      if (t >= 0) cttft[side].push_back(t);
    }
  }
  std::printf("concurrent: %d streams x %d rounds per side\n", concurrency, rounds);
  std::printf("  aggregate tok/s direct %.1f  proxied %.1f  ratio %.4f  errors direct %d proxied %d\n", agg[0], agg[1],
              agg[1] / agg[0], errs[0], errs[1]);
  std::printf("  TTFT p50 direct %.2f ms proxied %.2f ms; p99 direct %.2f ms proxied %.2f ms\n", Pct(cttft[0], 0.5),
              Pct(cttft[1], 0.5), Pct(cttft[0], 0.99), Pct(cttft[1], 0.99));
  return 0;
}
