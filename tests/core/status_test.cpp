#include <gtest/gtest.h>

#include "orchard/status.hpp"

namespace orchard {
namespace {

TEST(Status, OkIsFreeAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::ok);
  EXPECT_EQ(s.to_string(), "ok");
  EXPECT_TRUE(s.message().empty());
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = invalid_argument("[softmax] axis ", 5, " out of range for rank ", 3);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::invalid_argument);
  EXPECT_EQ(s.message(), "[softmax] axis 5 out of range for rank 3");
  EXPECT_EQ(s.to_string(), "invalid_argument: [softmax] axis 5 out of range for rank 3");
  Status copy = s;
  EXPECT_EQ(copy.message(), s.message());
  EXPECT_EQ(s.with_prefix("ctx: ").message(), "ctx: [softmax] axis 5 out of range for rank 3");
}

TEST(Status, CancelledAndDeadlineAreDistinct) {
  EXPECT_NE(cancelled("x").code(), deadline_exceeded("x").code());
  EXPECT_EQ(status_code_name(StatusCode::deadline_exceeded), "deadline_exceeded");
}

Result<int> parse_positive(int v) {
  if (v <= 0) return invalid_argument("not positive: ", v);
  return v;
}

Status use_macros(int v, int* out) {
  ORCHARD_ASSIGN_OR_RETURN(int x, parse_positive(v));
  *out = x * 2;
  return Status::OK();
}

TEST(Result, HoldsValueOrError) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "not positive: -1");
  int out = 0;
  EXPECT_TRUE(use_macros(4, &out).ok());
  EXPECT_EQ(out, 8);
  EXPECT_EQ(use_macros(0, &out).code(), StatusCode::invalid_argument);
}

TEST(Result, OkStatusBecomesInternalError) {
  Result<int> r = Status::OK();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::internal);
}

}  // namespace
}  // namespace orchard
