#include "telemetry/trace.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace orchard::telemetry {
namespace {

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::path(::testing::TempDir()) / ("orchard_" + std::to_string(::getpid()) + "_" + name);
}

std::string read_file(const std::filesystem::path& p) {
  std::stringstream ss;
  ss << std::ifstream(p, std::ios::binary).rdbuf();
  return ss.str();
}

// Parses `json_path` with Python's json module and returns one line per event:
// ph|name|ts|dur|pid|tid|args (name and args re-encoded by json.dumps, ASCII only, keys sorted).
// Fails the test when the file is not valid JSON or lacks the trace object's fields.
std::string events_via_python(const std::filesystem::path& json_path) {
  const auto script = temp_path("check_trace.py"), out = temp_path("events.txt"), log = temp_path("python.log");
  std::ofstream(script) << R"(import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    d = json.load(f)
assert d["displayTimeUnit"] == "ms", d.get("displayTimeUnit")
with open(sys.argv[2], "w") as out:
    for e in d["traceEvents"]:
        out.write("|".join([e["ph"], json.dumps(e["name"]), str(e.get("ts", "")), str(e.get("dur", "")),
                            str(e["pid"]), str(e.get("tid", "")), json.dumps(e.get("args", {}), sort_keys=True)]) + "\n")
)";
  const std::string cmd = "/usr/bin/python3 '" + script.string() + "' '" + json_path.string() + "' '" + out.string() +
                          "' > '" + log.string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << "python3 could not parse the trace (python3 is installed by scripts/setup.sh):\n"
                   << read_file(log) << "\ntrace:\n" << read_file(json_path);
  std::string events = read_file(out);
  std::filesystem::remove(script);
  std::filesystem::remove(out);
  std::filesystem::remove(log);
  return events;
}

std::vector<NodeProfile> sample_profile() {
  return {
      {"conv1", "Conv", "cpu", {Shape{1, 3, 224, 224}, Shape{64, 3, 7, 7}}, 1'000, 250'500},
      {"relu1", "Relu", "cpu", {Shape{1, 64, 112, 112}}, 252'000, 9'999},
      {"", "Softmax", "coreml", {Shape{1, 1000}}, 262'000, 3'000},
  };
}

TEST(Trace, WritesMicrosecondsAndEscapesStrings) {
  TraceWriter w;
  w.add({std::string("q\"b\\s\nn\tt\x01 caf\xc3\xa9 bad\xff"), "cat", 1'234'567, 5'000, 7, 9,
         {{"key \"k\"", "v\\1"}}});
  w.add({"neg", "c", -1'500, -3, 1, 1, {}});
  EXPECT_EQ(w.size(), 2u);
  EXPECT_EQ(w.json(),
            "{\"traceEvents\":[\n"
            "{\"name\":\"q\\\"b\\\\s\\nn\\tt\\u0001 caf\xc3\xa9 bad\xef\xbf\xbd\",\"cat\":\"cat\",\"ph\":\"X\","
            "\"ts\":1234.567,\"dur\":5,\"pid\":7,\"tid\":9,\"args\":{\"key \\\"k\\\"\":\"v\\\\1\"}},\n"
            "{\"name\":\"neg\",\"cat\":\"c\",\"ph\":\"X\",\"ts\":-1.500,\"dur\":0,\"pid\":1,\"tid\":1,\"args\":{}}\n"
            "],\"displayTimeUnit\":\"ms\"}\n");
}

TEST(Trace, ProfileBecomesOneEventPerNodePlusQueueWaitAndRun) {
  RequestTraceOptions o;
  o.run_start_ns = 10'000'000;
  o.queue_wait = TraceInterval{9'000'000, 1'000'000};
  o.pid = 2;
  o.tid = 42;
  o.request_args = {{"model", "resnet"}};
  const auto events = profile_trace_events(sample_profile(), o);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].name, "queue_wait");
  EXPECT_EQ(events[0].cat, "queue");
  EXPECT_EQ(events[0].ts_ns, 9'000'000);
  EXPECT_EQ(events[0].dur_ns, 1'000'000);
  EXPECT_EQ(events[1].name, "run");
  EXPECT_EQ(events[1].ts_ns, 10'000'000);
  EXPECT_EQ(events[1].dur_ns, 265'000);  // to the end of the last node
  EXPECT_EQ(events[2].name, "conv1");
  EXPECT_EQ(events[2].cat, "node");
  EXPECT_EQ(events[2].ts_ns, 10'001'000);
  EXPECT_EQ(events[2].dur_ns, 250'500);
  EXPECT_EQ(events[2].pid, 2);
  EXPECT_EQ(events[2].tid, 42);
  EXPECT_EQ(events[2].args, (TraceArgs{{"op", "Conv"}, {"backend", "cpu"}, {"shapes", "[1,3,224,224], [64,3,7,7]"}}));
  EXPECT_EQ(events[4].name, "Softmax");  // unnamed node: its op

  RequestTraceOptions bare;
  bare.request_name = "";
  EXPECT_EQ(profile_trace_events(sample_profile(), bare).size(), 3u);
}

TEST(Trace, FileParsesAsJsonWithTheExpectedEvents) {
  TraceWriter w;
  w.set_process_name(1, "orchard");
  w.set_thread_name(1, 3, "request 7");
  RequestTraceOptions o;
  o.run_start_ns = 2'000'000;
  o.queue_wait = TraceInterval{1'500'000, 500'000};
  o.tid = 3;
  w.add_profile(sample_profile(), o);
  w.add({"odd \"name\"\n\x7f\xc3\xa9\xfe", "misc", 0, 1, 1, 3, {{"a", "b"}}});
  const auto path = temp_path("trace.json");
  ASSERT_TRUE(w.write(path).ok());
  const std::string events = events_via_python(path);
  std::filesystem::remove(path);
  EXPECT_EQ(events,
            "M|\"process_name\"|||1||{\"name\": \"orchard\"}\n"
            "M|\"thread_name\"|||1|3|{\"name\": \"request 7\"}\n"
            "X|\"queue_wait\"|1500|500|1|3|{}\n"
            "X|\"run\"|2000|265|1|3|{}\n"
            "X|\"conv1\"|2001|250.5|1|3|{\"backend\": \"cpu\", \"op\": \"Conv\", "
            "\"shapes\": \"[1,3,224,224], [64,3,7,7]\"}\n"
            "X|\"relu1\"|2252|9.999|1|3|{\"backend\": \"cpu\", \"op\": \"Relu\", \"shapes\": \"[1,64,112,112]\"}\n"
            "X|\"Softmax\"|2262|3|1|3|{\"backend\": \"coreml\", \"op\": \"Softmax\", \"shapes\": \"[1,1000]\"}\n"
            "X|\"odd \\\"name\\\"\\n\\u007f\\u00e9\\ufffd\"|0|0.001|1|3|{\"a\": \"b\"}\n");
}

TEST(Trace, WriteToABadPathIsAnError) {
  TraceWriter w;
  const Status s = w.write("/nonexistent-dir/x/trace.json");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent-dir/x/trace.json"), std::string::npos) << s.to_string();
}

TEST(Trace, ClearEmpties) {
  TraceWriter w;
  w.add({"a", "b", 0, 1, 1, 1, {}});
  w.set_process_name(1, "p");
  w.clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_EQ(w.json(), "{\"traceEvents\":[\n],\"displayTimeUnit\":\"ms\"}\n");
}

}  // namespace
}  // namespace orchard::telemetry
