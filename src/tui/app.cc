// The dashboard's loop: one thread polls the terminal, the event feed and the chat stream;
// actions are short control calls. No per-frame polling of the daemon: the table moves when
// the feed says something changed (the open log pane is re-read once a second while it
// follows, since logs are files the feed does not carry).
#include "tui/app.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>

#include "common/clock.h"
#include "common/url.h"
#include "control/api.h"
#include "control/transport.h"
#include "tui/screen.h"
#include "tui/state.h"
#include "tui/view.h"

namespace corral::tui {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_resized{false};
std::atomic<bool> g_quit{false};
int g_wake_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  if (sig == SIGWINCH) {
    g_resized.store(true);
  } else {
    g_quit.store(true);
  }
  if (g_wake_pipe[1] >= 0) {
    char c = 0;
    (void)!::write(g_wake_pipe[1], &c, 1);
  }
}

// The terminal in raw mode on the alternate screen, restored on every way out.
class Terminal {
 public:
  bool Enter() {
    if (::tcgetattr(0, &saved_) != 0) return false;
    termios raw = saved_;
    raw.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
    raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
    raw.c_cflag |= CS8;
    raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    if (::tcsetattr(0, TCSAFLUSH, &raw) != 0) return false;
    active_ = true;
    Write("\x1b[?1049h\x1b[?25l\x1b[2J");
    return true;
  }
  ~Terminal() { Leave(); }
  void Leave() {
    if (!active_) return;
    Write("\x1b[0m\x1b[?25h\x1b[?1049l");
    ::tcsetattr(0, TCSAFLUSH, &saved_);
    active_ = false;
  }
  static void Write(std::string_view s) {
    while (!s.empty()) {
      ssize_t n = ::write(1, s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      s.remove_prefix(static_cast<size_t>(n));
    }
  }
  static std::pair<int, int> Size() {
    winsize ws{};
    if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) return {ws.ws_col, ws.ws_row};
    return {80, 24};
  }

 private:
  termios saved_{};
  bool active_ = false;
};

enum class Key { kNone, kChar, kUp, kDown, kPgUp, kPgDn, kHome, kEnd, kEnter, kEsc, kBackspace, kCtrlC };
struct KeyPress {
  Key key = Key::kNone;
  char ch = 0;
};

// Splits terminal input into keys. An ESC alone in one read is the Escape key.
std::vector<KeyPress> ParseKeys(const std::string& in) {
  std::vector<KeyPress> out;
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == 0x1b) {
      if (i + 2 < in.size() + 0 && (in[i + 1] == '[' || in[i + 1] == 'O')) {
        char k = in[i + 2];
        size_t used = 2;
        Key key = Key::kNone;
        if (k == 'A') key = Key::kUp;
        if (k == 'B') key = Key::kDown;
        if (k == 'H') key = Key::kHome;
        if (k == 'F') key = Key::kEnd;
        if (k >= '1' && k <= '6' && i + 3 < in.size() && in[i + 3] == '~') {
          key = k == '5'   ? Key::kPgUp
                : k == '6' ? Key::kPgDn
                : k == '1' ? Key::kHome
                : k == '4' ? Key::kEnd
                           : Key::kNone;
          used = 3;
        }
        out.push_back({key, 0});
        i += used;
        continue;
      }
      out.push_back({Key::kEsc, 0});
      continue;
    }
    if (c == '\r' || c == '\n') {
      out.push_back({Key::kEnter, 0});
    } else if (c == 0x7f || c == 0x08) {
      out.push_back({Key::kBackspace, 0});
    } else if (c == 0x03) {
      out.push_back({Key::kCtrlC, 0});
    } else if (c >= 0x20) {
      out.push_back({Key::kChar, static_cast<char>(c)});
    }
  }
  return out;
}

// One streamed chat completion through the proxy, on a non-blocking socket the loop polls.
// Reads the SSE answer (de-chunked), appends each delta's content.
class ChatStream {
 public:
  ~ChatStream() { Close(); }
  Status Start(const std::string& base_url, const std::string& model, const json& messages) {
    // base_url: "http://HOST:PORT" (the daemon's own loopback proxy address)
    auto hp = ParseHostPort(base_url, true);
    if (!hp.ok()) return InvalidArgument("no proxy address: " + hp.status().message());
    if (hp->host == "0.0.0.0") hp->host = "127.0.0.1";  // a wildcard listener answers on loopback
    if (hp->host == "::") hp->host = "::1";
    sockaddr_storage a{};
    const socklen_t len = ToSockaddr(*hp, &a);
    fd_ = ::socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0) {
      Close();
      return Unavailable("cannot connect to the proxy at " + base_url);
    }
    json body = {{"model", model}, {"messages", messages}, {"stream", true}, {"max_tokens", 256}};
    std::string b = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string req =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(b.size()) + "\r\n\r\n" + b;
    if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
      Close();
      return Unavailable("the proxy closed the connection");
    }
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    started_ = Clock::now();
    return Status::Ok();
  }
  int fd() const { return fd_; }
  // Reads what is there; returns false when the answer is over (done() or error()).
  bool Read() {
    char buf[8192];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n <= 0) {
        Close();
        if (!done_ && error_.empty())
          error_ = status_ >= 400 ? "HTTP " + std::to_string(status_) + ": " + raw_body_ : "";
        done_ = true;
        return false;
      }
      if (raw_.size() + static_cast<size_t>(n) > kMaxAnswerBytes) {
        error_ = "answer too long";
        Close();
        return false;
      }
      raw_.append(buf, static_cast<size_t>(n));
      Parse();
      if (done_) {
        Close();
        return false;
      }
    }
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& text() const { return text_; }
  const std::string& error() const { return error_; }
  std::string Stats() const {
    char buf[96];
    if (first_token_ms_ < 0) return "";
    std::snprintf(buf, sizeof buf, "TTFT %.0f ms, %.1f tok/s", first_token_ms_, tok_s_);
    return buf;
  }

 private:
  static constexpr size_t kMaxAnswerBytes = 4U << 20;
  void Parse() {
    if (status_ == 0) {
      size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string head = raw_.substr(0, end);
      status_ = std::atoi(head.substr(head.find(' ') + 1, 3).c_str());
      std::string lower = head;
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      chunked_ = lower.find("transfer-encoding: chunked") != std::string::npos;
      raw_.erase(0, end + 4);
    }
    // de-chunk into body_
    if (chunked_) {
      for (;;) {
        if (chunk_left_ == 0) {
          size_t eol = raw_.find("\r\n");
          if (eol == std::string::npos) return;
          std::string size_line = raw_.substr(0, eol);
          raw_.erase(0, eol + 2);
          if (size_line.empty()) continue;  // the CRLF after a chunk's data
          chunk_left_ = std::strtoul(size_line.c_str(), nullptr, 16);
          if (chunk_left_ == 0) {
            done_ = true;
            break;
          }
        }
        size_t take = std::min(chunk_left_, raw_.size());
        body_.append(raw_, 0, take);
        raw_.erase(0, take);
        chunk_left_ -= take;
        if (chunk_left_ > 0) break;
      }
    } else {
      body_ += raw_;
      raw_.clear();
    }
    if (status_ >= 400) {
      raw_body_ = body_.substr(0, 300);
      return;
    }
    for (size_t nl; (nl = body_.find('\n')) != std::string::npos;) {
      std::string line = body_.substr(0, nl);
      body_.erase(0, nl + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.starts_with("data: ")) continue;
      std::string data = line.substr(6);
      if (data == "[DONE]") {
        done_ = true;
        return;
      }
      json j = json::parse(data, nullptr, false);
      if (!j.is_object()) continue;
      try {
        if (j.contains("choices") && j["choices"].is_array() && !j["choices"].empty()) {
          const json& d = j["choices"][0].value("delta", json::object());
          if (d.contains("content") && d["content"].is_string()) {
            if (first_token_ms_ < 0) {
              first_token_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - started_).count();
            }
            text_ += d["content"].get<std::string>();
          }
        }
        if (j.contains("timings") && j["timings"].is_object()) tok_s_ = j["timings"].value("predicted_per_second", 0.0);
      } catch (const json::exception&) {
      }
    }
  }
  int fd_ = -1;
  std::string raw_, body_, text_, error_, raw_body_;
  int status_ = 0;
  bool chunked_ = false, done_ = false;
  size_t chunk_left_ = 0;
  Clock::time_point started_;
  double first_token_ms_ = -1, tok_s_ = 0;
};

// `corral bench` as a child process in its own process group, its stdout (the --json
// summary) and stderr read through non-blocking pipes the loop polls. Cancel and the
// destructor kill the whole group and reap it: no orphan outlives the dashboard.
class BenchChild {
 public:
  ~BenchChild() { Kill(); }
  Status Start(const std::vector<std::string>& argv) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return Unavailable("pipe");
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      return Unavailable("pipe");
    }
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGWINCH}) ::signal(sig, SIG_DFL);
      ::execv(args[0], args.data());
      const char msg[] = "cannot run corral bench\n";
      (void)!::write(2, msg, sizeof msg - 1);
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    if (pid_ < 0) {
      ::close(out[0]);
      ::close(err[0]);
      return Unavailable(std::string("fork: ") + std::strerror(errno));
    }
    ::setpgid(pid_, pid_);  // both sides: no race with a kill before the child ran
    out_fd_ = out[0];
    err_fd_ = err[0];
    ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
    ::fcntl(err_fd_, F_SETFL, ::fcntl(err_fd_, F_GETFL) | O_NONBLOCK);
    started_ = Clock::now();
    return Status::Ok();
  }
  int out_fd() const { return out_fd_; }
  int err_fd() const { return err_fd_; }
  // Drains both pipes; returns true once both are closed and the child is reaped.
  bool Poll() {
    Drain(out_fd_, out_, kMaxOut, false);
    Drain(err_fd_, err_, kMaxErr, true);
    if (out_fd_ >= 0 || err_fd_ >= 0) return false;
    int st = 0;  // both pipes closed: it has exited, or is about to (the loop polls again)
    if (!reaped_ && pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) Reaped(st);
    return reaped_;
  }
  // Kills the group (TERM, then KILL after a second) and reaps the child.
  void Kill() {
    if (pid_ > 0 && !reaped_) {
      ::kill(-pid_, SIGTERM);
      int st = 0;
      const auto deadline = Clock::now() + std::chrono::seconds(1);
      pid_t r = 0;
      while ((r = ::waitpid(pid_, &st, WNOHANG)) == 0 && Clock::now() < deadline) ::usleep(20'000);
      if (r == 0) {
        ::kill(-pid_, SIGKILL);
        r = ::waitpid(pid_, &st, 0);
      }
      if (r == pid_) Reaped(st);
      ::kill(-pid_, SIGKILL);  // anything of its group left behind
      exit_code_ = -1;
    }
    for (int* fd : {&out_fd_, &err_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
  }
  int exit_code() const { return exit_code_; }
  const std::string& out() const { return out_; }
  std::string err_tail() const {
    std::string t = err_;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    size_t cut = t.size() > 400 ? t.size() - 400 : 0;
    // the last few lines only
    size_t nl = t.rfind('\n');
    for (int i = 0; i < 2 && nl != std::string::npos && nl > cut; ++i) nl = t.rfind('\n', nl - 1);
    if (nl != std::string::npos && nl >= cut) cut = nl + 1;
    return t.substr(cut);
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - started_).count(); }

 private:
  static constexpr size_t kMaxOut = 8U << 20, kMaxErr = 64U << 10;
  static void Drain(int& fd, std::string& into, size_t max, bool keep_tail) {
    if (fd < 0) return;
    char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        ::close(fd);
        fd = -1;
        return;
      }
      into.append(buf, static_cast<size_t>(n));
      if (into.size() > max) {
        if (keep_tail) {
          into.erase(0, into.size() - max);
        } else {
          into.resize(max);
        }
      }
    }
  }
  void Reaped(int st) {
    reaped_ = true;
    exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  }
  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  bool reaped_ = false;
  int exit_code_ = 0;
  std::string out_, err_;
  Clock::time_point started_;
};

// Where quick benches write their reports: $XDG_STATE_HOME/corral/bench (~/.local/state/...).
std::string BenchOutDir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg != nullptr && *xdg == '/') return std::string(xdg) + "/corral/bench";
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home == '/') return std::string(home) + "/.local/state/corral/bench";
  return "/tmp/corral-bench";
}

class App {
 public:
  explicit App(const TopOptions& o) : opts_(o), control_(o.socket_path) {
    const char* lang = std::getenv("LC_ALL");
    if (lang == nullptr || *lang == '\0') lang = std::getenv("LC_CTYPE");
    if (lang == nullptr || *lang == '\0') lang = std::getenv("LANG");
    std::string l = lang != nullptr ? lang : "";
    for (auto& c : l) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ui_.caps.unicode = !o.ascii && (l.find("utf-8") != std::string::npos || l.find("utf8") != std::string::npos);
    const char* nc = std::getenv("NO_COLOR");
    ui_.caps.color = !o.no_color && (nc == nullptr || *nc == '\0');
  }

  int Once() {
    const auto deadline = Clock::now() + std::chrono::milliseconds(opts_.once_wait_ms);
    bool gauges = false;
    while (!gauges && Clock::now() < deadline) {
      if (!feed_ && !Connect()) {
        ::usleep(100'000);
        continue;
      }
      pollfd p{feed_->fd(), POLLIN, 0};
      ::poll(&p, 1, 100);
      std::vector<control::FeedEvent> evs;
      Status s = feed_->Read(evs);
      for (const auto& e : evs) {
        state_.Apply(e, UnixNowMs());
        gauges = gauges || e.type == control::FeedEvent::Type::kGauges;
      }
      if (!s.ok()) {
        state_.SetDisconnected(s.message());
        feed_.reset();
      }
    }
    ui_.now_ms = UnixNowMs();
    Screen scr(opts_.once_width, opts_.once_height);
    Draw(state_, ui_, scr);
    std::cout << scr.Text();
    return state_.connected() ? 0 : 65;
  }

  int Run() {
    if (::pipe2(g_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return 71;
    struct sigaction sa {};
    sa.sa_handler = OnSignal;
    ::sigaction(SIGWINCH, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    if (!term_.Enter()) {
      std::cerr << "corral top: stdin is not a terminal\n";
      return 64;
    }
    Clock::time_point next_connect{}, next_log{}, last_tick = Clock::now();
    auto reconnect_delay = std::chrono::milliseconds(250);
    dirty_ = true;
    while (!g_quit.load() && !quit_) {
      const auto now = Clock::now();
      if (!feed_ && now >= next_connect) {
        if (Connect()) {
          reconnect_delay = std::chrono::milliseconds(250);
        } else {
          next_connect = now + reconnect_delay;
          reconnect_delay = std::min(reconnect_delay * 2, std::chrono::milliseconds(2000));
        }
        dirty_ = true;
      }
      if (ui_.pane == Pane::kLogs && ui_.log_follow && now >= next_log) {
        LoadLog();
        next_log = now + std::chrono::seconds(1);
      }
      if (now - last_tick >= std::chrono::seconds(1)) {  // elapsed times and TTLs move
        last_tick = now;
        dirty_ = true;
      }
      if (g_resized.exchange(false)) dirty_ = true;
      if (dirty_) Render();
      std::vector<pollfd> fds = {{0, POLLIN, 0}, {g_wake_pipe[0], POLLIN, 0}};
      if (feed_) fds.push_back({feed_->fd(), POLLIN, 0});
      if (chat_) fds.push_back({chat_->fd(), POLLIN, 0});
      if (bench_ && bench_->out_fd() >= 0) fds.push_back({bench_->out_fd(), POLLIN, 0});
      if (bench_ && bench_->err_fd() >= 0) fds.push_back({bench_->err_fd(), POLLIN, 0});
      ::poll(fds.data(), fds.size(), 250);
      char drain[64];
      while (::read(g_wake_pipe[0], drain, sizeof drain) > 0) {
      }
      if (fds[0].revents & POLLIN) ReadKeys();
      if (feed_) ReadFeed();
      if (chat_ && chat_->fd() >= 0) ReadChat();
      if (bench_) ReadBench();
    }
    bench_.reset();  // kills and reaps a bench still running
    term_.Leave();
    return 0;
  }

 private:
  bool Connect() {
    auto f = control::FeedConnection::Open(opts_.socket_path, std::chrono::seconds(2));
    if (!f.ok()) {
      state_.SetDisconnected(f.status().code() == StatusCode::kUnavailable ? "no daemon" : f.status().message());
      return false;
    }
    feed_ = std::move(*f);
    return true;
  }

  void ReadFeed() {
    std::vector<control::FeedEvent> evs;
    Status s = feed_->Read(evs);
    for (const auto& e : evs) state_.Apply(e, UnixNowMs());
    if (!evs.empty()) dirty_ = true;
    if (!s.ok()) {
      state_.SetDisconnected(s.code() == StatusCode::kUnavailable ? "the daemon went away" : s.message());
      feed_.reset();
      dirty_ = true;
    }
  }

  void Render() {
    dirty_ = false;
    auto [w, h] = Terminal::Size();
    ui_.now_ms = UnixNowMs();
    rows_ = state_.Rows(ui_.now_ms, ui_.sort, ui_.filter);
    if (!rows_.empty()) ui_.selected = std::clamp(ui_.selected, 0, static_cast<int>(rows_.size()) - 1);
    Screen scr(w, h);
    Draw(state_, ui_, scr);
    std::string out = scr.Ansi(ui_.caps);
    if (w != last_w_ || h != last_h_) out = "\x1b[2J" + out;
    last_w_ = w;
    last_h_ = h;
    Terminal::Write(out);
  }

  const ModelRow* Selected() const {
    if (rows_.empty()) return nullptr;
    return &rows_[static_cast<size_t>(std::clamp(ui_.selected, 0, static_cast<int>(rows_.size()) - 1))];
  }

  void Say(const std::string& msg, bool error = false) {
    ui_.message = msg;
    ui_.message_error = error;
  }

  // One control call; the answer's error (or the transport's) goes to the status line.
  std::optional<json> Call(const std::string& method, const std::string& target, const json* body,
                           const std::string& what) {
    auto r = control_.Call(method, target, body, std::chrono::seconds(30));
    if (!r.ok()) {
      Say(what + ": " + r.status().message(), true);
      return std::nullopt;
    }
    if (r->error) {
      Say(what + ": " + r->error->message, true);
      return std::nullopt;
    }
    return r->body;
  }

  void LoadLog() {
    auto body = Call("GET", "/v1/logs?name=" + control::UrlEncode(ui_.log_name) + "&lines=2000", nullptr, "logs");
    if (!body) return;
    std::string text = body->value("text", std::string());
    ui_.log_lines.clear();
    size_t start = 0;
    for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
      ui_.log_lines.push_back(text.substr(start, nl - start));
    }
    if (start < text.size()) ui_.log_lines.push_back(text.substr(start));
    dirty_ = true;
  }

  void Act(char what) {
    const ModelRow* r = Selected();
    if (r == nullptr) return;
    const std::string name = r->name;
    switch (what) {
      case 's': {
        if (r->running && r->state != "failed") return Say(name + " is already " + r->state);
        json body = {{"model", r->model}};
        if (auto b = Call("POST", "/v1/models/start", &body, "start " + r->model)) {
          Say("starting " + b->value("model", json::object()).value("name", r->model));
        }
        return;
      }
      case 'x':
        if (auto b = Call("POST", "/v1/models/" + control::UrlEncode(name) + "/stop", nullptr, "stop " + name)) {
          Say("stopped " + name);
        }
        return;
      case 'u':
        if (auto b = Call("POST", "/v1/models/" + control::UrlEncode(name) + "/unload", nullptr, "unload " + name)) {
          Say("unloading " + name + " once its requests are done");
        }
        return;
      case 'b': return StartBench(*r);
      case 'p': {
        const char* verb = r->pinned ? "unpin" : "pin";
        if (auto b = Call("POST", "/v1/models/" + control::UrlEncode(name) + "/" + verb, nullptr,
                          std::string(verb) + " " + name)) {
          Say(std::string(r->pinned ? "unpinned " : "pinned ") + name);
        }
        return;
      }
    }
  }

  static constexpr int kBenchRuns = 10, kBenchWarmup = 1;

  void StartBench(const ModelRow& r) {
    if (bench_) return Say("a bench is already running", true);
    if (!r.running || r.state != "ready") return Say(r.name + " is not ready: start it first (s)", true);
    std::string direct = r.detail.value("url", std::string());
    const int port = r.detail.value("port", 0);
    if (direct.empty() && port > 0) direct = "http://127.0.0.1:" + std::to_string(port);
    if (direct.empty()) return Say(r.name + ": the daemon reported no port for it", true);
    if (state_.proxy_base_url().empty()) return Say("bench: no proxy address yet", true);
    std::error_code ec;
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return Say("bench: cannot find the corral binary", true);
    self[n] = '\0';
    const std::string out_dir = BenchOutDir();
    std::filesystem::create_directories(out_dir, ec);
    // Quick: one workload, few runs, and none of the slow phases (nginx, idle connections,
    // load, cold starts: a cold start would stop the model).
    std::vector<std::string> argv = {self,
                                     "bench",
                                     "--suite",
                                     "C",
                                     "--direct-url",
                                     direct,
                                     "--proxy-url",
                                     state_.proxy_base_url(),
                                     "--model",
                                     r.name,
                                     "--workload",
                                     "chat_turn",
                                     "--runs",
                                     std::to_string(kBenchRuns),
                                     "--warmup",
                                     std::to_string(kBenchWarmup),
                                     "--no-nginx",
                                     "--idle-connections",
                                     "0",
                                     "--load-streams",
                                     "0",
                                     "--cold-starts",
                                     "0",
                                     "--allow-debug",
                                     "--json",
                                     "--out",
                                     out_dir};
    bench_ = std::make_unique<BenchChild>();
    if (Status s = bench_->Start(argv); !s.ok()) {
      bench_.reset();
      return Say("bench: " + s.message(), true);
    }
    ui_.bench_running = r.name;
    ui_.bench_started_ms = UnixNowMs();
    ui_.message.clear();
  }

  void ReadBench() {
    if (!bench_->Poll()) return;
    FinishBench(bench_->exit_code());
  }

  void CancelBench() {
    bench_->Kill();
    FinishBench(-1);
    Say("bench cancelled");
  }

  void FinishBench(int exit_code) {
    ui_.bench = ParseBenchOutput(ui_.bench_running, bench_->out(), exit_code, bench_->err_tail());
    ui_.bench.runs = kBenchRuns;
    ui_.bench.seconds = bench_->seconds();
    bench_.reset();
    ui_.bench_running.clear();
    if (exit_code >= 0) ui_.pane = Pane::kBench;
    dirty_ = true;
  }

  void SendChat() {
    if (ui_.chat_input.empty() || chat_) return;
    ui_.chat.push_back({"you", ui_.chat_input});
    ui_.chat_input.clear();
    json messages = json::array();
    for (const auto& t : ui_.chat) {
      if (t.role == "error") continue;
      messages.push_back({{"role", t.role == "you" ? "user" : "assistant"}, {"content", t.text}});
    }
    chat_ = std::make_unique<ChatStream>();
    Status s = chat_->Start(state_.proxy_base_url(), ui_.chat_model, messages);
    if (!s.ok()) {
      ui_.chat.push_back({"error", s.message()});
      chat_.reset();
      return;
    }
    ui_.chat.push_back({ui_.chat_model, ""});
    ui_.chat_streaming = true;
  }

  void ReadChat() {
    bool more = chat_->Read();
    if (!ui_.chat.empty()) ui_.chat.back().text = chat_->text();
    dirty_ = true;
    if (more) return;
    if (!chat_->error().empty()) ui_.chat.push_back({"error", chat_->error()});
    ui_.chat_stats = chat_->Stats();
    ui_.chat_streaming = false;
    chat_.reset();
  }

  void ReadKeys() {
    char buf[256];
    ssize_t n = ::read(0, buf, sizeof buf);
    if (n <= 0) return;
    for (const KeyPress& k : ParseKeys(std::string(buf, static_cast<size_t>(n)))) OnKey(k);
    dirty_ = true;
  }

  static bool EditLine(std::string& line, const KeyPress& k) {
    if (k.key == Key::kBackspace) {
      if (!line.empty()) line.pop_back();
      return true;
    }
    if (k.key == Key::kChar && line.size() < 400) {
      line += k.ch;
      return true;
    }
    return false;
  }

  void OnKey(const KeyPress& k) {
    if (k.key == Key::kCtrlC) {
      quit_ = true;
      return;
    }
    if (!ui_.confirm.empty()) {  // a y/n question
      const char act = pending_;
      ui_.confirm.clear();
      pending_ = 0;
      if (k.key == Key::kChar && (k.ch == 'y' || k.ch == 'Y')) {
        Act(act);
      } else {
        Say("cancelled");
      }
      return;
    }
    if (bench_ && k.key == Key::kEsc && ui_.pane != Pane::kChat && !ui_.search_editing) {
      CancelBench();
      return;
    }
    if (ui_.filter_editing) {
      if (k.key == Key::kEnter) ui_.filter_editing = false;
      if (k.key == Key::kEsc) {
        ui_.filter_editing = false;
        ui_.filter.clear();
      }
      EditLine(ui_.filter, k);
      ui_.selected = 0;
      return;
    }
    switch (ui_.pane) {
      case Pane::kChat: {
        if (k.key == Key::kEsc) {
          if (chat_) {
            chat_.reset();
            ui_.chat_streaming = false;
            ui_.chat.push_back({"error", "stopped"});
          } else {
            ui_.pane = Pane::kTable;
          }
        } else if (k.key == Key::kEnter) {
          SendChat();
        } else if (!chat_) {
          EditLine(ui_.chat_input, k);
        }
        return;
      }
      case Pane::kLogs: {
        if (ui_.search_editing) {
          if (k.key == Key::kEnter || k.key == Key::kEsc) {
            ui_.search_editing = false;
            if (k.key == Key::kEsc) ui_.log_search.clear();
            if (k.key == Key::kEnter) NextMatch();
          }
          EditLine(ui_.log_search, k);
          return;
        }
        const int page = std::max(TableRows(Terminal::Size().second) - 1, 1);
        const int max_scroll = std::max(static_cast<int>(ui_.log_lines.size()) - page, 0);
        auto scroll = [&](int d) {
          ui_.log_scroll = std::clamp(ui_.log_scroll + d, 0, max_scroll);
          ui_.log_follow = ui_.log_scroll == 0 && ui_.log_follow;
          if (d > 0) ui_.log_follow = false;
        };
        if (k.key == Key::kEsc || (k.key == Key::kChar && k.ch == 'q')) ui_.pane = Pane::kTable;
        if (k.key == Key::kUp || (k.key == Key::kChar && k.ch == 'k')) scroll(1);
        if (k.key == Key::kDown || (k.key == Key::kChar && k.ch == 'j')) scroll(-1);
        if (k.key == Key::kPgUp) scroll(page);
        if (k.key == Key::kPgDn) scroll(-page);
        if (k.key == Key::kHome) scroll(max_scroll);
        if (k.key == Key::kEnd) ui_.log_scroll = 0;
        if (k.key == Key::kChar && k.ch == 'f') {
          ui_.log_follow = !ui_.log_follow;
          if (ui_.log_follow) ui_.log_scroll = 0;
        }
        if (k.key == Key::kChar && k.ch == '/') {
          ui_.search_editing = true;
          ui_.log_search.clear();
        }
        if (k.key == Key::kChar && k.ch == 'n') NextMatch();
        return;
      }
      case Pane::kDetails:
      case Pane::kHelp:
      case Pane::kBench:
        if (k.key == Key::kEsc || k.key == Key::kEnter || (k.key == Key::kChar && (k.ch == 'q' || k.ch == '?'))) {
          ui_.pane = Pane::kTable;
          return;
        }
        break;  // table keys still work under details (s, x, p, ...)
      case Pane::kTable: break;
    }
    const int n = static_cast<int>(rows_.size());
    const int page = std::max(TableRows(Terminal::Size().second) - 1, 1);
    auto move = [&](int d) { ui_.selected = std::clamp(ui_.selected + d, 0, std::max(n - 1, 0)); };
    if (k.key == Key::kUp) move(-1);
    if (k.key == Key::kDown) move(1);
    if (k.key == Key::kPgUp) move(-page);
    if (k.key == Key::kPgDn) move(page);
    if (k.key == Key::kHome) ui_.selected = 0;
    if (k.key == Key::kEnd) ui_.selected = std::max(n - 1, 0);
    if (k.key == Key::kEsc) {
      ui_.pane = Pane::kTable;
      ui_.message.clear();
    }
    if (k.key == Key::kEnter && Selected() != nullptr) ui_.pane = Pane::kDetails;
    if (k.key != Key::kChar) return;
    const ModelRow* r = Selected();
    switch (k.ch) {
      case 'q': quit_ = true; return;
      case 'j': move(1); return;
      case 'k': move(-1); return;
      case '?': ui_.pane = Pane::kHelp; return;
      case '/':
        ui_.filter_editing = true;
        ui_.filter.clear();
        return;
      case 'o': ui_.sort = static_cast<SortKey>((static_cast<int>(ui_.sort) + 1) % 4); return;
      case 's': Act('s'); return;
      case 'p':
        if (r != nullptr && r->running) Act('p');
        return;
      case 'x':
      case 'u':
        if (r == nullptr || !r->running) return Say("not running");
        pending_ = k.ch;
        ui_.confirm = std::string(k.ch == 'x' ? "stop " : "unload ") + r->name +
                      (r->in_flight > 0 && k.ch == 'x' ? " (cuts " + std::to_string(r->in_flight) + " streams)" : "") +
                      "?";
        return;
      case 'l':
        if (r == nullptr) return;
        if (!r->running) return Say("no log: " + r->name + " is not running", true);
        ui_.pane = Pane::kLogs;
        ui_.log_name = r->name;
        ui_.log_follow = true;
        ui_.log_scroll = 0;
        ui_.log_search.clear();
        LoadLog();
        return;
      case 'b':
        if (r == nullptr) return;
        if (bench_) return Say("a bench is already running (esc cancels it)", true);
        if (!r->running || r->state != "ready") return Say(r->name + " is not ready: start it first (s)", true);
        pending_ = 'b';
        ui_.confirm =
            "quick suite C on " + r->name + " (" + std::to_string((kBenchRuns + kBenchWarmup) * 2) + " requests)?";
        return;
      case 'c':
        if (r == nullptr) return;
        if (ui_.chat_model != r->name) ui_.chat.clear();
        ui_.chat_model = r->name;  // a catalog model starts on demand through the proxy
        ui_.pane = Pane::kChat;
        return;
      default: return;
    }
  }

  void NextMatch() {
    if (ui_.log_search.empty()) return;
    const int n = static_cast<int>(ui_.log_lines.size());
    const int current_last = n - ui_.log_scroll;  // search upwards from the bottom of the view
    for (int i = current_last - 2; i >= 0; --i) {
      if (ui_.log_lines[static_cast<size_t>(i)].find(ui_.log_search) != std::string::npos) {
        ui_.log_scroll = std::max(n - i - 1, 0);
        ui_.log_follow = false;
        return;
      }
    }
    Say("no earlier match for '" + ui_.log_search + "'");
  }

  TopOptions opts_;
  control::ControlClient control_;
  std::unique_ptr<control::FeedConnection> feed_;
  std::unique_ptr<ChatStream> chat_;
  std::unique_ptr<BenchChild> bench_;
  DashState state_;
  UiState ui_;
  std::vector<ModelRow> rows_;
  Terminal term_;
  bool dirty_ = true, quit_ = false;
  char pending_ = 0;
  int last_w_ = 0, last_h_ = 0;
};

}  // namespace

int RunTop(const TopOptions& options) {
  App app(options);
  if (options.once_width > 0 && options.once_height > 0) return app.Once();
  return app.Run();
}

}  // namespace corral::tui
