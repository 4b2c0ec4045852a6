// KServe v2 bodies: JSON (flat, nested), the binary extension, BYTES, errors that name the input, the
// response encoder; plus URL routing and the model config file.
#include "server/infer_codec.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "server/repository.hpp"
#include "server/rest_handler.hpp"

namespace orchard::server {
namespace {

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

TEST(ServerCodec, DecodesFlatAndNestedJsonAlike) {
  const char* flat = R"({"id":"r1","inputs":[{"name":"x","datatype":"INT32","shape":[2,2],"data":[1,2,3,4]}]})";
  const char* nested = R"({"inputs":[{"name":"x","datatype":"INT32","shape":[2,2],"data":[[1,2],[3,4]]}]})";
  auto a = decode_infer_request(flat, std::nullopt);
  auto b = decode_infer_request(nested, std::nullopt);
  ASSERT_TRUE(a.ok()) << a.status().to_string();
  ASSERT_TRUE(b.ok()) << b.status().to_string();
  EXPECT_EQ(a->id, "r1");
  for (const auto* r : {&a.value(), &b.value()}) {
    const Tensor& t = r->inputs[0].second.tensor();
    EXPECT_EQ(t.shape(), Shape({2, 2}));
    EXPECT_EQ(std::vector<int32_t>(t.data<int32_t>(), t.data<int32_t>() + 4), (std::vector<int32_t>{1, 2, 3, 4}));
  }
}

TEST(ServerCodec, DecodesParametersAndRequestedOutputs) {
  auto r = decode_infer_request(
      R"({"parameters":{"priority":2,"timeout":1500,"binary_data_output":true},
          "inputs":[{"name":"x","datatype":"BOOL","shape":[1],"data":[true]}],
          "outputs":[{"name":"a"},{"name":"b","parameters":{"binary_data":false}}]})",
      std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->priority, 2);
  EXPECT_EQ(r->timeout_us, 1500);
  EXPECT_TRUE(r->binary_outputs);
  ASSERT_EQ(r->outputs.size(), 2u);
  EXPECT_FALSE(r->outputs[0].binary.has_value());
  EXPECT_EQ(r->outputs[1].binary, std::optional<bool>(false));
}

TEST(ServerCodec, DecodesBinaryTensorsInOrder) {
  const std::string header =
      R"({"inputs":[{"name":"f","datatype":"FP16","shape":[2],"parameters":{"binary_data_size":4}},)"
      R"({"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}}]})";
  const std::string body = header + std::string("\x00\x3c\x00\xc0", 4) + le32(2) + "hi" + le32(1) + "x";
  auto r = decode_infer_request(body, header.size());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& f = r->inputs[0].second.tensor();
  EXPECT_EQ(f.dtype(), DType::float16);
  EXPECT_EQ(float16::to_float(f.data<float16>()[0].bits), 1.0f);
  EXPECT_EQ(float16::to_float(f.data<float16>()[1].bits), -2.0f);
  const Tensor& s = r->inputs[1].second.tensor();
  EXPECT_EQ(s.data<std::string>()[0], "hi");
  EXPECT_EQ(s.data<std::string>()[1], "x");
}

TEST(ServerCodec, ErrorsNameTheInputAndTheProblem) {
  struct Case {
    std::string body;
    std::optional<size_t> json_length;
    std::string fragment;
  };
  const std::string bin =
      R"({"inputs":[{"name":"b","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]})";
  const Case cases[] = {
      {"[1,2", std::nullopt, "not valid JSON"},
      {R"({"inputs":{}})", std::nullopt, "'inputs' must be an array"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[3],"data":[1,2]}]})", std::nullopt, "'x': 'data' has 2"},
      {R"({"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[300]}]})", std::nullopt, "300 out of range"},
      {R"({"inputs":[{"name":"x","datatype":"UINT8","shape":[1],"data":[-1]}]})", std::nullopt, "-1 out of range"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[-1],"data":[]}]})", std::nullopt, "non-negative"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[[[1]]]}]})", std::nullopt, "nested deeper"},
      {R"({"inputs":[{"name":"x","datatype":"BF16","shape":[1],"data":[1]}]})", std::nullopt, "binary tensor data"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1]},{"name":"x","datatype":"FP32","shape":[1],"data":[1]}]})",
       std::nullopt, "given twice"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[4294967296,4294967296,4294967296],"data":[]}]})",
       std::nullopt, "too many elements"},
      {bin + std::string(4, '\0'), bin.size(), "only 4 binary bytes"},
      {bin + std::string(12, '\0'), bin.size(), "4 binary bytes after"},
      {bin, bin.size() + 1, "exceeds the body"},
      {R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]})" + le32(9) +
           "ab",
       std::string(R"({"inputs":[{"name":"s","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]})")
           .size(),
       "runs past"},
  };
  for (const Case& c : cases) {
    auto r = decode_infer_request(c.body, c.json_length);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << c.body;
    EXPECT_NE(r.status().message().find(c.fragment), std::string::npos) << r.status().message();
    EXPECT_EQ(r.status().message().rfind("[server]", 0), 0u) << r.status().message();
  }
}

TEST(ServerCodec, AcceptsKeysInAnyOrderAndEscapedStrings) {
  // `data` before `shape` and `datatype` takes the decoder's second path; unknown keys are ignored.
  auto r = decode_infer_request(
      R"({"outputs":[{"parameters":{"binary_data":true,"x":[1,{"y":null}]},"name":"o"}],"extra":{"a":[true,"s"]},)"
      R"("inputs":[{"data":[[1.5,-2e-1],[3,4]],"shape":[2,2],"name":"x","datatype":"FP64"},)"
      R"({"name":"s","datatype":"BYTES","shape":[2],"data":["a\"b\u00e9","\n"]},)"
      R"({"name":"u","datatype":"UINT64","shape":[1],"data":[18446744073709551615]}],"id":"\u0041"})",
      std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->id, "A");
  ASSERT_EQ(r->inputs.size(), 3u);
  const Tensor& x = r->inputs[0].second.tensor();
  EXPECT_EQ(x.shape(), Shape({2, 2}));
  EXPECT_EQ(std::vector<double>(x.data<double>(), x.data<double>() + 4), (std::vector<double>{1.5, -0.2, 3, 4}));
  EXPECT_EQ(r->inputs[1].second.tensor().data<std::string>()[0], "a\"b\xc3\xa9");
  EXPECT_EQ(r->inputs[1].second.tensor().data<std::string>()[1], "\n");
  EXPECT_EQ(r->inputs[2].second.tensor().data<uint64_t>()[0], UINT64_MAX);
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].name, "o");
  EXPECT_EQ(r->outputs[0].binary, std::optional<bool>(true));
}

TEST(ServerCodec, DecodesALargeBodyWithItsOwnParser) {
  // Over 1 MiB of JSON: decoded by a parser of its own (not the thread's reused one); values round-trip.
  std::string body = R"({"inputs":[{"name":"x","datatype":"FP32","shape":[200000],"data":[)";
  for (int i = 0; i < 200000; ++i) body += (i ? ",0." : "0.") + std::to_string(i % 1000);
  body += "]}]}";
  ASSERT_GT(body.size(), size_t{1} << 20);
  auto r = decode_infer_request(body, std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const Tensor& t = r->inputs[0].second.tensor();
  EXPECT_EQ(t.data<float>()[1234], 0.234f);
  EXPECT_EQ(t.data<float>()[199999], 0.999f);
  auto small = decode_infer_request(R"({"inputs":[{"name":"y","datatype":"INT32","shape":[1],"data":[7]}]})",
                                    std::nullopt);  // the reused parser still works after it
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->inputs[0].second.tensor().data<int32_t>()[0], 7);
}

TEST(ServerCodec, RefusesMalformedJsonAnywhere) {
  // On Demand reads lazily; the decoder still validates parts it does not use, and what follows the object.
  const char* invalid[] = {
      R"({"inputs":[],"extra":[1 2]})",
      R"({"inputs":[],"extra":{"a":tru}})",
      R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":[1],"junk":[01]}]})",
      R"({"inputs":[]} x)",
      R"({"inputs":[],"parameters":{"other":nul}})",
      R"([1,2)",
      R"({"inputs":[{"data":[1,],"name":"x","datatype":"FP32","shape":[1]}]})",
  };
  for (const char* body : invalid) {
    auto r = decode_infer_request(body, std::nullopt);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), StatusCode::invalid_argument) << body;
    EXPECT_NE(r.status().message().find("not valid JSON"), std::string::npos) << body << ": " << r.status().message();
  }
  struct Case {
    const char* body;
    const char* fragment;
  };
  const Case refused[] = {
      {R"([1,2])", "must be a JSON object"},
      {R"({"inputs":[],"inputs":[]})", "'inputs' twice"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1.5],"data":[1]}]})", "shape dimension 1.5"},
      {R"({"inputs":[{"name":"x","datatype":"INT32","shape":[1],"data":[1.0]}]})", "element 1.0 is not an integer"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[1],"data":["1"]}]})", "is not a number"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1,2,3]}]})", "'data' has 3 elements"},
      {R"({"inputs":[{"name":"x","datatype":"INT64","shape":[1],"data":[18446744073709551615]}]})", "out of range"},
      {R"({"parameters":{"timeout":-5},"inputs":[]})", "'timeout' must be a non-negative integer, got -5"},
      {R"({"outputs":[{"name":"o","parameters":{"binary_data":1}}],"inputs":[]})", "'binary_data' must be a boolean"},
      {R"({"inputs":[{"datatype":"FP32","shape":[1],"data":[1]}]})", "no string 'name'"},
  };
  for (const Case& c : refused) {
    auto r = decode_infer_request(c.body, std::nullopt);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.status().message().find(c.fragment), std::string::npos) << c.body << ": " << r.status().message();
  }
}

TEST(ServerCodec, EncodesJsonAndBinaryOutputs) {
  NamedValues outs = {{"a", Value(Tensor::from_vector<float>({2}, {0.5f, -1.f}))},
                      {"b", Value(Tensor::from_vector<int64_t>({1, 2}, {7, -8}))}};
  auto json = encode_infer_response("m", "3", "id9", outs, {false, false});
  ASSERT_TRUE(json.ok());
  EXPECT_FALSE(json->json_length.has_value());
  EXPECT_EQ(json->body, R"({"model_name":"m","model_version":"3","id":"id9","outputs":[)"
                        R"({"name":"a","datatype":"FP32","shape":[2],"data":[0.5,-1]},)"
                        R"({"name":"b","datatype":"INT64","shape":[1,2],"data":[7,-8]}]})");
  auto bin = encode_infer_response("m", "", "", outs, {true, false});
  ASSERT_TRUE(bin.ok());
  ASSERT_TRUE(bin->json_length.has_value());
  const std::string header = bin->body.substr(0, *bin->json_length);
  EXPECT_NE(header.find(R"("parameters":{"binary_data_size":8})"), std::string::npos) << header;
  EXPECT_EQ(header.find("model_version"), std::string::npos);
  ASSERT_EQ(bin->body.size() - *bin->json_length, 8u);
  float back[2];
  std::memcpy(back, bin->body.data() + *bin->json_length, 8);
  EXPECT_EQ(back[0], 0.5f);
  EXPECT_EQ(back[1], -1.f);

  NamedValues half = {{"h", Value(Tensor::from_vector<float16>({1}, {float16(1.f)}))}};
  auto refused = encode_infer_response("m", "", "", half, {false});
  EXPECT_EQ(refused.status().code(), StatusCode::unsupported);
  EXPECT_NE(refused.status().message().find("'h'"), std::string::npos);
}

TEST(ServerRoutes, MapsPathsMethodsAndBadNames) {
  auto route = [](const char* m, const char* t) { return parse_route(m, t); };
  auto ok = [](const std::variant<Route, HttpError>& v) { return std::get_if<Route>(&v); };
  auto r = route("POST", "/v2/models/resnet/versions/12/infer?x=1");
  ASSERT_TRUE(ok(r));
  EXPECT_EQ(std::get<Route>(r).endpoint, Endpoint::infer);
  EXPECT_EQ(std::get<Route>(r).model, "resnet");
  EXPECT_EQ(std::get<Route>(r).version, "12");
  EXPECT_EQ(std::get<Route>(route("GET", "/v2/health/ready")).endpoint, Endpoint::ready);
  EXPECT_EQ(std::get<Route>(route("GET", "/v2")).endpoint, Endpoint::server_metadata);
  EXPECT_EQ(std::get<Route>(route("GET", "/metrics")).endpoint, Endpoint::metrics);
  EXPECT_EQ(std::get<Route>(route("GET", "/v2/models/stats")).endpoint, Endpoint::model_stats);
  EXPECT_EQ(std::get<Route>(route("GET", "/v2/models/stats")).model, "");
  const auto stats = route("GET", "/v2/models/m/versions/2/stats");
  ASSERT_TRUE(ok(stats));
  EXPECT_EQ(std::get<Route>(stats).endpoint, Endpoint::model_stats);
  EXPECT_EQ(std::get<Route>(stats).version, "2");
  EXPECT_EQ(std::get<Route>(route("GET", "/v2/models/m/config")).endpoint, Endpoint::model_config);
  EXPECT_EQ(std::get<HttpError>(route("POST", "/v2/models/m/config")).status, 405u);
  EXPECT_EQ(std::get<Route>(route("POST", "/v2/repository/models/a.b-c_d/unload")).endpoint,
            Endpoint::repository_unload);
  EXPECT_EQ(std::get<HttpError>(route("GET", "/v2/models/m/infer")).status, 405u);
  EXPECT_EQ(std::get<HttpError>(route("GET", "/v3")).status, 404u);
  EXPECT_EQ(std::get<HttpError>(route("GET", "/v2/models/../ready")).status, 400u);
  EXPECT_EQ(std::get<HttpError>(route("GET", "/v2/models/m/versions/0/ready")).status, 400u);
  EXPECT_EQ(std::get<HttpError>(route("POST", "/v2/repository/models/.hidden/load")).status, 400u);
  EXPECT_EQ(std::get<HttpError>(route("GET", "relative")).status, 400u);
}

TEST(ServerRepository, ParsesConfigAndValidatesNames) {
  auto c = parse_model_config(
      R"({"max_batch_size":8,"dynamic_batching":{"max_queue_delay_microseconds":500,"preferred_batch_size":[4,8]},"backend":["cpu"]})");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_TRUE(c->dynamic_batching);
  EXPECT_EQ(c->max_batch_size, 8);
  EXPECT_EQ(c->max_queue_delay_us, 500);
  EXPECT_EQ(c->preferred_batch_sizes, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(c->backends, (std::vector<std::string>{"cpu"}));
  EXPECT_FALSE(c->inline_execution);
  auto inl = parse_model_config(R"({"inline_execution":true})");
  ASSERT_TRUE(inl.ok()) << inl.status().to_string();
  EXPECT_TRUE(inl->inline_execution);
  EXPECT_NE(parse_model_config(R"({"inline_execution":1})").status().message().find("inline_execution"),
            std::string::npos);
  auto shapes = parse_model_config(
      R"({"max_batch_size":4,"dynamic_batching":{},"instance_group":[{"count":2,"kind":"KIND_CPU"},{"count":1}],)"
      R"("input_shapes":{"x":[[1,3],[4,3]]}})");
  ASSERT_TRUE(shapes.ok()) << shapes.status().to_string();
  EXPECT_EQ(shapes->instance_count, 3);
  EXPECT_EQ(shapes->input_shapes.at("x"), (std::vector<std::vector<int64_t>>{{1, 3}, {4, 3}}));
  // Unbatched: instances are the model's concurrent requests; memory_share_mb its part of the budget.
  auto instances = parse_model_config(R"({"instance_group":[{"count":2}],"memory_share_mb":64})");
  ASSERT_TRUE(instances.ok()) << instances.status().to_string();
  EXPECT_EQ(instances->instance_count, 2);
  EXPECT_EQ(instances->memory_share_mb, 64);
  for (const char* bad :
       {R"({"memory_share_mb":0})", R"({"memory_share_mb":-5})", R"({"memory_share_mb":"1G"})",
        R"({"max_batch_size":4,"dynamic_batching":{},"instance_group":[{"count":0}]})",
        R"({"max_batch_size":4,"dynamic_batching":{},"instance_group":[{"kind":"KIND_GPU"}]})",
        R"({"input_shapes":{"x":[[1,-3]]}})", R"({"input_shapes":{"x":[]}})", R"({"input_shapes":{"x":[3]}})"}) {
    auto r = parse_model_config(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("[server] config", 0), 0u) << r.status().message();
  }
  EXPECT_NE(parse_model_config(R"({"max_batch_sise":8})").status().message().find("max_batch_sise"), std::string::npos);
  EXPECT_FALSE(parse_model_config(R"({"dynamic_batching":{}})").ok());  // needs max_batch_size
  EXPECT_FALSE(parse_model_config(R"({"max_batch_size":2,"dynamic_batching":{"preferred_batch_size":[3]}})").ok());
  EXPECT_FALSE(parse_model_config("[]").ok());
  EXPECT_TRUE(valid_model_name("resnet-50_v1.5"));
  for (const char* bad : {"", ".", "..", "a/b", "a\\b", "a b", "%2e%2e"}) EXPECT_FALSE(valid_model_name(bad)) << bad;
  EXPECT_EQ(parse_version("12"), std::optional<int64_t>(12));
  for (const char* bad : {"0", "01", "-1", "1a", "", "1234567890123456789"}) EXPECT_FALSE(parse_version(bad)) << bad;
}

}  // namespace
}  // namespace orchard::server
