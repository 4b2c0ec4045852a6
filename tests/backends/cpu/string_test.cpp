#include "backends/op_harness.hpp"

namespace orchard::testing {
namespace {

Tensor strings(Shape shape, std::vector<std::string> v) { return Tensor::from_vector<std::string>(std::move(shape), v); }

TEST(StringNormalizer, RemovesStopwordsCaseInsensitivelyAndUppercases) {
  auto y = run_op(OpCase("StringNormalizer", 10)
                      .input("x", strings({1, 4}, {"Monday", "tuesday", "MONDAY", "Straße"}))
                      .attr("case_change_action", std::string("UPPER"))
                      .attr("stopwords", std::vector<std::string>{"monday"}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // ß has no single-code-point upper case and stays as it is.
  expect_tensor_near((*y)[0].tensor(), strings({1, 2}, {"TUESDAY", "STRAßE"}));
}

TEST(StringNormalizer, CaseSensitiveStopwordsKeepOtherCases) {
  auto y = run_op(OpCase("StringNormalizer", 10)
                      .input("x", strings({3}, {"monday", "Monday", "ÉTÉ"}))
                      .attr("case_change_action", std::string("LOWER"))
                      .attr("is_case_sensitive", int64_t{1})
                      .attr("stopwords", std::vector<std::string>{"monday"}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), strings({2}, {"monday", "été"}));
}

TEST(StringNormalizer, AllDroppedGivesOneEmptyString) {
  auto y = run_op(OpCase("StringNormalizer", 10)
                      .input("x", strings({2}, {"a", "A"}))
                      .attr("stopwords", std::vector<std::string>{"a"}));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), strings({1}, {""}));
}

TEST(StringNormalizer, RejectsRank2WithMoreThanOneRow) {
  auto y = run_op(OpCase("StringNormalizer", 10).input("x", strings({2, 1}, {"a", "b"})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("[2,1]"), std::string::npos) << y.status().message();
}

TEST(StringNormalizer, RejectsUnknownCaseAction) {
  auto y = run_op(OpCase("StringNormalizer", 10).input("x", strings({1}, {"a"})).attr("case_change_action", std::string("TITLE")));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("TITLE"), std::string::npos) << y.status().message();
}

OpCase tfidf(const std::string& mode, int64_t min_n, int64_t max_n, int64_t skip) {
  OpCase c("TfIdfVectorizer", 9);
  c.attr("mode", mode)
      .attr("min_gram_length", min_n)
      .attr("max_gram_length", max_n)
      .attr("max_skip_count", skip)
      .attr("ngram_counts", std::vector<int64_t>{0, 4})
      .attr("ngram_indexes", std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6})
      .attr("pool_int64s", std::vector<int64_t>{2, 3, 5, 4, 5, 6, 7, 8, 6, 7});
  return c;
}

TEST(TfIdfVectorizer, CountsUnigramsOnceAndBigramsForEverySkip) {
  Tensor x = Tensor::from_vector<int32_t>({12}, {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8});
  auto y = run_op(tfidf("TF", 1, 2, 5).input("x", x));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({7}, {0, 3, 1, 0, 1, 3, 1}));
}

TEST(TfIdfVectorizer, BatchRowsAreIndependent) {
  Tensor x = Tensor::from_vector<int64_t>({2, 6}, {1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8});
  auto y = run_op(tfidf("TF", 2, 2, 0).input("x", x));
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // (7, 8) spans the two rows, so it is not counted.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({2, 7}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}));
}

TEST(TfIdfVectorizer, IdfAndTfidfApplyWeights) {
  Tensor x = Tensor::from_vector<std::string>({5}, {"a", "b", "a", "b", "c"});
  OpCase base("TfIdfVectorizer", 9);
  base.attr("min_gram_length", int64_t{1})
      .attr("max_gram_length", int64_t{2})
      .attr("max_skip_count", int64_t{0})
      .attr("ngram_counts", std::vector<int64_t>{0, 2})
      .attr("ngram_indexes", std::vector<int64_t>{2, 0, 1})
      .attr("pool_strings", std::vector<std::string>{"a", "c", "a", "b"})
      .attr("weights", std::vector<float>{0.5f, 3.0f, 2.0f})
      .input("x", x);
  OpCase idf = base;
  idf.attr("mode", std::string("IDF"));
  auto y = run_op(idf);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  // counts: a=2, c=1, (a,b)=2 → IDF: weight where present; outputs at indexes 2, 0, 1.
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({3}, {3.0f, 2.0f, 0.5f}));
  OpCase tfidf_case = base;
  tfidf_case.attr("mode", std::string("TFIDF"));
  y = run_op(tfidf_case);
  ASSERT_TRUE(y.ok()) << y.status().to_string();
  expect_tensor_near((*y)[0].tensor(), Tensor::from_vector<float>({3}, {3.0f, 4.0f, 1.0f}));
}

TEST(TfIdfVectorizer, RejectsInputTypeThatDoesNotMatchPool) {
  Tensor x = Tensor::from_vector<float>({3}, {1, 2, 3});
  auto y = run_op(tfidf("TF", 1, 2, 0).input("x", x));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("float32[3]"), std::string::npos) << y.status().message();
}

TEST(TfIdfVectorizer, RejectsPoolThatIsNotWholeNgrams) {
  OpCase c = tfidf("TF", 1, 2, 0);
  c.attr("pool_int64s", std::vector<int64_t>{2, 3, 5, 4, 5, 6, 7});
  auto y = run_op(c.input("x", Tensor::from_vector<int32_t>({1}, {1})));
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("2-grams"), std::string::npos) << y.status().message();
}

}  // namespace
}  // namespace orchard::testing
