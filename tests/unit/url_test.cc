// common/url.h: the one HOST:PORT parser and the one percent-decoder.
#include "common/url.h"

#include <gtest/gtest.h>
#include <netinet/in.h>

namespace corral {
namespace {

TEST(HostPortTest, AcceptsEverySpellingTheModulesUsed) {
  struct Case {
    const char* text;
    const char* host;
    uint16_t port;
    bool v6;
  };
  for (const Case& c : {Case{"127.0.0.1:11450", "127.0.0.1", 11450, false},
                        Case{"localhost:8080", "127.0.0.1", 8080, false}, Case{"[::1]:80", "::1", 80, true},
                        Case{"::1:80", "::1", 80, true}, Case{"http://127.0.0.1:9/", "127.0.0.1", 9, false},
                        Case{"https://[fe80::1]:443", "fe80::1", 443, true}, Case{"0.0.0.0:0", "0.0.0.0", 0, false}}) {
    auto hp = ParseHostPort(c.text);
    ASSERT_TRUE(hp.ok()) << c.text << ": " << hp.status().message();
    EXPECT_EQ(hp->host, c.host) << c.text;
    EXPECT_EQ(hp->port, c.port) << c.text;
    EXPECT_EQ(hp->v6, c.v6) << c.text;
  }
  EXPECT_EQ(ParseHostPort("[::1]:80")->ToString(), "[::1]:80");
  EXPECT_EQ(ParseHostPort("localhost:1")->ToString(), "127.0.0.1:1");
}

TEST(HostPortTest, RefusesWithTheTextInTheMessage) {
  for (const char* bad : {"", ":80", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:123456", "127.0.0.1:+80",
                          "127.0.0.1:8 0", "example.com:80", "[::1:80", "1.2.3.4:80x", "[::1]x:80", "[]:80", "[::1]"}) {
    auto hp = ParseHostPort(bad);
    ASSERT_FALSE(hp.ok()) << bad;
    EXPECT_NE(hp.status().message().find("HOST:PORT"), std::string::npos) << hp.status().message();
  }
  EXPECT_FALSE(ParseHostPort("127.0.0.1:0", true).ok());
  EXPECT_LT(ParseHostPort(std::string(5000, 'a') + ":1").status().message().size(), size_t{400});
}

// The authority splitter under ParseHostPort and the bench's URLs: names are the caller's
// business, the port is optional, brackets and ranges are checked here.
TEST(SplitAuthorityTest, SplitsEveryForm) {
  struct Case {
    const char* text;
    const char* host;
    int port;  // -1: none
    bool bracketed;
  };
  for (const Case& c :
       {Case{"example.lan", "example.lan", -1, false}, Case{"example.lan:8080", "example.lan", 8080, false},
        Case{"[::1]", "::1", -1, true}, Case{"[::1]:0", "::1", 0, true}, Case{"::1:65535", "::1", 65535, false},
        Case{"h:00080", "h", 80, false}}) {
    auto a = SplitAuthority(c.text);
    ASSERT_TRUE(a.ok()) << c.text << ": " << a.status().message();
    EXPECT_EQ(a->host, c.host) << c.text;
    EXPECT_EQ(a->port ? static_cast<int>(*a->port) : -1, c.port) << c.text;
    EXPECT_EQ(a->bracketed, c.bracketed) << c.text;
  }
  for (const char* bad : {"", ":80", "[]:80", "[", "[::1", "[::1]x", "[::1]:", "[::1]:80:", "h:", "h:65536", "h:123456",
                          "h:-1", "h:+1", "h:8 0", "h:0x1"}) {
    EXPECT_FALSE(SplitAuthority(bad).ok()) << bad;
  }
  EXPECT_EQ(BracketHost("::1"), "[::1]");
  EXPECT_EQ(BracketHost("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(BracketHost("example.lan"), "example.lan");
}

TEST(HostPortTest, SockaddrMatchesTheFamily) {
  sockaddr_storage ss{};
  EXPECT_EQ(ToSockaddr(*ParseHostPort("127.0.0.1:5"), &ss), sizeof(sockaddr_in));
  EXPECT_EQ(ss.ss_family, AF_INET);
  EXPECT_EQ(ToSockaddr(*ParseHostPort("[::1]:5"), &ss), sizeof(sockaddr_in6));
  EXPECT_EQ(ss.ss_family, AF_INET6);
}

TEST(PercentDecodeTest, LenientKeepsBadEscapesStrictRefusesThem) {
  EXPECT_EQ(PercentDecode("a%2Fb%2fc", false), "a/b/c");
  EXPECT_EQ(PercentDecode("a+b", false), "a+b");
  EXPECT_EQ(PercentDecode("a+b", true), "a b");
  EXPECT_EQ(PercentDecode("100%", false), "100%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("%zz%41", false), "%zzA");
  EXPECT_EQ(PercentDecode("%00", false), std::string(1, '\0'));
  EXPECT_EQ(PercentDecodeStrict("x%41", false), "xA");
  EXPECT_FALSE(PercentDecodeStrict("x%4", false));
  EXPECT_FALSE(PercentDecodeStrict("x%g1", true));
}

}  // namespace
}  // namespace corral
