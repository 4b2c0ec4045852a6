#include "core/logging.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace orchard {
namespace {

// Captures records through a sink; restores the sink and level afterwards.
class Logging : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_level_ = log_level();
    set_log_sink([this](const LogRecord& r) {
      std::lock_guard lock(mu_);
      records_.push_back(r);
    });
  }
  void TearDown() override {
    set_log_sink({});
    set_log_level(saved_level_);
  }
  std::vector<LogRecord> records() {
    std::lock_guard lock(mu_);
    return records_;
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return records_.size();
  }

  LogLevel saved_level_ = LogLevel::warn;
  std::mutex mu_;
  std::vector<LogRecord> records_;
};

// Returns the line of a record made at a fixed time: 2026-11-26T06:30:00.123Z.
std::string line_of(std::string_view message, std::vector<LogField> fields, LogLevel level = LogLevel::warn) {
  LogRecord r;
  r.time = std::chrono::system_clock::time_point(std::chrono::milliseconds(int64_t{1795674600} * 1000 + 123));
  r.level = level;
  r.component = "manager";
  r.message = message;
  r.fields = std::move(fields);
  return format_log_record(r);
}

TEST_F(Logging, LevelFiltering) {
  set_log_level(LogLevel::info);
  EXPECT_EQ(log_level(), LogLevel::info);
  log(LogLevel::debug, "t", "hidden");
  log(LogLevel::trace, "t", "hidden");
  log(LogLevel::info, "t", "shown-info");
  log(LogLevel::error, "t", "shown-error");
  EXPECT_FALSE(log_enabled(LogLevel::debug));
  EXPECT_TRUE(log_enabled(LogLevel::info));
  set_log_level(LogLevel::off);
  EXPECT_EQ(log_level(), LogLevel::off);
  EXPECT_FALSE(log_enabled(LogLevel::error));
  log(LogLevel::error, "t", "hidden");
  set_log_level(LogLevel::trace);
  log(LogLevel::trace, "t", "shown-trace");
  auto rs = records();
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].message, "shown-info");
  EXPECT_EQ(rs[0].level, LogLevel::info);
  EXPECT_EQ(rs[1].message, "shown-error");
  EXPECT_EQ(rs[2].message, "shown-trace");
}

TEST_F(Logging, SinkReceivesComponentMessageAndFields) {
  set_log_level(LogLevel::warn);
  const auto before = std::chrono::system_clock::now();
  log(LogLevel::warn, "manager", "failover",
      {{"model", "resnet"}, {"from", std::string("cuda")}, {"to", std::string_view("cpu")}, {"count", 3}});
  auto rs = records();
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].component, "manager");
  EXPECT_EQ(rs[0].message, "failover");
  ASSERT_EQ(rs[0].fields.size(), 4u);
  EXPECT_EQ(rs[0].fields[0].key, "model");
  EXPECT_EQ(rs[0].fields[0].value, "resnet");
  EXPECT_EQ(rs[0].fields[3].value, "3");
  EXPECT_GE(rs[0].time, before);
  const std::string line = format_log_record(rs[0]);
  EXPECT_TRUE(std::regex_match(line, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN \[manager\] )"
                                                R"(failover model=resnet from=cuda to=cpu count=3)")))
      << line;
}

TEST(LogFormat, LineLayoutAndTimestamp) {
  EXPECT_EQ(line_of("failover", {{"model", "resnet"}, {"from", "cuda"}, {"to", "cpu"}, {"reason", "no kernel"}}),
            "2026-11-26T06:30:00.123Z WARN [manager] failover model=resnet from=cuda to=cpu reason=\"no kernel\"");
  EXPECT_EQ(line_of("loaded", {}, LogLevel::info), "2026-11-26T06:30:00.123Z INFO [manager] loaded");
  EXPECT_EQ(line_of("x", {}, LogLevel::error).substr(25, 5), "ERROR");
}

TEST(LogFormat, ValuesAreQuotedAndEscapedWhenNeeded) {
  auto fields_of = [](std::vector<LogField> f) {
    std::string line = line_of("m", std::move(f));
    return line.substr(line.find(" m ") + 3);
  };
  EXPECT_EQ(fields_of({{"k", "plain-value_1.5/x:y"}}), "k=plain-value_1.5/x:y");
  EXPECT_EQ(fields_of({{"k", ""}}), "k=\"\"");
  EXPECT_EQ(fields_of({{"k", "a b"}}), "k=\"a b\"");
  EXPECT_EQ(fields_of({{"k", "x=y"}}), "k=\"x=y\"");
  EXPECT_EQ(fields_of({{"k", "say \"hi\""}}), "k=\"say \\\"hi\\\"\"");
  EXPECT_EQ(fields_of({{"k", "back\\slash"}}), "k=\"back\\\\slash\"");
  EXPECT_EQ(fields_of({{"k", "two\nlines\ttab\r"}}), "k=\"two\\nlines\\ttab\\r\"");
  EXPECT_EQ(fields_of({{"k", std::string("nul\0bell\x07", 9)}}), "k=\"nul\\x00bell\\x07\"");
  EXPECT_EQ(fields_of({{"k", "h\xc3\xa9llo"}}), "k=h\xc3\xa9llo");  // UTF-8 passes through
  EXPECT_EQ(fields_of({{"bad key=\"", "v"}}), "bad_key__=v");
  EXPECT_EQ(fields_of({{"", "v"}}), "_=v");
  EXPECT_EQ(fields_of({{"i", -3}, {"u", size_t{18446744073709551615u}}, {"d", 0.25}, {"b", true}, {"f", false}}),
            "i=-3 u=18446744073709551615 d=0.25 b=true f=false");
  // The message is free text, but a record never spans two lines.
  const std::string line = line_of("first\nsecond", {});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("first\\nsecond"), std::string::npos);
}

TEST(LogFormat, ParseLevel) {
  EXPECT_EQ(parse_log_level("trace"), LogLevel::trace);
  EXPECT_EQ(parse_log_level("DEBUG"), LogLevel::debug);
  EXPECT_EQ(parse_log_level("Info"), LogLevel::info);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::warn);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::warn);
  EXPECT_EQ(parse_log_level("error"), LogLevel::error);
  EXPECT_EQ(parse_log_level("off"), LogLevel::off);
  EXPECT_EQ(parse_log_level("verbose"), std::nullopt);
  EXPECT_EQ(parse_log_level(""), std::nullopt);
  EXPECT_EQ(log_level_name(LogLevel::warn), "WARN");
}

TEST_F(Logging, LevelFromEnvironmentIsReadOnce) {
  const char* old = std::getenv("ORCHARD_LOG_LEVEL");
  const std::string saved = old ? old : "";
  std::string bad;
  ::setenv("ORCHARD_LOG_LEVEL", "debug", 1);
  EXPECT_EQ(detail::log_level_from_env(&bad), LogLevel::debug);
  ::setenv("ORCHARD_LOG_LEVEL", "bogus", 1);
  EXPECT_EQ(detail::log_level_from_env(&bad), LogLevel::warn);
  EXPECT_EQ(bad, "bogus");
  ::unsetenv("ORCHARD_LOG_LEVEL");
  EXPECT_EQ(detail::log_level_from_env(nullptr), LogLevel::warn);  // quiet by default

  // Already initialised: a later change of the environment does not change the level.
  set_log_level(LogLevel::error);
  ::setenv("ORCHARD_LOG_LEVEL", "trace", 1);
  EXPECT_EQ(log_level(), LogLevel::error);
  EXPECT_FALSE(log_enabled(LogLevel::trace));
  if (old) {
    ::setenv("ORCHARD_LOG_LEVEL", saved.c_str(), 1);
  } else {
    ::unsetenv("ORCHARD_LOG_LEVEL");
  }
}

TEST_F(Logging, LogOnceLogsAKeyOnlyTheFirstTime) {
  set_log_level(LogLevel::warn);
  EXPECT_TRUE(log_once("test:failover:resnet:cuda", LogLevel::warn, "manager", "failover", {{"model", "resnet"}}));
  EXPECT_FALSE(log_once("test:failover:resnet:cuda", LogLevel::warn, "manager", "failover", {{"model", "resnet"}}));
  EXPECT_FALSE(log_once("test:failover:resnet:cuda", LogLevel::error, "manager", "failover"));
  EXPECT_TRUE(log_once("test:failover:resnet:metal", LogLevel::warn, "manager", "failover"));
  // A record that was filtered out does not use up its key.
  EXPECT_FALSE(log_once("test:quiet-key", LogLevel::debug, "manager", "quiet"));
  set_log_level(LogLevel::debug);
  EXPECT_TRUE(log_once("test:quiet-key", LogLevel::debug, "manager", "quiet"));
  EXPECT_EQ(count(), 3u);
}

TEST_F(Logging, MacrosSkipArgumentsWhenDisabled) {
  int evaluated = 0;
  auto value = [&] {
    ++evaluated;
    return std::string("v");
  };
  set_log_level(LogLevel::warn);
  ORCHARD_LOG_INFO("test", value(), {"k", value()});
  ORCHARD_LOG_DEBUG("test", value());
  ORCHARD_LOG_TRACE("test", value(), {"a", 1}, {"b", value()});
  EXPECT_EQ(evaluated, 0);
  EXPECT_EQ(count(), 0u);
  ORCHARD_LOG_WARN("test", value(), {"k", value()}, {"n", 7});
  ORCHARD_LOG_ERROR("test", "no fields");
  EXPECT_EQ(evaluated, 2);
  auto rs = records();
  ASSERT_EQ(rs.size(), 2u);
  ASSERT_EQ(rs[0].fields.size(), 2u);
  EXPECT_EQ(rs[0].fields[1].value, "7");
  EXPECT_EQ(rs[1].level, LogLevel::error);
  set_log_level(LogLevel::info);
  ORCHARD_LOG_INFO("test", "now on");
  EXPECT_EQ(count(), 3u);
}

TEST_F(Logging, SinkThatLogsDoesNotDeadlock) {
  std::atomic<int> calls{0};
  set_log_sink([&](const LogRecord&) {
    ++calls;
    log(LogLevel::error, "sink", "nested");  // dropped
  });
  log(LogLevel::error, "t", "outer");
  EXPECT_EQ(calls.load(), 1);
}

TEST(LoggingStderr, WritesOneLineToStderrWithoutASink) {
  const LogLevel saved = log_level();
  set_log_sink({});
  set_log_level(LogLevel::info);
  ::testing::internal::CaptureStderr();
  log(LogLevel::info, "test", "to stderr", {{"k", "v w"}});
  log(LogLevel::debug, "test", "hidden");
  const std::string out = ::testing::internal::GetCapturedStderr();
  set_log_level(saved);
  EXPECT_TRUE(std::regex_match(out, std::regex(R"(\S+Z INFO \[test\] to stderr k="v w"\n)"))) << out;
}

// Its own suite name, so that emulated (qemu-user) runs can filter the multi-threaded tests.
class LoggingConcurrency : public Logging {};

TEST_F(LoggingConcurrency, RecordsStayIntactAndOrderedPerThread) {
  set_log_level(LogLevel::info);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  std::atomic<bool> stop{false};
  std::thread toggler([&] {  // level changes race with logging; error records are always on
    while (!stop.load()) {
      set_log_level(LogLevel::info);
      set_log_level(LogLevel::warn);
    }
  });
  std::atomic<int> once_written{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        ORCHARD_LOG_ERROR("thread", "record", {"t", t}, {"i", i});
        ORCHARD_LOG_DEBUG("thread", "never");
        if (log_once("test:concurrent-once", LogLevel::error, "thread", "once")) once_written.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  stop = true;
  toggler.join();
  EXPECT_EQ(once_written.load(), 1);
  auto rs = records();
  ASSERT_EQ(rs.size(), static_cast<size_t>(kThreads * kPerThread + 1));
  std::vector<int> next(kThreads, 0);
  for (const LogRecord& r : rs) {
    if (r.message == "once") continue;
    ASSERT_EQ(r.message, "record");
    ASSERT_EQ(r.fields.size(), 2u);
    const int t = std::stoi(r.fields[0].value);
    ASSERT_TRUE(t >= 0 && t < kThreads);
    EXPECT_EQ(std::stoi(r.fields[1].value), next[t]++);  // per-thread order is kept
  }
}

}  // namespace
}  // namespace orchard
