// Session::run input validation and thread safety, on models built with the ONNX protobufs.
// After every rejected request the same Session must still answer a good one correctly.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "orchard/session.hpp"
#include "testing/model_builder.hpp"

namespace orchard {
namespace {

using testing::add_node;
using testing::D;
using testing::set_type;

// a, b: float32[batch, 3]; y = Relu(Add(a, b)); z = Identity(a).
std::unique_ptr<Session> make_session(const SessionOptions& options = {}) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* o = m.add_opset_import();
  o->set_domain("");
  o->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("add_relu");
  set_type(g->add_input(), "a", onnx::TensorProto::FLOAT, {"batch", 3});
  set_type(g->add_input(), "b", onnx::TensorProto::FLOAT, {"batch", 3});
  set_type(g->add_output(), "y", onnx::TensorProto::FLOAT, {"batch", 3});
  set_type(g->add_output(), "z", onnx::TensorProto::FLOAT, {"batch", 3});
  add_node(g, "Add", {"a", "b"}, {"sum"});
  add_node(g, "Relu", {"sum"}, {"y"});
  add_node(g, "Identity", {"a"}, {"z"});
  std::string bytes;
  EXPECT_TRUE(m.SerializeToString(&bytes));
  auto s = Session::load_from_bytes({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, options);
  EXPECT_TRUE(s.ok()) << s.status().to_string();
  return s.ok() ? std::move(s).value() : nullptr;
}

Tensor rows(int64_t batch, float base) {
  std::vector<float> v(static_cast<size_t>(batch * 3));
  for (size_t i = 0; i < v.size(); ++i) v[i] = base + static_cast<float>(i) * (i % 2 ? -1.0f : 1.0f);
  return Tensor::from_vector<float>({batch, 3}, v);
}

// Runs a good request (batch `batch`, inputs derived from `base`) and returns whether the outputs are right.
::testing::AssertionResult good_run(const Session& s, int64_t batch = 2, float base = 1.0f) {
  const Tensor a = rows(batch, base), b = rows(batch, -2.0f * base);
  auto out = s.run({{"a", a}, {"b", b}});
  if (!out.ok()) return ::testing::AssertionFailure() << out.status().to_string();
  if (out->size() != 2 || (*out)[0].first != "y" || (*out)[1].first != "z") return ::testing::AssertionFailure() << "wrong outputs";
  const Tensor& y = (*out)[0].second.tensor();
  const Tensor& z = (*out)[1].second.tensor();
  if (y.shape() != a.shape() || z.shape() != a.shape()) return ::testing::AssertionFailure() << "wrong shape " << y.description();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const float sum = a.data<float>()[i] + b.data<float>()[i];
    const float want = sum > 0 ? sum : 0.0f;
    if (y.data<float>()[i] != want) return ::testing::AssertionFailure() << "y[" << i << "] = " << y.data<float>()[i] << ", want " << want;
    if (z.data<float>()[i] != a.data<float>()[i]) return ::testing::AssertionFailure() << "z[" << i << "] differs";
  }
  return ::testing::AssertionSuccess();
}

void expect_error(const Result<NamedValues>& r, StatusCode code, std::initializer_list<std::string> needles) {
  ASSERT_FALSE(r.ok()) << "expected " << status_code_name(code);
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  for (const auto& n : needles) EXPECT_NE(r.status().message().find(n), std::string::npos) << "'" << n << "' not in: " << r.status().message();
}

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    session_ = make_session();
    ASSERT_NE(session_, nullptr);
    ASSERT_TRUE(good_run(*session_));
  }
  // Every bad request is followed by a good one on the same Session.
  void TearDown() override {
    if (session_) {
      EXPECT_TRUE(good_run(*session_, 1, 3.0f));
      EXPECT_TRUE(good_run(*session_, 4, -1.0f));
    }
  }
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, DescribesInputsAndOutputs) {
  ASSERT_EQ(session_->inputs().size(), 2u);
  EXPECT_EQ(session_->inputs()[0].description(), "float32[batch,3]");
  ASSERT_EQ(session_->outputs().size(), 2u);
  EXPECT_EQ(session_->outputs()[1].name, "z");
  EXPECT_FALSE(session_->backends().empty());
}

TEST(SessionBackends, PreferenceSelectsAndRejects) {
  SessionOptions cpu_only;
  cpu_only.backend_preference = {"cpu"};
  auto s = make_session(cpu_only);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->backends(), std::vector<std::string>{"cpu"});
  EXPECT_TRUE(good_run(*s));

  SessionOptions bogus;
  bogus.backend_preference = {"warp-drive"};
  std::string bytes = "\x08\x08";  // any model: the backend is checked first
  auto r = Session::load_from_bytes({reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()}, bogus);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::unavailable) << r.status().to_string();
  EXPECT_NE(r.status().message().find("warp-drive"), std::string::npos) << r.status().message();
}

TEST_F(SessionTest, MissingInput) {
  expect_error(session_->run({{"a", rows(2, 1)}}), StatusCode::invalid_argument, {"missing input 'b'", "float32[batch,3]"});
}

TEST_F(SessionTest, UnknownExtraInput) {
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", rows(2, 1)}, {"c", rows(2, 1)}}), StatusCode::invalid_argument,
               {"unknown input 'c'", "'a'", "'b'"});
}

TEST_F(SessionTest, InputGivenTwice) {
  expect_error(session_->run({{"a", rows(2, 1)}, {"a", rows(2, 1)}, {"b", rows(2, 1)}}), StatusCode::invalid_argument,
               {"'a'", "twice"});
}

TEST_F(SessionTest, WrongDtype) {
  Tensor ints = Tensor::from_vector<int32_t>({2, 3}, {1, 2, 3, 4, 5, 6});
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", ints}}), StatusCode::invalid_argument, {"input 'b'", "int32", "float32"});
}

TEST_F(SessionTest, WrongRank) {
  Tensor flat = Tensor::from_vector<float>({6}, {1, 2, 3, 4, 5, 6});
  expect_error(session_->run({{"a", flat}, {"b", rows(2, 1)}}), StatusCode::invalid_argument, {"input 'a'", "rank is 1", "expected 2"});
}

TEST_F(SessionTest, WrongFixedDim) {
  Tensor wide = Tensor::from_vector<float>({2, 4}, std::vector<float>(8, 1.0f));
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", wide}}), StatusCode::invalid_argument, {"input 'b'", "dim 1 is 4", "expected 3"});
}

TEST_F(SessionTest, InconsistentSymbolicDim) {
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", rows(5, 1)}}), StatusCode::invalid_argument,
               {"input 'b'", "'batch'", "5", "input 'a'", "2"});
}

TEST_F(SessionTest, SequenceWhereTensorExpected) {
  Value seq = Value::sequence({rows(2, 1)}, DType::float32);
  expect_error(session_->run({{"a", seq}, {"b", rows(2, 1)}}), StatusCode::invalid_argument, {"input 'a'", "seq<float32>"});
}

TEST_F(SessionTest, EmptyBatchRuns) {
  auto out = session_->run({{"a", rows(0, 1)}, {"b", rows(0, 1)}});
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ((*out)[0].second.tensor().shape(), (Shape{0, 3}));
}

TEST_F(SessionTest, AbortFlagCancels) {
  std::atomic<bool> abort{true};
  RunOptions options;
  options.abort = &abort;
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", rows(2, 1)}}, options), StatusCode::cancelled, {"cancelled"});
}

TEST_F(SessionTest, PastDeadlineIsDeadlineExceeded) {
  RunOptions options;
  options.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  expect_error(session_->run({{"a", rows(2, 1)}, {"b", rows(2, 1)}}, options), StatusCode::deadline_exceeded, {"deadline"});
}

TEST_F(SessionTest, InputsAreNotModified) {
  const Tensor a = rows(3, 2.0f);
  const Tensor copy = a.clone();
  ASSERT_TRUE(session_->run({{"a", a}, {"b", rows(3, -5.0f)}}).ok());
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(a.data<float>()[i], copy.data<float>()[i]);
}

TEST(SessionConcurrency, EightThreadsFiftyRunsEach) {
  SessionOptions options;
  options.intra_op_threads = 4;
  auto session = make_session(options);
  ASSERT_NE(session, nullptr);
  std::atomic<int> failures{0};
  std::atomic<int> runs{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        // Every thread and iteration uses its own batch and values, so mixed-up outputs are caught.
        const int64_t batch = 1 + (t + i) % 5;
        const float base = static_cast<float>(t * 100 + i) * 0.5f - 50.0f;
        auto r = good_run(*session, batch, base);
        if (!r) {
          failures.fetch_add(1);
          ADD_FAILURE() << "thread " << t << " run " << i << ": " << r.message();
        }
        // Interleave a bad request: it must fail cleanly without disturbing the others.
        if (i % 10 == 0) {
          auto bad = session->run({{"a", rows(batch, base)}});
          if (bad.ok()) failures.fetch_add(1);
        }
        runs.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(runs.load(), 400);
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace orchard
