// libFuzzer target: raw bytes as an HTTP/1.1 request through Beast's parser with the server's limits, then
// routing, the Inference-Header-Content-Length header, the infer body decoder and, for a decoded request,
// the response encoder on its tensors (every datatype, JSON and binary). Bad input must give a Status.
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "server/infer_codec.hpp"
#include "server/route.hpp"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  parser.header_limit(16 << 10);
  parser.body_limit(1 << 20);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (!ec && !parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;
  const auto& req = parser.get();
  const auto routed =
      orchard::server::parse_route(std::string_view(req.method_string().data(), req.method_string().size()),
                                   std::string_view(req.target().data(), req.target().size()));
  const auto* route = std::get_if<orchard::server::Route>(&routed);
  if (!route || route->endpoint != orchard::server::Endpoint::infer) return 0;
  std::optional<size_t> json_length;
  if (auto it = req.find("Inference-Header-Content-Length"); it != req.end()) {
    json_length = orchard::server::parse_byte_count(std::string_view(it->value().data(), it->value().size()));
    if (!json_length) return 0;
  }
  auto decoded = orchard::server::decode_infer_request(req.body(), json_length);
  if (!decoded.ok()) return 0;
  std::vector<bool> binary;
  for (size_t i = 0; i < decoded->inputs.size(); ++i) binary.push_back(i % 2 == 1);
  auto encoded =
      orchard::server::encode_infer_response(route->model, route->version, decoded->id, decoded->inputs, binary);
  (void)encoded;
  return 0;
}
